"""Plain-language explanations of decisions, for people who do not read policy code.

Works on the JSON-ready forms (``Decision.to_dict()``, ``Req.to_dict()``) so that a stored trace
record explains itself exactly like a live decision.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from charter.engine.boundaries import BY_KIND
from charter.engine.boundaries import number_text as _num
from charter.enums import HitKind

_VERB = {
    "allow": "was allowed",
    "require_approval": "needed human approval",
    "escalate": "was escalated",
    "deny": "was denied",
    "halt": "was halted",
}
_KIND = {"call": "call to", "delegate": "hand-off to", "model": "model call to", "message": "message to"}


def _clock(t: Any) -> str:
    try:
        return dt.datetime.fromtimestamp(float(t), dt.UTC).strftime("%H:%M")
    except (TypeError, ValueError, OverflowError):
        return "?"


def describe_action(request: Mapping[str, Any]) -> str:
    """'the call to payments.transfer of 12,000 USD by payments-agent'."""
    action = request.get("action", {})
    what = f"the {_KIND.get(action.get('kind', 'call'), 'call to')} {action.get('target')}"
    args = action.get("args") or {}
    amount = args.get("amount") if isinstance(args, Mapping) else None
    if isinstance(amount, (int, float)) and not isinstance(amount, bool):
        unit = next(iter(request.get("cost") or {}), "") or args.get("currency", "")
        what += f" of {_num(amount)}{(' ' + unit) if unit else ''}"
    return f"{what} by {request.get('actor', {}).get('id')}"


def _grant_lines(d: Mapping[str, Any], r: Mapping[str, Any]) -> list[str]:
    """What the run grants the decision consulted said (docs/language.md, "Run grants")."""
    grants = d.get("grants") or []
    if not grants:
        return []
    run = (r.get("context") or {}).get("run") or "?"
    covering = [g for g in grants if g.get("covers")]
    if covering:
        return [f"It was covered by grant {g['id']} ({g['kind']}) of run {run}." for g in covering[:1]]
    out = [f"No grant of run {run} covers it:"]
    out += [f"  {g['id']} ({g['kind']}) does not cover it (uses left: {g.get('uses_left')})." for g in grants]
    return out


def explain(
    decision: Mapping[str, Any], request: Mapping[str, Any], humans: Sequence[Mapping[str, Any]] | None = None
) -> list[str]:
    """Sentences telling the story of a decision (and of the people who answered for it)."""
    d = decision if isinstance(decision, Mapping) else decision.to_dict()
    r = request if isinstance(request, Mapping) else request.to_dict()
    action = describe_action(r)
    lines = [f"{action[0].upper()}{action[1:]} {_VERB.get(d['outcome'], d['outcome'])}."]
    if d.get("default_deny"):
        lines.append("No rule permits it, and anything not permitted is denied (default deny).")
    for hit in d.get("rules", []):
        if hit.get("error"):
            lines.append(f"Rule '{hit['id']}' could not be evaluated ({hit['error']}), so it failed closed.")
        elif hit.get("reason"):
            lines.append(f"This was decided by {hit['kind']} '{hit['id']}': {hit['reason']}")
        else:
            lines.append(f"This was decided by {hit['kind']} '{hit['id']}'.")
    evidence = d.get("evidence") or {}
    for rule_id, values in evidence.items():
        shown = "; ".join(f"{text} is {value}" for text, value in values)
        if shown:
            lines.append(f"In rule '{rule_id}': {shown}.")
    ob: Mapping[str, Any] = d.get("obligations") or {}
    for gate in ob.get("approvals", []):
        who = ", ".join(gate.get("members", [])) or "its members"
        hours = float(gate.get("expires_in_s", 0)) / 3600
        q = int(gate["quorum"])
        lines.append(
            f"It needed {q} approval{'s' if q != 1 else ''} from {gate['group']} ({who}) within "
            f"{_num(hours)} hours; otherwise the outcome is {gate.get('on_timeout', 'deny')}."
            + (" The requester could not approve it." if gate.get("separation_of_duties") else "")
        )
    esc = ob.get("escalation")
    if esc:
        chain = " then ".join(
            f"{s['target']}"
            + (f" (for {_num(float(s['timeout_s']) / 60)} min)" if s.get("timeout_s") else "")
            for s in esc.get("chain", [])
        )
        if chain:
            lines.append(
                f"It went to {chain}; if nobody answers, the outcome is {esc.get('fallback', 'deny')}."
            )
        sigs = esc.get("signals") or []
        if sigs:
            side = "; ".join(
                f"{s['source']} reports {s['kind']} (score {float(s.get('score', 0)):g})" for s in sigs
            )
            lines.append(f"Signals side by side: {side}.")
    for s in ob.get("stops", []):
        lines.append(f"A stop was set on {s['scope']} {s['value']}: {s['reason']}")
    for h in humans or []:
        verb = {
            "approved-by": "approved",
            "denied": "denied",
            "answered allow": "allowed",
            "answered deny": "denied",
        }.get(h.get("event", ""), h.get("event", ""))
        if h.get("by"):
            lines.append(
                f"{h['by']} {verb} it at {_clock(h.get('at'))} UTC"
                + (f" ({h['note']})" if h.get("note") else "")
                + "."
            )
    lines.extend(_grant_lines(d, r))
    for b in d.get("boundaries", []):
        kind = BY_KIND.get(str(b.get("kind")))
        if kind is not None:
            text = kind.describe(b)
            if text:
                lines.append(text)
        elif b.get("kind") == HitKind.STOP:
            lines.append(f"An emergency stop covered it: {b.get('detail')}.")
        elif b.get("kind") == HitKind.GRANT:
            limit = b.get("limit")
            of = f" of {_num(float(limit))}" if limit is not None else ""
            lines.append(
                f"It used one use of grant {b.get('id')} ({_num(float(b.get('used') or 0))}{of} used)."
            )
    for s in d.get("shadow", []):
        lines.append(f"Shadow rule '{s['id']}' would have made it {s['effect']} (not enforced).")
    for f in d.get("failures", []):
        lines.append(f"Failure in {f['where']}: {f['error']} (took: {f['took']}).")
    lines.append(f"Policy revision {d.get('revision')}; decision {d.get('id')}.")
    return lines
