"""The lane: the commonest stateless request decided in one pass, or handed on untouched."""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any

from charter.engine.decision import Decision, Failure, RuleHit
from charter.engine.evaluate import Verdict
from charter.engine.plan import ACTOR, ARGS, CONTEXT, TOOL, Plan
from charter.engine.policy import Rule
from charter.engine.prepare import build_view
from charter.engine.req import _EMPTY, Req
from charter.engine.request import MAX_ID, MAX_ITEMS
from charter.engine.settling import PENDING_LIMIT, put_bounded
from charter.enums import ActionKind, Outcome
from charter.state import StoreError

if TYPE_CHECKING:
    from charter.engine.engine import Engine

_KINDS = {k.value: k for k in ActionKind if k is not ActionKind.DELEGATE}
_CTX = frozenset({"workflow", "run", "tenant", "env"})
_NONE: frozenset[str] = frozenset()
_ABSENT: Any = object()
_ALLOW = Outcome.ALLOW
_DENY = Outcome.DENY
_APPROVAL = Outcome.REQUIRE_APPROVAL
_CALL = ActionKind.CALL
_new = object.__new__


def make_lane(engine: Engine, full: Callable[[Any, float], Decision]) -> Callable[[Any], Decision]:
    """``engine.decide`` for an engine on the lean path (stateless policy, in-memory store, no
    trace, no checks after actions): requests of the commonest shape are decided here; anything
    else, and every outcome other than allow and a plain deny, goes to ``full(request, t0)``.

    The common shape: ``actor`` with ``id`` and optionally ``roles`` and ``attributes`` (for a
    declared agent, adding no attribute the declaration lacks), ``action`` with ``target`` and
    optionally ``kind`` (not delegate) and ``args`` (no labels; no tool argument coercion),
    optionally ``context`` with ``workflow``, ``run``, ``tenant``, ``env`` and other fields (no
    ``time``), and nothing else. The plan of the selection must exist already, be exact, and its
    conditions read only ``args``, ``actor``, ``context`` and ``tool``.

    INVARIANT: for every request it decides, the decision equals the one ``full`` gives
    (outcome, rules, shadow, failures, default deny, obligations); it accepts only what the
    request fast path accepts (tests/unit/test_lane.py compares both, case by case and fuzzed).
    Written for the interpreter: closure cells, exact-class checks, no intermediate objects.
    """
    policy = engine.policy
    agents = policy.agents
    tools = policy.tools
    plans: dict[tuple[Any, ...], Plan] = engine._planner._plans
    # the in-memory store's live stop table (never rebound): empty means nothing is stopped
    stops = engine._stops
    settle_runs = engine._settle_runs
    ids = engine._ids
    prefix = engine._id_prefix
    revision = policy.revision
    general = engine._decide
    clock = engine.clock

    def decide(request: Any) -> Decision:
        t0 = perf_counter()
        if request.__class__ is not dict:
            return full(request, t0)
        n = len(request)
        try:
            actor = request["actor"]
            action = request["action"]
            if n == 2:
                ctx = _EMPTY
            elif n == 3:
                ctx = request["context"]
                if ctx.__class__ is not dict:
                    return full(request, t0)
            else:
                return full(request, t0)
        except KeyError:
            return full(request, t0)
        if actor.__class__ is not dict or action.__class__ is not dict:
            return full(request, t0)
        aid = actor.get("id")
        roles = actor.get("roles", _ABSENT)
        attrs = actor.get("attributes", _ABSENT)
        # no other key: the keys read are all there is (cheaper than a set comparison)
        if len(actor) != 1 + (roles is not _ABSENT) + (attrs is not _ABSENT):
            return full(request, t0)
        if aid.__class__ is not str or not aid or len(aid) > MAX_ID:
            return full(request, t0)
        target = action.get("target")
        kind = action.get("kind", _ABSENT)
        args = action.get("args", _ABSENT)
        if len(action) != 1 + (kind is not _ABSENT) + (args is not _ABSENT):
            return full(request, t0)
        if target.__class__ is not str or not target or len(target) > MAX_ID:
            return full(request, t0)
        if roles is not _ABSENT:
            if roles.__class__ is not list or len(roles) > MAX_ITEMS:
                return full(request, t0)
            for role in roles:
                if role.__class__ is not str or len(role) > MAX_ID:
                    return full(request, t0)
        declared = agents.get(aid)
        if attrs is _ABSENT:
            attrs = _EMPTY
        elif attrs.__class__ is not dict or (
            # declared attributes win; a request adding others takes the full path
            attrs and declared is not None and not declared.attributes.keys() >= attrs.keys()
        ):
            return full(request, t0)
        kind = _CALL if kind is _ABSENT else _KINDS.get(kind) if kind.__class__ is str else None
        if args is _ABSENT:
            args = _EMPTY
        if kind is None or args.__class__ is not dict:
            return full(request, t0)
        if kind is _CALL:
            tool = tools.get(target)
            if tool is not None and tool.coerce and args:
                return full(request, t0)
        else:
            tool = None
        workflow = None
        extra: dict[str, Any] = _EMPTY  # context fields beyond the four ids, as the fast path keeps them
        if ctx:
            for k, v in ctx.items():
                if k in _CTX:
                    if v is not None and (v.__class__ is not str or len(v) > MAX_ID):
                        return full(request, t0)
                elif k == "time" or k.__class__ is not str:
                    return full(request, t0)
                else:
                    if extra is _EMPTY:
                        extra = {}
                    extra[k] = v
            workflow = ctx.get("workflow")
        if stops:
            return full(request, t0)
        if declared is not None:  # a declared agent's roles are authoritative
            plan = plans.get((kind._value_, target, aid, declared.roles, declared.ancestors, workflow, _NONE))
        else:
            held = _NONE if roles is _ABSENT or not roles else frozenset(roles)
            plan = plans.get((kind._value_, target, aid, held, (), workflow, _NONE))
        if plan is None or (roots := plan.lane) < 0:
            return full(request, t0)
        act: dict[str, Any] = {}
        if roots:
            if roots & ARGS:
                act["args"] = args
            if roots & ACTOR:
                if declared is not None:
                    act["actor"] = declared.activation
                else:  # as View.actor_dict builds it
                    actor_root = dict(attrs)
                    actor_root["id"] = aid
                    actor_root["roles"] = sorted(held)
                    actor_root["chain"] = []
                    actor_root["depth"] = 0
                    actor_root["human"] = ""
                    act["actor"] = actor_root
            if roots & CONTEXT:
                get = ctx.get
                context = {
                    "workflow": workflow or "",
                    "run": get("run") or "",
                    "tenant": get("tenant") or "",
                    "env": get("env") or "",
                    "time": None,
                }
                if extra:
                    context.update(extra)
                act["context"] = context
            if roots & TOOL:
                act["tool"] = (
                    tool.activation if tool is not None else {"name": target, "category": "", "tags": []}
                )
        mask = 0
        bit = 1
        for checks in plan.checks:
            for fn, negate in checks:
                value = fn(act)
                if value is negate:
                    break
                if value is not (not negate):
                    return full(request, t0)  # an error value: the general path records it
            else:
                mask |= bit
            bit <<= 1
        verdict: Verdict | None = plan.verdicts.get(mask)
        if verdict is None:
            return full(request, t0)
        outcome = verdict.outcome
        if outcome is not _ALLOW and (outcome is not _DENY or verdict.halts):
            # a human gate, an escalation or a halt: the general path takes over from the verdict
            # with the request as the fast path would have built it (nothing validated twice)
            r: Req = _new(Req)
            r.actor_id = aid
            r.roles = () if roles is _ABSENT else tuple(roles)
            r.attributes = attrs
            r.chain = ()
            r.human = None
            r.kind = kind
            r.target = target
            r.args = args
            r.labels = _EMPTY
            if ctx:
                get = ctx.get
                r.workflow, r.run, r.tenant, r.env = workflow, get("run"), get("tenant"), get("env")
            else:
                r.workflow = r.run = r.tenant = r.env = None
            r.context_extra = extra
            r.time = r.approval = r.idempotency_key = r.trace_id = r._model = None
            r.cost = _EMPTY
            r.signals = ()
            if outcome is _APPROVAL:
                return gate(r, t0, verdict)
            return general(r, t0, build_view(policy, r, clock()), verdict)
        did = prefix + hex(next(ids))[3:]  # as Engine._new_id (hex(): half an f-string's cost)
        if outcome is _ALLOW:
            run = ctx.get("run") if ctx else None
            if len(settle_runs) < PENDING_LIMIT:
                settle_runs[did] = run
            else:
                put_bounded(settle_runs, did, run)
        d: Decision = _new(Decision)
        d.id = did
        d.outcome = outcome
        d.rules, d.shadow, d.failures = verdict.frozen  # type: ignore[misc]  # set by Plan.run
        d.revision = revision
        d.boundaries = ()
        d.obligations = {}
        d.default_deny = verdict.default_deny
        d.hold_id = None
        d.replayed = False
        d.evidence = {}
        d.elapsed_us = (perf_counter() - t0) * 1e6
        return d

    new_id = engine._new_id
    open_record = engine._open_record
    finish = engine._finish

    def gate(req: Req, t0: float, verdict: Verdict) -> Decision:
        """A human gate with nothing else to check: what ``Engine._decide`` does for it, minus
        the stop, state, redemption and trace steps that cannot apply here."""
        did = new_id()
        outcome = verdict.outcome
        deciding = verdict.deciding
        if len(deciding) > 1:
            deciding = sorted(deciding, key=_by_id)
        failures = list(verdict.failures)
        default_deny = verdict.default_deny
        obligations: dict[str, Any] = {}
        if verdict.approvals:
            obligations["approvals"] = gate_obligations(verdict.approvals)
        try:
            open_record(did, req, outcome, obligations, deciding, None)
        except StoreError as exc:
            outcome, deciding, default_deny = not_recorded(outcome, exc, failures)
        return finish(
            did,
            req,
            outcome,
            deciding,
            t0,
            shadow=verdict.shadow,
            failures=failures,
            obligations=obligations,
            default_deny=default_deny,
        )

    decide.__doc__ = type(engine).decide.__doc__
    return decide


def _by_id(hit: RuleHit) -> str:
    return hit.id


def gate_obligations(rules: list[Rule]) -> list[dict[str, Any]]:
    """The ``approvals`` obligation of a decision: one entry per gate of the deciding rules."""
    return [
        {
            "rule": r.id,
            "group": r.approval.group,
            "quorum": r.approval.quorum,
            "members": list(r.approval.members),
            "separation_of_duties": r.approval.separation_of_duties,
            "expires_in_s": r.approval.expires_seconds,
            "on_timeout": r.approval.on_timeout._value_,
            "redeem_within_s": r.approval.redeem_seconds,
        }
        for r in rules
        if r.approval is not None
    ]


def not_recorded(
    outcome: Outcome, exc: Exception, failures: list[Failure]
) -> tuple[Outcome, list[RuleHit], bool]:
    """A request for a human that could not be stored: the action is denied (fail closed)."""
    failures.append(Failure("state store", f"open {outcome._value_}: {exc}", "deny"))
    hit = RuleHit(
        "charter.fail-closed",
        "failure",
        _DENY,
        "The request for a human could not be recorded, so the action is denied (fail closed).",
    )
    return _DENY, [hit], False
