"""`charter trace explain`: the story of one decision, with the people who answered for it and how."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from charter.approvals.identity import channel_label
from charter.engine.explain import explain
from charter.trace.log import get, query

#: history events that are a person's answer (the rest are the record's own lifecycle)
_ANSWERS = ("approved-by", "denied", "answered allow", "answered deny")
_GATE_KINDS = ("approval", "escalation")
#: history events in words ("approved-by lena" is one approval; "approved" is the quorum reached)
_EVENT_WORDS = {"approved-by": "approved", "approved": "granted"}


def _who(name: Any, via: Any) -> str:
    """'alice, through the inbox,' — the name and the channel, as the subject of a sentence."""
    label = channel_label(via)
    return f"{name}, {label}," if label else str(name)


def _by(name: Any, via: Any) -> str:
    """'alice through the inbox' — the name and the channel, after 'by'."""
    label = channel_label(via)
    return f"{name} {label}" if label else str(name)


def _when(t: Any) -> str:
    try:
        return dt.datetime.fromtimestamp(float(t), dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError, OverflowError):
        return "?"


def _latest(related: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The newest state of each approval or escalation among trace records (longest history)."""
    latest: dict[str, dict[str, Any]] = {}
    for rec in related:
        ev = rec.get("event", {})
        if rec.get("kind") in _GATE_KINDS and ev.get("id"):
            have = latest.get(ev["id"])
            if have is None or len(ev.get("history", [])) > len(have.get("history", [])):
                latest[ev["id"]] = ev
    return latest


def human_steps(related: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Approvals and answers (who, through which channel, when, what) in the records that refer to
    a decision; ``by`` already names the channel, ready for :func:`charter.engine.explain.explain`."""
    steps = []
    for ev in _latest(related).values():
        for h in ev.get("history", []):
            if h.get("event") in _ANSWERS and h.get("by"):
                steps.append({**h, "by": _who(h["by"], h.get("via"))})
    return sorted(steps, key=lambda h: h.get("at", 0))


def _stop_lines(path: str | Path, rec: Mapping[str, Any]) -> list[str]:
    """Who set each stop that halted the decision, through which channel, and when."""
    lines: list[str] = []
    halted_by = [h["id"].split(":", 2)[1:] for h in rec.get("rules", []) if h.get("kind") == "stop"]
    if not halted_by:
        return lines
    stops = query(path, kind="stop", limit=10_000)  # newest first
    for scope, value in (tuple(x) for x in halted_by if len(x) == 2):
        for s in stops:
            ev = s.get("event", {})
            if (ev.get("scope"), ev.get("value"), ev.get("event")) == (scope, value, "stopped") and float(
                s.get("at", 0)
            ) <= float(rec.get("at", 0)):
                lines.append(
                    f"The stop on {scope} {value} was set by {_who(ev.get('by'), ev.get('via'))} "
                    f"at {_when(ev.get('at'))}: {ev.get('reason')}"
                )
                break
    return lines


def event_story(rec: Mapping[str, Any]) -> list[str]:
    """An approval, escalation, stop or resume record told in plain words, person by person."""
    ev: Mapping[str, Any] = rec.get("event", {})
    kind = rec.get("kind")
    if kind in _GATE_KINDS:
        action = ev.get("action", {})
        lines = [
            f"{str(kind).capitalize()} {ev.get('id')} for the {action.get('kind', 'call')} "
            f"{action.get('target')} by {action.get('agent')} is {ev.get('status')}."
        ]
        for h in ev.get("history", []):
            who = f" by {_by(h['by'], h.get('via'))}" if h.get("by") else ""
            note = f" ({h['note']})" if h.get("note") else ""
            event = _EVENT_WORDS.get(str(h.get("event")), str(h.get("event")))
            lines.append(f"{_when(h.get('at'))}: {event}{who}{note}")
        return lines
    if kind == "stop":
        what = f"{ev.get('scope')} {ev.get('value')}"
        if ev.get("event") == "resumed" and ev.get("operators"):
            asked = "; ".join(
                f"{_by(p.get('by'), p.get('via'))} at {_when(p.get('at'))}" for p in ev["operators"]
            )
            return [f"{what} was resumed at {_when(ev.get('at'))}, asked for by: {asked}."]
        verb = {"stopped": "stopped", "resume-requested": "asked to resume"}.get(
            str(ev.get("event")), str(ev.get("event"))
        )
        reason = f": {ev['reason']}" if ev.get("reason") else "."
        return [f"{_who(ev.get('by'), ev.get('via'))} {verb} {what} at {_when(ev.get('at'))}{reason}"]
    return [f"A {kind} record at {_when(rec.get('at'))}."]


def story(path: str | Path, record_id: str) -> tuple[dict[str, Any] | None, list[str]]:
    """The record and its explanation in plain words (None when there is no such record).

    ``record_id`` is a decision id, a trace record id, or an approval / escalation id (ap-…, es-…:
    the newest record of it)."""
    rec, related = get(path, record_id)
    if rec is None and record_id.startswith(("ap-", "es-")):
        kind = "approval" if record_id.startswith("ap-") else "escalation"
        mine = [r for r in query(path, kind=kind, limit=10_000) if r.get("event", {}).get("id") == record_id]
        if not mine:
            return None, []
        newest = max(mine, key=lambda r: len(r.get("event", {}).get("history", [])))
        return newest, event_story(newest)
    if rec is None:
        return None, []
    if rec.get("kind") != "decision":
        return rec, event_story(rec)
    for hit in rec.get("rules", []):
        if hit.get("kind") in _GATE_KINDS:
            gate_id = hit["id"].split(":", 1)[1]
            related += [
                r
                for r in query(path, kind=hit["kind"], limit=10_000)
                if r.get("event", {}).get("id") == gate_id
            ]
    lines = explain(rec, rec["request"], human_steps(related))
    for extra in _stop_lines(path, rec):
        lines.insert(-1, extra)
    settles = [r for r in related if r.get("kind") == "settlement"]
    for s in settles:
        ev = s["event"]
        lines.insert(
            -1,
            f"It was settled: {ev.get('result') or 'done'}"
            + (f"; result labels: {', '.join(ev['labels'])}" if ev.get("labels") else "")
            + ".",
        )
    return rec, lines
