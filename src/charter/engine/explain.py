"""Plain-language explanations of decisions, for people who do not read policy code."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from charter.engine.decision import Decision
from charter.engine.req import Req
from charter.enums import ActionKind, Outcome

_VERB = {
    Outcome.ALLOW: "was allowed",
    Outcome.REQUIRE_APPROVAL: "needs human approval",
    Outcome.ESCALATE: "was escalated",
    Outcome.DENY: "was denied",
    Outcome.HALT: "was halted",
}


def _num(x: float | None) -> str:
    if x is None:
        return "?"
    return f"{x:,.2f}".rstrip("0").rstrip(".") if x != int(x) else f"{int(x):,}"


def describe_action(req: Req) -> str:
    """'the call to payments.transfer (amount 12,000) by pay-1'."""
    what = {
        ActionKind.CALL: f"the call to {req.target}",
        ActionKind.DELEGATE: f"the hand-off to {req.target}",
        ActionKind.MODEL: f"the model call to {req.target}",
        ActionKind.MESSAGE: f"the message to {req.target}",
    }[req.kind]
    amount = req.args.get("amount") if isinstance(req.args, Mapping) else None
    if isinstance(amount, (int, float)) and not isinstance(amount, bool):
        unit = next(iter(req.cost), "")
        what += f" of {_num(float(amount))}{(' ' + unit) if unit else ''}"
    return f"{what} by {req.actor_id}"


def explain(decision: Decision, req: Req) -> list[str]:
    """Sentences telling the story of a decision."""
    lines = [f"{describe_action(req)[0].upper()}{describe_action(req)[1:]} {_VERB[decision.outcome]}."]
    if decision.default_deny:
        lines.append("No rule permits it, and anything not permitted is denied (default deny).")
    for hit in decision.rules:
        because = f"because of {hit.kind} '{hit.id}'"
        if hit.error:
            lines.append(f"Rule '{hit.id}' could not be evaluated ({hit.error}), so it failed closed.")
        elif hit.reason:
            lines.append(f"This was decided {because}: {hit.reason}")
        else:
            lines.append(f"This was decided {because}.")
    ob: dict[str, Any] = decision.obligations
    for gate in ob.get("approvals", []):
        who = ", ".join(gate.get("members", [])) or "its members"
        hours = gate.get("expires_in_s", 0) / 3600
        lines.append(
            f"It needs {gate['quorum']} approval{'s' if gate['quorum'] != 1 else ''} from group "
            f"'{gate['group']}' ({who}) within {_num(hours)} hours; if they do not, the outcome is "
            f"{gate.get('on_timeout', 'deny')}."
            + (" The requester cannot approve it." if gate.get("separation_of_duties") else "")
        )
    esc = ob.get("escalation")
    if esc:
        chain = " then ".join(
            f"{s['target']}" + (f" (for {_num((s['timeout_s'] or 0) / 60)} min)" if s.get("timeout_s") else "")
            for s in esc.get("chain", [])
        )
        if chain:
            lines.append(f"It goes to {chain}; if nobody answers, the outcome is {esc.get('fallback', 'deny')}.")
        sigs = esc.get("signals") or []
        if sigs:
            side = "; ".join(f"{s['source']} reports {s['kind']} (score {s['score']:g})" for s in sigs)
            lines.append(f"Signals side by side: {side}.")
    for s in ob.get("stops", []):
        lines.append(f"A stop was set on {s['scope']} {s['value']}: {s['reason']}")
    for b in decision.boundaries:
        if b.kind == "budget" and b.limit is not None:
            before = (b.used or 0) + (b.reserved or 0)
            after = before + (b.amount or 0)
            state = "fits" if b.ok else "would exceed it"
            lines.append(
                f"Budget {b.id} ({b.scope}): {_num(before)} -> {_num(after)} of {_num(b.limit)} {b.unit}; {state}."
            )
        elif b.kind == "rate":
            lines.append(f"Rate {b.id}: {_num(b.used)} of {_num(b.limit)} {b.detail or ''}".rstrip() + ".")
        elif b.kind == "tripwire":
            state = "tripped" if not b.ok else "not tripped"
            lines.append(f"Tripwire {b.id} ({b.detail}): {_num(b.used)} against {_num(b.limit)}, {state}.")
        elif b.kind == "stop":
            lines.append(f"An emergency stop covers it: {b.detail}.")
    for s in decision.shadow:
        lines.append(f"Shadow rule '{s.id}' would have made it {s.effect.value} (not enforced).")
    for f in decision.failures:
        lines.append(f"Failure in {f.where}: {f.error} (took: {f.took}).")
    lines.append(f"Policy revision {decision.revision}; decision {decision.id}.")
    return lines
