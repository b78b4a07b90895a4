"""Counterexamples: a z3 model read back as a concrete request and state, replayed through the real engine."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import z3

from charter.analysis.encode import Case, SymRequest, mark_key
from charter.engine.engine import Engine
from charter.engine.policy import Budget, CompiledPolicy, RateLimit
from charter.enums import ActionKind, Outcome, Scope
from charter.errors import Error
from charter.state.memory import MemoryStore
from charter.state.types import Batch, BudgetLine, EventOp, HitOp, ReserveOp

#: The clock of every replay (any fixed instant: budgets' calendar windows are computed from it).
NOW = 1_900_000_000.0


@dataclass
class Concrete:
    """A concrete request and the state it is decided in (run history, rate counts, budget spend)."""

    request: dict[str, Any]
    run_marks: list[tuple[Any, ...]] = field(default_factory=list)
    run_labels: list[str] = field(default_factory=list)
    run_steps: int = 0
    rate_counts: dict[str, int] = field(default_factory=dict)
    budget_used: dict[str, float] = field(default_factory=dict)

    def state(self) -> dict[str, Any]:
        """The state part, JSON-ready (empty when the fresh state is enough)."""
        out: dict[str, Any] = {}
        if self.run_steps or self.run_marks or self.run_labels:
            out["run"] = {
                "steps": self.run_steps,
                "labels": sorted(self.run_labels),
                "events_seen": [_mark_text(m) for m in self.run_marks],
            }
        if self.rate_counts:
            out["rate_counts"] = dict(sorted(self.rate_counts.items()))
        if self.budget_used:
            out["budget_used"] = dict(sorted(self.budget_used.items()))
        return out


def _mark_text(key: tuple[Any, ...]) -> str:
    kind, any_, names, roles, labels = key if len(key) == 5 else (None, True, (), (), ())
    if labels:
        return "labelled " + ", ".join(labels)
    what = "any" if any_ else ", ".join([*names, *(f"role {r}" for r in roles)])
    return f"{kind.value if kind else 'action'} {what}"


def _val(model: z3.ModelRef, term: Any) -> Any:
    v = model.eval(term, model_completion=True)
    if z3.is_true(v):
        return True
    if z3.is_false(v):
        return False
    if z3.is_int_value(v):
        return v.as_long()
    if z3.is_rational_value(v):
        frac = v.as_fraction()
        return float(frac.numerator) / float(frac.denominator)
    if z3.is_string_value(v):
        return v.as_string()
    raise ValueError(f"no concrete value for {term}")


def _present(model: z3.ModelRef, vars_: Mapping[tuple[Any, ...], Any], root: str) -> list[tuple[Any, Any]]:
    """The (key, value variable) of a root's entries that the model makes present."""
    out = []
    for k, v in vars_.items():
        if k[0] != root or len(k) < 2 or k[-1] in ("present", "#n"):
            continue
        if _val(model, vars_.get((root, k[1], "present"), z3.BoolVal(False))):
            out.append((k, v))
    return out


def concretise(model: z3.ModelRef, req: SymRequest, policies: list[CompiledPolicy]) -> Concrete:
    """The request (and state) a model describes; only what the encoding read is set."""
    case = req.case
    vars_ = req.values()
    actor: dict[str, Any] = {"id": _val(model, req.actor)}
    roles = sorted(k[1] for k, v in vars_.items() if k[0] == "actor.roles" and _val(model, v))
    if roles:
        actor["roles"] = roles
    attrs: dict[str, Any] = {}
    for k, v in _present(model, vars_, "actor.attr"):
        attrs[k[1]] = _val(model, v)
    if attrs:
        actor["attributes"] = attrs
    human = _val(model, req.human)
    if human:
        actor["human"] = human
    depth = _val(model, req.chain_len)
    if depth:
        actor["chain"] = [f"agent-{i + 1}" for i in range(depth)]
    target = case.tool if case.tool else _val(model, req.target)
    action: dict[str, Any] = {"kind": case.kind.value, "target": target}
    args: dict[str, Any] = {}
    for k, v in _present(model, vars_, "args"):
        args[k[1]] = _val(model, v)
    if args:
        action["args"] = args
    labels = sorted(k[1] for k, v in vars_.items() if k[0] == "action.labels" and _val(model, v))
    if labels:
        action["labels"] = {(sorted(req.arg_types) or ["input"])[0]: labels}
    request: dict[str, Any] = {"actor": actor, "action": action}
    context: dict[str, Any] = {}
    for name, term in req.ctx_ids.items():
        value = _val(model, term)
        if value:
            context[name] = value
    for k, v in _present(model, vars_, "context"):
        context[k[1]] = _val(model, v)
    if context:
        request["context"] = context
    cost: dict[str, float] = {}
    for k, v in _present(model, vars_, "cost"):
        cost[k[1]] = _val(model, v)
    if cost:
        request["cost"] = cost
    sigs = sorted(k[1] for k, v in vars_.items() if k[0] == "signal" and _val(model, v))
    if sigs:
        src: dict[str, str] = {}
        for p in policies:
            src.update(p.signal_kind_source)
        request["signals"] = [{"source": src.get(s, "agent"), "kind": s} for s in sigs]
    out = Concrete(request)
    if context.get("run"):
        marks = [k[1] for k, v in vars_.items() if k[0] == "run.mark" and _val(model, v)]
        out.run_marks = [eval_key(m) for m in marks]
        out.run_labels = sorted(k[1] for k, v in vars_.items() if k[0] == "run.labels" and _val(model, v))
        out.run_steps = _val(model, req.run_steps)
    out.rate_counts = {
        k[1]: _val(model, v) for k, v in vars_.items() if k[0] == "state.rate" and _val(model, v)
    }
    out.budget_used = {
        k[1]: _val(model, v)
        for k, v in vars_.items()
        if k[0] == "state.budget" and len(k) == 2 and _val(model, v)
    }
    return out


