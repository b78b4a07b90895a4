"""Escalations: a chain of targets with timeouts, answers allow/deny, and a terminal fallback."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from charter.approvals.errors import HumanError
from charter.approvals.identity import Channel
from charter.approvals.ids import random_hex
from charter.approvals.notify import NullNotifier
from charter.approvals.records import RECORD_TTL_S, history, read, read_all, update
from charter.state import StateStore

KIND = "escalation"


def current_step(doc: Mapping[str, Any], now: float) -> int | None:
    """Index of the chain step answering now, or None once every timed step has run out."""
    t = doc["created_at"]
    for i, step in enumerate(doc["chain"]):
        timeout = step.get("timeout_s")
        if timeout is None or now < t + timeout:
            return i
        t += timeout
    return None


class Escalations:
    """Opens escalations, moves them up their chain as time passes, records answers."""

    def __init__(
        self,
        store: StateStore,
        groups: Mapping[str, Sequence[str]] | None = None,
        clock: Callable[[], float] = time.time,
        notifier: Any = None,
    ):
        self.store = store
        self.groups = dict(groups or {})
        self.clock = clock
        self.notifier = notifier or NullNotifier()

    def open(
        self,
        *,
        decision_id: str,
        digest: str,
        requester: str,
        obligation: Mapping[str, Any],
        reasons: Sequence[str],
        revision: str,
        summary: Mapping[str, Any],
    ) -> dict[str, Any]:
        """Create an open escalation from a decision's escalation obligation."""
        now = self.clock()
        chain = list(obligation.get("chain") or [])
        if not chain and obligation.get("target"):
            chain = [{"target": obligation["target"], "timeout_s": None}]
        doc: dict[str, Any] = {
            "id": f"es-{random_hex(8)}",
            "status": "open",
            "digest": digest,
            "decision_id": decision_id,
            "requester": requester,
            "chain": chain,
            "target": chain[0]["target"] if chain else None,
            "fallback": obligation.get("fallback", "deny"),
            "severity": obligation.get("severity", "medium"),
            "rules": list(obligation.get("rules", [])),
            "reasons": list(reasons),
            "signals": list(obligation.get("signals", [])),
            "created_at": now,
            "answers": [],
            "revision": revision,
            "action": dict(summary),
            "history": [{"at": now, "event": "opened", "by": requester, "note": ""}],
        }
        self.store.put_record(KIND, doc["id"], doc, ttl_s=RECORD_TTL_S)
        self.notifier.notify(KIND, "opened", doc)
        return doc

    def _advance(self, doc: dict[str, Any]) -> dict[str, Any]:
        if doc["status"] != "open":
            return doc
        now = self.clock()
        step = current_step(doc, now)
        target = doc["chain"][step]["target"] if step is not None else None
        if step is not None and target == doc.get("target"):
            return doc

        moved: list[bool] = []  # set by the attempt that wrote (another replica may have moved it)

        def change(d: dict[str, Any]) -> dict[str, Any]:
            moved.clear()
            if d["status"] != "open" or (step is not None and d.get("target") == target):
                return d  # already where it belongs: nothing to write, nobody to tell
            moved.append(True)
            if step is None:
                d["status"] = "fallback"
                d["outcome"] = d["fallback"]
                d["target"] = None
                history(d, now, "fallback", None, f"nobody answered: {d['fallback']}")
            else:
                history(d, now, "moved-up", None, f"no answer in time: now {target}")
                d["target"] = target
            return d

        new = update(self.store, KIND, doc["id"], change)
        if moved:
            self.notifier.notify(KIND, "timed out" if step is None else "moved up", new)
        return new

    def get(self, escalation_id: str) -> dict[str, Any]:
        """One escalation, moved up its chain to where it stands now."""
        return read(self.store, KIND, escalation_id, self._advance)

    def list(self, status: str | None = None) -> list[dict[str, Any]]:
        """Escalations, newest first."""
        return read_all(self.store, KIND, status, self._advance)

    def may_answer(self, doc: Mapping[str, Any], who: str) -> bool:
        """True when ``who`` is the current target of the chain, or a target above it."""
        step = current_step(doc, self.clock())
        if step is None:
            return False
        for s in doc["chain"][step:]:
            target = s["target"]
            if who == target or who in self.groups.get(target, ()):
                return True
        return False

    def answer(
        self, escalation_id: str, who: str, verdict: str, note: str = "", *, via: Channel = Channel.PYTHON
    ) -> dict[str, Any]:
        """The current target (or someone above it in the chain) answers allow or deny, through ``via``."""
        if verdict not in ("allow", "deny"):
            raise HumanError(f"an escalation is answered allow or deny, not {verdict!r}", "bad-verdict")
        self.get(escalation_id)
        now = self.clock()

        def change(d: dict[str, Any]) -> dict[str, Any]:
            if d["status"] != "open":
                raise HumanError(f"escalation {escalation_id} is {d['status']}, not open", d["status"])
            if not self.may_answer(d, who):
                raise HumanError(
                    f"{who} is not the current target of escalation {escalation_id} ({d.get('target')})",
                    "not-target",
                )
            answer = {"by": who, "at": now, "verdict": verdict, "note": note, "via": via.value}
            d["answers"] = [*d["answers"], answer]
            d["status"] = "allowed" if verdict == "allow" else "denied"
            d["outcome"] = verdict
            history(d, now, f"answered {verdict}", who, note, via)
            return d

        doc = update(self.store, KIND, escalation_id, change)
        self.notifier.notify(KIND, "answered", doc)
        return doc

    def check(self, escalation_id: str, digest: str) -> tuple[str, dict[str, Any] | None, str]:
        """(status, doc, message) for a resubmitted action."""
        got = self.store.get_record(KIND, escalation_id)
        if got is None:
            return "unknown", None, f"escalation {escalation_id} does not exist"
        doc = self._advance(got[1])
        if doc["digest"] != digest:
            return "mismatch", doc, f"escalation {escalation_id} was about a different action"
        return doc["status"], doc, f"escalation {escalation_id} is {doc['status']}"

    def redeem(self, escalation_id: str, decision_id: str) -> bool:
        """Use an 'allowed' answer once (exactly one concurrent redemption wins)."""
        got = self.store.get_record(KIND, escalation_id)
        if got is None or got[1]["status"] != "allowed":
            return False
        version, doc = got
        doc["status"] = "redeemed"
        history(doc, self.clock(), "redeemed", None, decision_id)
        return self.store.cas_record(KIND, escalation_id, version, doc)
