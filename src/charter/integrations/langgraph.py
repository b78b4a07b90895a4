"""LangGraph: a guarded tool call that interrupts on require_approval and resumes with the approval."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from charter.enums import Outcome
from charter.extras import missing_extra
from charter.guard import Denied, Escalated, Halted, build_request
from charter.hits import decision_reasons, reason_text

try:  # the framework itself: without it the adapter cannot work, and says which extra to install
    import langgraph  # noqa: F401
except ImportError as _exc:
    raise missing_extra("langgraph", "the LangGraph adapter", _exc) from _exc

__all__ = ["charter_call", "charter_tool_node"]

#: the name of the LangGraph task that decides and runs one tool call (its result is checkpointed)
TASK_NAME = "charter_tool_call"


class _Attempt:
    """Decide one call and, if allowed, run and settle it; a plain, checkpointable dict back.

    ``{"result": ...}`` ran; ``{"pending": {...}}`` needs an approval (nothing ran);
    ``{"error", "outcome"}`` refused. Run as a LangGraph task, so that when the node is re-run on
    resume, calls that already ran (or opened their approval) are replayed from the checkpoint
    instead of being decided and executed again.
    """

    def __init__(
        self,
        backend: Any,
        actor: str,
        tools: Mapping[str, Callable[..., Any]],
        context: Mapping[str, Any] | None,
        estimate: Mapping[str, float] | None = None,
        cost: Callable[[Any], Any] | None = None,
    ):
        self.backend, self.actor, self.tools, self.context = backend, actor, tools, context
        self.estimate, self.cost = estimate, cost

    def __call__(self, name: str, args: dict[str, Any], approval: str | None = None) -> dict[str, Any]:
        fn = self.tools.get(name)
        if fn is None:
            return {"name": name, "error": f"unknown tool {name}", "outcome": "deny"}
        req = build_request(self.actor, name, args, self.estimate, self.context)
        if approval:
            req = {**req, "approval": approval}
        d = self.backend.decide(req)
        if d.outcome is Outcome.REQUIRE_APPROVAL and d.obligations.get("approval_id") and not approval:
            return {
                "name": name,
                "pending": {
                    "charter": "approval",
                    "approval_id": d.obligations["approval_id"],
                    "target": name,
                    "args": dict(args),
                    "decision_id": d.id,
                    "reasons": [reason_text(h) for h in d.rules],
                },
            }
        if d.outcome is not Outcome.ALLOW:
            return {
                "name": name,
                "error": f"{d.outcome.value}: {decision_reasons(d)}",
                "outcome": d.outcome.value,
            }
        settle = bool(d.hold_id or (self.context or {}).get("run"))
        try:
            result = fn(**args)
        except BaseException:
            if settle:
                self.backend.settle(d.id, outcome="failure")
            raise
        if settle:
            self.backend.settle(d.id, actual_cost=self.cost(result) if self.cost else None, outcome="success")
        return {"name": name, "result": result}


def _approval_answer(answer: Any) -> str | None:
    aid = answer.get("approval_id") if isinstance(answer, Mapping) else answer
    return aid if isinstance(aid, str) and aid else None


def _guarded(attempt: _Attempt, name: str, args: dict[str, Any]) -> dict[str, Any]:
    """One call inside a node: the attempt (a task), the interrupt, the resumed attempt."""
    from langgraph.func import task
    from langgraph.types import interrupt

    step: Any = task(name=TASK_NAME)(attempt)  # type: ignore[arg-type]
    out: dict[str, Any] = step(name, args).result()
    if "pending" in out:
        aid = _approval_answer(interrupt(out["pending"]))
        if aid is None:
            return {"name": name, "error": f"approval not given for {name}", "outcome": "deny"}
        out = step(name, args, aid).result()
    return out


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
    escalate raise Denied / Halted / Escalated.

    Idempotent on resume: the decision and the run are a LangGraph task whose result is kept in
    the checkpoint, so when LangGraph re-runs the node after the interrupt, a call made before it
    is not decided or executed again (the graph needs a checkpointer, as any interrupt does).
    """
    out = _guarded(_Attempt(backend, actor, {target: fn}, context, estimate, cost), target, dict(args))
    if "result" in out:
        return out["result"]
    outcome = out.get("outcome", "deny")
    cls = Halted if outcome == "halt" else Escalated if outcome == "escalate" else Denied
    raise cls(None, f"{out['error']}")


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

    Results (or ``{"error": reason, "outcome": ...}`` for a refused call) go to ``state[out]``;
    a call needing approval interrupts the graph (see :func:`charter_call`). On resume, the calls
    before it are replayed from the checkpoint, not run a second time.
    """
    attempt = _Attempt(backend, actor, tools, context)

    def node(state: Mapping[str, Any]) -> dict[str, Any]:
        results: list[Any] = []
        for call in state.get(key) or []:
            name, args = str(call["name"]), dict(call.get("args") or {})
            r = _guarded(attempt, name, args)
            results.append({k: v for k, v in r.items() if k != "pending"})
        return {out: results}

    return node
