"""Emergency stops: who may stop, the record of every stop and resume, and two-person resume."""

from __future__ import annotations

import builtins
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from charter.approvals.errors import HumanError
from charter.approvals.identity import Channel
from charter.approvals.notify import NullNotifier
from charter.approvals.records import RECORD_TTL_S, update
from charter.state import StateStore, StopRecord

SCOPES = ("global", "workflow", "agent", "tool", "run", "role", "tenant")
LOG = "stop-log"
RESUME = "resume"


class Stops:
    """Stop and resume scopes; a resume needs N distinct operators (N from the policy, default 2)."""

    def __init__(
        self,
        store: StateStore,
        operators: Sequence[str] = (),
        resume_requires: int = 2,
        clock: Callable[[], float] = time.time,
        notifier: Any = None,
    ):
        self.store = store
        self.operators = tuple(operators)
        self.resume_requires = max(1, resume_requires)
        self.clock = clock
        self.notifier = notifier or NullNotifier()

    def _check(self, scope: str, value: str, who: str) -> tuple[str, str]:
        if scope not in SCOPES:
            raise HumanError(f"unknown stop scope {scope!r}; scopes: {', '.join(SCOPES)}", "bad-scope")
        if scope == "global":
            value = "*"
        if not value:
            raise HumanError(f"a {scope} stop needs a value (which {scope})", "bad-scope")
        if self.operators and who not in self.operators:
            raise HumanError(
                f"{who} is not an operator (operators: {', '.join(self.operators)})", "not-operator"
            )
        return scope, value

    def _log(
        self,
        event: str,
        scope: str,
        value: str,
        who: str,
        reason: str,
        via: Channel,
        people: builtins.list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        now = self.clock()
        seq = time.time_ns()
        entry: dict[str, Any] = {
            "id": f"{seq}-{os.urandom(3).hex()}",
            "event": event,
            "scope": scope,
            "value": value,
            "by": who,
            "via": via.value,
            "at": now,
            "reason": reason,
            "seq": seq,
        }
        if people is not None:  # a resume: every operator who asked for it, and how
            entry["operators"] = people
        self.store.put_record(LOG, str(entry["id"]), entry, ttl_s=RECORD_TTL_S * 12)
        self.notifier.notify("stop", event, entry)
        return entry

    def stop(
        self, scope: str, value: str, reason: str, who: str, *, via: Channel = Channel.PYTHON
    ) -> StopRecord:
        """Stop a scope now, for every process sharing the store (``who`` acting through ``via``)."""
        if not reason.strip():
            raise HumanError("a stop needs a reason", "no-reason")
        scope, value = self._check(scope, value, who)
        rec = StopRecord(scope, value, reason, who, self.clock(), "operator")
        self.store.set_stop(rec)
        self._log("stopped", scope, value, who, reason, via)
        return rec

    def list(self) -> list[StopRecord]:
        """Active stops."""
        return self.store.list_stops()

    def resume_requests(self, scope: str, value: str) -> builtins.list[dict[str, Any]]:
        """Who has asked to resume the active stop on (scope, value) so far (by, via, at, reason)."""
        active = {(s.scope, s.value): s for s in self.store.list_stops()}
        stop = active.get((scope, value))
        got = self.store.get_record(RESUME, f"{scope}:{value}")
        if stop is None or got is None or got[1].get("stop_at") != stop.at:
            return []
        doc = got[1]
        return list(doc.get("requests") or [{"by": w} for w in doc.get("operators", [])])

    def log(self) -> builtins.list[dict[str, Any]]:
        """Every stop and resume, oldest first."""
        return sorted(self.store.list_records(LOG), key=lambda e: (e["at"], e.get("seq", 0)))

    def resume(
        self, scope: str, value: str, who: str, reason: str = "", *, via: Channel = Channel.PYTHON
    ) -> dict[str, Any]:
        """Ask to resume (through ``via``); the stop is cleared once enough distinct operators asked."""
        scope, value = self._check(scope, value, who)
        active = {(s.scope, s.value): s for s in self.store.list_stops()}
        stop = active.get((scope, value))
        if stop is None:
            raise HumanError(f"there is no active stop on {scope} {value}", "no-stop")
        rid = f"{scope}:{value}"
        if self.store.get_record(RESUME, rid) is None:
            self.store.put_record(
                RESUME, rid, {"id": rid, "stop_at": stop.at, "operators": []}, ttl_s=RECORD_TTL_S
            )

        def change(d: dict[str, Any]) -> dict[str, Any]:
            if d.get("stop_at") != stop.at:
                d = {"id": rid, "stop_at": stop.at, "operators": [], "requests": []}
            if who in d["operators"]:
                raise HumanError(
                    f"{who} already asked to resume {scope} {value}; a second operator must confirm",
                    "duplicate",
                )
            d["operators"] = [*d["operators"], who]
            asked = {"by": who, "via": via.value, "at": self.clock(), "reason": reason}
            d["requests"] = [*d.get("requests", []), asked]
            return d

        doc = update(self.store, RESUME, rid, change)
        have = len(doc["operators"])
        resumed = have >= self.resume_requires
        if resumed:
            self.store.clear_stop(scope, value)
            self.store.put_record(
                RESUME, rid, {"id": rid, "stop_at": None, "operators": []}, ttl_s=RECORD_TTL_S
            )
            people = list(doc.get("requests", []))
            self._log("resumed", scope, value, ", ".join(doc["operators"]), reason, via, people)
        else:
            self._log("resume-requested", scope, value, who, reason, via)
        return {
            "scope": scope,
            "value": value,
            "resumed": resumed,
            "operators": doc["operators"],
            "have": have,
            "need": self.resume_requires,
        }
