"""Human gates: approval requests bound to one exact action, quorum, separation of duties, expiry."""

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

KIND = "approval"
#: How long a granted approval stays usable when its gate does not say (``redeem within``): after
#: this the action must be asked for again. Documented in docs/humans.md.
DEFAULT_REDEEM_S = 3600.0


def _members_ok(doc: Mapping[str, Any], gate: Mapping[str, Any], who: str) -> bool:
    members = gate.get("members") or []
    return not members or who in members


class Approvals:
    """Opens, answers, expires and redeems approval requests kept in the state store."""

    def __init__(self, store: StateStore, clock: Callable[[], float] = time.time, notifier: Any = None):
        self.store = store
        self.clock = clock
        self.notifier = notifier or NullNotifier()

    # ---- opening -----------------------------------------------------------------------------
    def open(
        self,
        *,
        decision_id: str,
        digest: str,
        requester: str,
        chain: Sequence[str],
        human: str | None,
        gates: Sequence[Mapping[str, Any]],
        revision: str,
        summary: Mapping[str, Any],
    ) -> dict[str, Any]:
        """Create a pending approval request for an action that needs one."""
        now = self.clock()
        # one pass (no generators: this runs on the decision path of every human gate)
        shortest = float("inf")
        redeem = float("inf")
        on_timeout = "deny"
        groups = set()
        for g in gates:
            shortest = min(shortest, float(g.get("expires_in_s", 86400.0)))
            redeem = min(redeem, float(g.get("redeem_within_s") or DEFAULT_REDEEM_S))
            if g.get("on_timeout") in ("halt", "escalate"):
                on_timeout = g["on_timeout"]
            groups.add(g["group"])
        if not groups:
            raise ValueError("an approval request needs at least one gate")
        expires = now + shortest
        group = ", ".join(sorted(groups))
        doc: dict[str, Any] = {
            "id": f"ap-{random_hex(8)}",
            "status": "pending",
            "digest": digest,
            "decision_id": decision_id,
            "requester": requester,
            "chain": list(chain),
            "human": human,
            "gates": [dict(g) for g in gates],
            "group": group,
            "created_at": now,
            "expires_at": expires,
            "redeem_within_s": redeem,
            "on_timeout": on_timeout,
            "approvals": [],
            "denials": [],
            "revision": revision,
            "action": dict(summary),
            "history": [{"at": now, "event": "opened", "by": requester, "note": ""}],
        }
        self.store.put_record(KIND, doc["id"], doc, ttl_s=RECORD_TTL_S)
        self.notifier.notify(KIND, "opened", doc)
        return doc

    # ---- reading -----------------------------------------------------------------------------
    def _expire(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Time out a pending request past its deadline, and a granted one not used in its window."""
        now = self.clock()
        changed: list[bool] = []
        if _unused_too_long(doc, now):

            def lapse(d: dict[str, Any]) -> dict[str, Any]:
                changed.clear()
                if _unused_too_long(d, now):
                    changed.append(True)
                    d["status"] = "expired"
                    d["outcome"] = "deny"
                    d["unused"] = True
                    history(d, now, "expired", None, f"approved but not used within {_span(d)}: deny")
                return d

            doc = update(self.store, KIND, doc["id"], lapse)
        elif doc["status"] == "pending" and now >= doc["expires_at"]:

            def change(d: dict[str, Any]) -> dict[str, Any]:
                changed.clear()
                if d["status"] == "pending":
                    changed.append(True)
                    d["status"] = "expired"
                    d["outcome"] = d.get("on_timeout", "deny")
                    history(d, now, "expired", None, f"no quorum in time: {d['outcome']}")
                return d

            doc = update(self.store, KIND, doc["id"], change)
        if changed:  # only the replica whose write timed it out tells anyone
            self.notifier.notify(KIND, "timed out", doc)
        return doc

    def get(self, approval_id: str) -> dict[str, Any]:
        """One approval request (expired ones show their timeout outcome)."""
        return read(self.store, KIND, approval_id, self._expire)

    def list(self, status: str | None = None) -> list[dict[str, Any]]:
        """Approval requests, newest first, optionally only one status."""
        return read_all(self.store, KIND, status, self._expire)

    # ---- answering ---------------------------------------------------------------------------
    @staticmethod
    def refusal(doc: Mapping[str, Any], who: str) -> HumanError | None:
        """Why ``who`` may not answer this request (not a member; separation of duties), or None.
        The inbox asks this to explain a missing button; approve and deny raise it."""
        if not any(_members_ok(doc, g, who) for g in doc["gates"]):
            groups = ", ".join(g["group"] for g in doc["gates"])
            return HumanError(f"{who} is not a member of {groups}", "not-approver")
        sod = any(g.get("separation_of_duties", True) for g in doc["gates"])
        if sod and (
            who == doc["requester"] or who in doc["chain"] or (doc.get("human") and who == doc["human"])
        ):
            return HumanError(
                f"separation of duties: {who} asked for this action (or is in its delegation chain) "
                "and cannot approve it",
                "self-approval",
            )
        return None

    def _check_approver(self, doc: Mapping[str, Any], who: str) -> None:
        refused = self.refusal(doc, who)
        if refused is not None:
            raise refused

    def approve(
        self, approval_id: str, who: str, note: str = "", *, via: Channel = Channel.PYTHON
    ) -> dict[str, Any]:
        """Record one approval by ``who`` (acting through ``via``); the request is approved once
        every gate reaches its quorum, and stays usable for its redeem window from then."""
        now = self.clock()
        self.get(approval_id)

        def change(d: dict[str, Any]) -> dict[str, Any]:
            if d["status"] != "pending":
                raise HumanError(f"approval {approval_id} is {d['status']}, not pending", d["status"])
            if now >= d["expires_at"]:
                raise HumanError(f"approval {approval_id} expired", "expired")
            self._check_approver(d, who)
            if any(a["by"] == who for a in d["approvals"]):
                raise HumanError(
                    f"{who} has already approved {approval_id}; an approver counts once", "duplicate"
                )
            d["approvals"] = [*d["approvals"], {"by": who, "at": now, "note": note, "via": via.value}]
            history(d, now, "approved-by", who, note, via)
            met = all(
                sum(1 for a in d["approvals"] if _members_ok(d, g, a["by"])) >= int(g.get("quorum", 1))
                for g in d["gates"]
            )
            if met:
                d["status"] = "approved"
                d["redeem_by"] = now + float(d.get("redeem_within_s") or DEFAULT_REDEEM_S)
                history(d, now, "approved", None, f"quorum reached; usable for {_span(d)}")
            return d

        doc = update(self.store, KIND, approval_id, change)
        self.notifier.notify(KIND, "approved" if doc["status"] == "approved" else "answered", doc)
        return doc

    def deny(
        self, approval_id: str, who: str, note: str = "", *, via: Channel = Channel.PYTHON
    ) -> dict[str, Any]:
        """An eligible approver refuses (through ``via``): the request is denied."""
        now = self.clock()
        self.get(approval_id)

        def change(d: dict[str, Any]) -> dict[str, Any]:
            if d["status"] != "pending":
                raise HumanError(f"approval {approval_id} is {d['status']}, not pending", d["status"])
            self._check_approver(d, who)
            d["denials"] = [*d["denials"], {"by": who, "at": now, "note": note, "via": via.value}]
            d["status"] = "denied"
            history(d, now, "denied", who, note, via)
            return d

        doc = update(self.store, KIND, approval_id, change)
        self.notifier.notify(KIND, "denied", doc)
        return doc

    # ---- redeeming (used by the engine) ------------------------------------------------------
    def check(self, approval_id: str, digest: str) -> tuple[str, dict[str, Any] | None, str]:
        """(status, doc, message) for a resubmitted action: 'approved' only if usable now."""
        got = self.store.get_record(KIND, approval_id)
        if got is None:
            return "unknown", None, f"approval {approval_id} does not exist"
        doc = self._expire(got[1])
        if doc["digest"] != digest:
            return "mismatch", doc, f"approval {approval_id} was given for a different action"
        status = doc["status"]
        messages = {
            "approved": f"approval {approval_id} was granted",
            "pending": f"approval {approval_id} is still waiting for approvers",
            "denied": f"approval {approval_id} was denied",
            "expired": (
                f"approval {approval_id} was granted but not used within {_span(doc)}; ask again"
                if doc.get("unused")
                else f"approval {approval_id} expired before reaching quorum"
            ),
            "redeemed": f"approval {approval_id} was already used",
        }
        return status, doc, messages.get(status, status)

    def redeem(self, approval_id: str, decision_id: str) -> bool:
        """Mark an approved request used; exactly one of many concurrent redemptions wins."""
        got = self.store.get_record(KIND, approval_id)
        if got is None:
            return False
        version, doc = got
        now = self.clock()
        if doc["status"] != "approved" or _unused_too_long(doc, now):
            return False
        doc["status"] = "redeemed"
        doc["redeemed_by_decision"] = decision_id
        history(doc, now, "redeemed", None, decision_id)
        ok = self.store.cas_record(KIND, approval_id, version, doc)
        if ok:
            self.notifier.notify(KIND, "redeemed", doc)
        return ok


def _unused_too_long(doc: Mapping[str, Any], now: float) -> bool:
    """A granted approval whose redeem window has passed (a record granted before windows existed
    gets the default window from its last approval)."""
    if doc["status"] != "approved":
        return False
    by = doc.get("redeem_by")
    if by is None:
        last = max((float(a.get("at", 0)) for a in doc.get("approvals", ())), default=0.0)
        by = last + DEFAULT_REDEEM_S
    return bool(now >= by)


def _span(doc: Mapping[str, Any]) -> str:
    """The redeem window in words ('1 h', '15 min', '30 s')."""
    s = float(doc.get("redeem_within_s") or DEFAULT_REDEEM_S)
    if s >= 3600 and s % 3600 == 0:
        return f"{s / 3600:g} h"
    if s >= 60 and s % 60 == 0:
        return f"{s / 60:g} min"
    return f"{s:g} s"
