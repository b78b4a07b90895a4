"""Turns a validated request into an evaluation view: actor resolution, effective signals, scope keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from charter.engine.evaluate import View
from charter.engine.policy import CompiledPolicy
from charter.engine.request import Request
from charter.enums import ActionKind, Scope


class RequestError(ValueError):
    """A malformed request; the message names the offending field."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def parse_request(request: Request | Mapping[str, Any]) -> Request:
    """Validate a request given as a model or a mapping; errors name the field."""
    if isinstance(request, Request):
        return request
    if not isinstance(request, Mapping):
        raise RequestError(f"a request must be a mapping, not {type(request).__name__}")
    try:
        return Request.model_validate(request)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(x) for x in first["loc"]) or "(request)"
        more = len(exc.errors()) - 1
        msg = f"request field '{loc}': {first['msg']}"
        if more:
            msg += f" (and {more} more problem{'s' if more > 1 else ''})"
        raise RequestError(msg, loc) from None


def effective_signals(policy: CompiledPolicy, req: Request) -> tuple[dict[str, Any], ...]:
    """Signals rules can see: a concern is dropped when a higher-ranked source clears.

    INVARIANT: a clearing signal never suppresses a concern from a source of equal or higher
    rank, so "research says no issue" cannot outweigh risk or compliance when they outrank it.
    """
    if not req.signals:
        return ()
    ranks = policy.signal_source_rank
    kind_source = policy.signal_kind_source
    sigs = []
    for s in req.signals:
        source = kind_source.get(s.kind, s.source)
        sigs.append(
            {
                "source": source, "kind": s.kind, "severity": s.severity, "score": float(s.score),
                "note": s.note, "rank": ranks.get(source, 0),
            }
        )
    clears = [s for s in sigs if s["kind"] in policy.signal_clears]
    if not clears:
        return tuple(sigs)
    top_clear = max(s["rank"] for s in clears)
    return tuple(
        s for s in sigs if s["kind"] in policy.signal_clears or s["rank"] >= top_clear
    )


def coerce(value: Any, typ: str) -> Any:
    """Coerce a JSON value to a declared type when it is lossless (e.g. 12000 -> 12000.0)."""
    if typ in ("double", "number") and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typ == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def build_view(policy: CompiledPolicy, req: Request, now: float) -> View:
    """Resolve the actor (declared agents are authoritative) and the target, and build the view."""
    actor = req.actor
    declared = policy.agents.get(actor.id)
    if declared is not None:
        roles = declared.roles
        attrs: dict[str, Any] = dict(actor.attributes)
        attrs.update(declared.attributes)
        ancestors = declared.ancestors
    else:
        roles = frozenset(actor.roles)
        attrs = dict(actor.attributes)
        ancestors = ()
    action = req.action
    tool = policy.tools.get(action.target) if action.kind is ActionKind.CALL else None
    args: Mapping[str, Any] = action.args
    if tool is not None and tool.args:
        args = {k: coerce(v, tool.args[k]) if k in tool.args else v for k, v in args.items()}
    labels: frozenset[str] = frozenset()
    if action.labels:
        labels = frozenset(lab for labs in action.labels.values() for lab in labs)
    target_roles: frozenset[str] = frozenset()
    if action.kind is ActionKind.DELEGATE:
        tgt = policy.agents.get(action.target)
        target_roles = tgt.roles if tgt is not None else frozenset()
    ctx = req.context
    context: dict[str, Any] = {
        "workflow": ctx.workflow or "", "run": ctx.run or "", "tenant": ctx.tenant or "",
        "env": ctx.env or "", "time": ctx.time,
    }
    if ctx.model_extra:
        context.update(ctx.model_extra)
    return View(
        actor_id=actor.id, roles=roles, ancestors=ancestors, attributes=attrs,
        kind=action.kind, target=action.target, tool=tool, args=args, labels=labels,
        arg_labels=action.labels, context=context, cost=req.cost,
        signals=effective_signals(policy, req), chain=actor.chain, human=actor.human, now=now,
        target_roles=target_roles,
    )


def scope_values(scope: Scope, req: Request, view: View) -> list[str]:
    """The instance(s) of a scope a request falls in (a missing id counts as one shared '-')."""
    ctx = req.context
    if scope in (Scope.GLOBAL, Scope.ORG):
        return ["*"]
    if scope is Scope.TENANT:
        return [ctx.tenant or "-"]
    if scope is Scope.WORKFLOW:
        return [ctx.workflow or "-"]
    if scope is Scope.RUN:
        return [ctx.run or "-"]
    if scope is Scope.AGENT:
        return [view.actor_id]
    if scope is Scope.TOOL:
        return [view.target]
    return sorted(view.roles) or ["-"]


def stop_keys(req: Request, view: View) -> tuple[tuple[str, str], ...]:
    """Every stop that would cover this request: global, its agent (and ancestors), workflow..."""
    keys: list[tuple[str, str]] = [("global", "*"), ("agent", view.actor_id)]
    keys.extend(("agent", a) for a in view.ancestors)
    keys.extend(("agent", a) for a in view.chain)
    ctx = req.context
    if ctx.workflow:
        keys.append(("workflow", ctx.workflow))
    if ctx.run:
        keys.append(("run", ctx.run))
    if ctx.tenant:
        keys.append(("tenant", ctx.tenant))
    keys.append(("tool", view.target))
    keys.extend(("role", r) for r in sorted(view.roles))
    return tuple(keys)
