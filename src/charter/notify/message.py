"""What a notification says: the event's name, a one-line title, the facts, and a link into the inbox."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from charter.approvals.identity import channel_label

#: Events a target hears when its config names none: the ones where someone has to act or know.
DEFAULT_EVENTS = frozenset(
    {
        "approval.opened",
        "approval.approved",
        "approval.denied",
        "approval.timed-out",
        "escalation.opened",
        "escalation.moved-up",
        "escalation.timed-out",
        "escalation.answered",
        "stop.stopped",
        "stop.resume-requested",
        "stop.resumed",
    }
)
#: Every event name charter sends (a config naming another one is an error).
ALL_EVENTS = DEFAULT_EVENTS | {"approval.answered", "approval.redeemed", "escalation.redeemed"}


def event_name(kind: str, event: str) -> str:
    """'approval' + 'timed out' -> 'approval.timed-out' (the Standard Webhooks ``type``)."""
    return f"{kind}.{event.replace(' ', '-')}"


def _utc(t: Any) -> str:
    try:
        return dt.datetime.fromtimestamp(float(t), dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (TypeError, ValueError, OverflowError):
        return "?"


@dataclass(frozen=True)
class Notice:
    """One event, ready for every kind of target."""

    type: str
    at: float
    title: str
    facts: tuple[tuple[str, str], ...]
    link: str | None
    data: Mapping[str, Any] = field(repr=False)

    @property
    def text(self) -> str:
        """Plain text: the title, the facts one per line, and the link."""
        lines = [self.title, *(f"{k}: {v}" for k, v in self.facts)]
        if self.link:
            lines.append(f"Open in the inbox: {self.link}")
        return "\n".join(lines)

    def envelope(self) -> dict[str, Any]:
        """The Standard Webhooks payload: ``type``, ``timestamp`` (RFC 3339) and ``data``."""
        stamp = dt.datetime.fromtimestamp(self.at, dt.UTC).isoformat().replace("+00:00", "Z")
        return {"type": self.type, "timestamp": stamp, "data": {**self.data, "inbox_url": self.link}}


def _who(entry: Mapping[str, Any]) -> str:
    label = channel_label(entry.get("via"))
    return f"{entry.get('by')} ({label})" if label else str(entry.get("by"))


def build(kind: str, event: str, record: Mapping[str, Any], at: float, inbox: str | None) -> Notice:
    """The notice for one lifecycle event of an approval, escalation or stop."""
    name = event_name(kind, event)
    rid = str(record.get("id") or "")
    action = record.get("action") or {}
    facts: list[tuple[str, str]] = []
    link = None
    base = inbox.rstrip("/") if inbox else None
    if kind in ("approval", "escalation"):
        what = f"{action.get('kind', 'call')} {action.get('target')} by {action.get('agent')}"
        facts.append(("Action", what))
        if action.get("args"):
            facts.append(("Arguments", ", ".join(f"{k}={v!r}" for k, v in dict(action["args"]).items())))
        if action.get("workflow") or action.get("run"):
            facts.append(("Run", f"{action.get('workflow') or '-'} / {action.get('run') or '-'}"))
        if kind == "approval":
            have = len(record.get("approvals") or [])
            need = max((int(g.get("quorum", 1)) for g in record.get("gates") or []), default=1)
            facts.append(("Approvers", f"{record.get('group')} ({have} of {need})"))
            if record.get("expires_at"):
                facts.append(("Expires", _utc(record["expires_at"])))
            title = f"Approval {rid} {event}: {what}"
        else:
            facts.append(("Now with", str(record.get("target") or record.get("outcome") or "-")))
            title = f"Escalation {rid} {event}: {what}"
        reasons = [str(r) for r in record.get("reasons") or []]
        if reasons:
            facts.append(("Reason", "; ".join(reasons)))
        last = (record.get("history") or [{}])[-1]
        if last.get("by") and event not in ("opened",):
            facts.append(("By", _who(last)))
        if base:
            link = f"{base}/{'approvals' if kind == 'approval' else 'escalations'}/{quote(rid, safe='')}"
    else:
        scope = f"{record.get('scope')} {record.get('value')}"
        title = f"Stop: {scope} {event} by {record.get('by')}"
        facts.append(("Scope", scope))
        facts.append(("By", _who(record)))
        if record.get("reason"):
            facts.append(("Reason", str(record["reason"])))
        if base:
            link = f"{base}/stops"
    return Notice(name, at, title, tuple(facts), link, dict(record))
