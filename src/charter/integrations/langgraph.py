"""LangGraph: a guarded tool call that interrupts on require_approval and resumes with the approval."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from charter.enums import Outcome
from charter.guard import Denied, Escalated, Halted, build_request
from charter.hits import reason_text

__all__ = ["charter_call", "charter_tool_node"]


def charter_call(
    backend: Any,
    actor: str,
    target: str,
    args: Mapping[str, Any],
    fn: Callable[..., Any],
    *,
    context: Mapping[str, Any] | None = None,
    estimate: Mapping[str, float] | None = None,
    cost: Callable[[Any], Any] | None = None,
) -> Any:
    """Call ``fn(**args)`` inside a LangGraph node, under charter.

    allow: run and settle. require_approval: ``interrupt({"charter": "approval", "approval_id": ...})``;
    resume the graph with ``Command(resume=approval_id)`` (or ``{"approval_id": ...}``) once the
    approval has its quorum: the call is resubmitted with it and, if allowed, runs. A resume with
    anything else (or a denied approval) raises :class:`charter.guard.Denied`. deny / halt /
    escalate raise Denied / Halted / Escalated. (On resume LangGraph re-runs the node from the
    start, so the first decision is made again and may open a second, unused approval record.)
    """
    from langgraph.types import interrupt

    req = build_request(actor, target, args, estimate, context)
    d = backend.decide(req)
    if d.outcome is Outcome.REQUIRE_APPROVAL and d.obligations.get("approval_id"):
        answer = interrupt(
            {
                "charter": "approval",
                "approval_id": d.obligations["approval_id"],
                "target": target,
                "args": dict(args),
                "decision_id": d.id,
                "reasons": [reason_text(h) for h in d.rules],
            }
        )
        aid = answer.get("approval_id") if isinstance(answer, Mapping) else answer
        if not isinstance(aid, str) or not aid:
            raise Denied(d, f"approval not given for {target}")
        d = backend.decide({**req, "approval": aid})
    if d.outcome is Outcome.HALT:
        raise Halted(d)
    if d.outcome is Outcome.ESCALATE:
        raise Escalated(d)
    if d.outcome is not Outcome.ALLOW:
        raise Denied(d)
    try:
        result = fn(**args)
    except BaseException:
        if d.hold_id or (context or {}).get("run"):
            backend.settle(d.id, outcome="failure")
        raise
    if d.hold_id or (context or {}).get("run"):
        backend.settle(d.id, actual_cost=cost(result) if cost else None, outcome="success")
    return result


def charter_tool_node(
    backend: Any,
    actor: str,
    tools: Mapping[str, Callable[..., Any]],
    *,
    context: Mapping[str, Any] | None = None,
    key: str = "tool_calls",
    out: str = "tool_results",
) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """A graph node running ``state[key]`` (a list of ``{"name", "args"}``) through charter.

    Results (or ``{"error": reason}`` for a refused call) go to ``state[out]``; a call needing
    approval interrupts the graph (see :func:`charter_call`).
    """

    def node(state: Mapping[str, Any]) -> dict[str, Any]:
        results: list[Any] = []
        for call in state.get(key) or []:
            name, args = call["name"], dict(call.get("args") or {})
            fn = tools.get(name)
            if fn is None:
                results.append({"name": name, "error": f"unknown tool {name}"})
                continue
            try:
                results.append(
                    {"name": name, "result": charter_call(backend, actor, name, args, fn, context=context)}
                )
            except (Denied, Halted, Escalated) as exc:
                results.append(
                    {
                        "name": name,
                        "error": str(exc),
                        "outcome": exc.decision.outcome.value if exc.decision is not None else "deny",
                    }
                )
        return {out: results}

    return node
