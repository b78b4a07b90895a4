"""Turns a validated request into an evaluation view: actor resolution, effective signals, scope keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from charter.engine.evaluate import View
from charter.engine.policy import CompiledPolicy
from charter.engine.req import Req, RequestError, parse_request
from charter.enums import ActionKind, Scope

__all__ = ["RequestError", "build_view", "effective_signals", "parse_request", "scope_values", "stop_keys"]


def effective_signals(policy: CompiledPolicy, req: Req) -> tuple[Mapping[str, Any], ...]:
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
        source = kind_source.get(s["kind"], s["source"])
        sigs.append(
            {
                "source": source,
                "kind": s["kind"],
                "severity": s["severity"],
                "score": float(s["score"]),
                "note": s["note"],
                "rank": ranks.get(source, 0),
            }
        )
    clears = [s for s in sigs if s["kind"] in policy.signal_clears]
    if not clears:
        return tuple(sigs)
    top_clear = max(s["rank"] for s in clears)
    return tuple(s for s in sigs if s["kind"] in policy.signal_clears or s["rank"] >= top_clear)


def coerce(value: Any, typ: str) -> Any:
    """Coerce a JSON value to a declared type when it is lossless (e.g. 12000 -> 12000.0)."""
    if typ in ("double", "number") and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typ == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def build_view(policy: CompiledPolicy, req: Req, now: float) -> View:
    """Resolve the actor (declared agents are authoritative) and the target, and build the view."""
    declared = policy.agents.get(req.actor_id)
    reuse = None
    if declared is not None:
        roles = declared.roles
        dattrs = declared.attributes
        if req.attributes and not dattrs.keys() >= req.attributes.keys():
            attrs: Mapping[str, Any] = {**req.attributes, **dattrs}
        else:
            attrs = dattrs  # declared attributes win; the request adds nothing
            reuse = declared
        ancestors = declared.ancestors
    else:
        roles = frozenset(req.roles)
        attrs = req.attributes
        ancestors = ()
    kind = req.kind
    tool = policy.tools.get(req.target) if kind is ActionKind.CALL else None
    args = req.args
    if tool is not None and tool.coerce and args:
        types = tool.args
        args = {k: coerce(v, types[k]) if k in types else v for k, v in args.items()}
    labels: frozenset[str] = frozenset()
    if req.labels:
        labels = frozenset(lab for labs in req.labels.values() for lab in labs)
    target_roles: frozenset[str] = frozenset()
    if kind is ActionKind.DELEGATE:
        tgt = policy.agents.get(req.target)
        target_roles = tgt.roles if tgt is not None else frozenset()
    signals = effective_signals(policy, req) if req.signals else ()
    return View(
        req.actor_id,
        roles,
        ancestors,
        attrs,
        kind,
        req.target,
        tool,
        args,
        labels,
        req.labels,
        req,
        req.cost,
        signals,
        req.chain,
        req.human,
        now,
        None,
        target_roles,
        reuse,
    )


def scope_values(scope: Scope, req: Req, view: View) -> list[str]:
    """The instance(s) of a scope a request falls in (a missing id counts as one shared '-')."""
    if scope is Scope.AGENT:  # the commonest scope of budgets and rates: tested first
        return [view.actor_id]
    if scope in (Scope.GLOBAL, Scope.ORG):
        return ["*"]
    if scope is Scope.TENANT:
        return [req.tenant or "-"]
    if scope is Scope.WORKFLOW:
        return [req.workflow or "-"]
    if scope is Scope.RUN:
        return [req.run or "-"]
    if scope is Scope.TOOL:
        return [view.target]
    return sorted(view.roles) or ["-"]


def stop_keys(req: Req, view: View) -> tuple[tuple[str, str], ...]:
    """Every stop that would cover this request: global, its agent (and ancestors), workflow..."""
    keys: list[tuple[str, str]] = [("global", "*"), ("agent", view.actor_id)]
    if view.ancestors:
        keys.extend(("agent", a) for a in view.ancestors)
    if view.chain:
        keys.extend(("agent", a) for a in view.chain)
    if req.workflow:
        keys.append(("workflow", req.workflow))
    if req.run:
        keys.append(("run", req.run))
    if req.tenant:
        keys.append(("tenant", req.tenant))
    keys.append(("tool", view.target))
    keys.extend(("role", r) for r in sorted(view.roles))
    return tuple(keys)
