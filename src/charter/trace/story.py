"""`charter trace explain`: the story of one decision, with the people who answered for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from charter.engine.explain import explain
from charter.trace.log import get, query


def human_steps(related: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Approvals and answers (who, when, what) found in the records that refer to a decision."""
    latest: dict[str, dict[str, Any]] = {}
    for rec in related:
        ev = rec.get("event", {})
        if rec.get("kind") in ("approval", "escalation") and ev.get("id"):
            have = latest.get(ev["id"])
            if have is None or len(ev.get("history", [])) > len(have.get("history", [])):
                latest[ev["id"]] = ev
    steps = []
    for ev in latest.values():
        for h in ev.get("history", []):
            if h.get("event") in ("approved-by", "denied", "answered allow", "answered deny"):
                steps.append(h)
    return sorted(steps, key=lambda h: h.get("at", 0))


def story(path: str | Path, record_id: str) -> tuple[dict[str, Any] | None, list[str]]:
    """The record and its explanation in plain words (None when there is no such record)."""
    rec, related = get(path, record_id)
    if rec is None:
        return None, []
    for hit in rec.get("rules", []):
        if hit.get("kind") in ("approval", "escalation"):
            gate_id = hit["id"].split(":", 1)[1]
            related += [
                r
                for r in query(path, kind=hit["kind"], limit=10_000)
                if r.get("event", {}).get("id") == gate_id
            ]
    lines = explain(rec, rec["request"], human_steps(related))
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