#: mark keys travel through variable names as their repr; read them back from the policies' marks
_MARK_KEYS: dict[str, tuple[Any, ...]] = {}


def remember_marks(policies: list[CompiledPolicy]) -> None:
    """Index the policies' mark keys by their text (variable names carry the text)."""
    for p in policies:
        for m in p.marks:
            key = mark_key(p, m.id)
            _MARK_KEYS[str(key)] = key


def eval_key(text: str) -> tuple[Any, ...]:
    """The mark key a variable name carries."""
    return _MARK_KEYS.get(text, ("?", text))


def _key_value(item: RateLimit | Budget, request: Mapping[str, Any]) -> str | None:
    """The scope instance an item's counter is keyed by (None: the argument cannot key it)."""
    from charter.engine.stateful import arg_key

    value = _scope_value(item.scope, request)
    if item.by_arg is None:
        return value
    try:
        return f"{value}|{arg_key(request.get('action', {}).get('args') or {}, item.by_arg)}"
    except Error:
        return None  # the engine fails the boundary: nothing to seed


def _scope_value(scope: Scope, request: Mapping[str, Any]) -> str:
    ctx = request.get("context", {})
    if scope is Scope.AGENT:
        return str(request["actor"]["id"])
    if scope in (Scope.GLOBAL, Scope.ORG):
        return "*"
    if scope is Scope.TENANT:
        return ctx.get("tenant") or "-"
    if scope is Scope.WORKFLOW:
        return ctx.get("workflow") or "-"
    if scope is Scope.RUN:
        return ctx.get("run") or "-"
    if scope is Scope.TOOL:
        return str(request["action"]["target"])
    return "-"


def _seed(policy: CompiledPolicy, store: MemoryStore, c: Concrete) -> None:
    from charter.engine.stateful import calendar_window, micros

    now = NOW - 1.0
    run = c.request.get("context", {}).get("run")
    if run and (c.run_steps or c.run_marks or c.run_labels):
        ids = frozenset(m.id for m in policy.marks if mark_key(policy, m.id) in c.run_marks)
        steps = max(c.run_steps, 1)
        for i in range(steps):
            first = i == 0
            event = {"decision": f"seed-{i}", "agent": "seed", "kind": "call", "target": "seed", "at": now}
            store.apply(
                Batch(
                    now=now,
                    event=EventOp(
                        f"run:{run}",
                        event,
                        frozenset(c.run_labels) if first else frozenset(),
                        ids if first else frozenset(),
                        7 * 86400.0,
                    ),
                )
            )
    for rl in policy.rates:
        count = c.rate_counts.get(rl.id, 0)
        if count:
            key_value = _key_value(rl, c.request)
            if key_value is None:
                continue
            key = f"rl:{rl.id}:{key_value}"
            store.apply(Batch(now=now, hits=(HitOp(key, rl.window_seconds, count),)))
    for b in policy.budgets:
        used = c.budget_used.get(b.id, 0.0)
        if not used:
            continue
        value = _key_value(b, c.request)
        if value is None:
            continue
        if b.calendar is not None:
            wid, end = calendar_window(b.calendar, b.timezone, NOW)
            line = BudgetLine(f"b:{b.id}:{value}:{wid}", b.limit_micros, micros(used), None, end)
        else:
            line = BudgetLine(f"b:{b.id}:{value}", b.limit_micros, micros(used), b.rolling_seconds, None)
        hold = f"seed:{b.id}"
        store.apply(Batch(now=now, reserve=ReserveOp(hold, (line,), 900.0)))
        store.commit(hold, None, now=now)


def replay(policy: CompiledPolicy, c: Concrete) -> Outcome | str:
    """The outcome the real engine gives the request in the state (a fresh in-memory store, seeded);
    the error text when the engine refuses the request."""
    store = MemoryStore()
    try:
        _seed(policy, store, c)
        engine = Engine(policy, store, clock=lambda: NOW)
        return engine.decide(c.request).outcome
    except Error as ex:
        return f"refused: {ex}"


def case_of(request: Mapping[str, Any], policies: list[CompiledPolicy]) -> Case:
    """The case a concrete request falls in."""
    kind = ActionKind(request["action"].get("kind", "call"))
    target = request["action"]["target"]
    if kind is ActionKind.CALL:
        return Case(kind, target if any(target in p.tools for p in policies) else None)
    return Case(kind)
