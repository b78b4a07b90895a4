"""Reference evaluator: a direct, index-free, cache-free transcription of docs/semantics.md."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from charter.cel.grants import GRANTS
from charter.cel.provenance import PROVENANCE
from charter.engine.policy import CompiledPolicy, Condition, GrantKind, Selector
from charter.enums import FailMode, Mode, Outcome, RuleKind, Scope, TriggerKind

ERROR = "error"  # a condition that did not give true or false (§3)
Truth = bool | str

FAIL = {
    FailMode.DENY: Outcome.DENY,
    FailMode.HALT: Outcome.HALT,
    FailMode.ESCALATE: Outcome.ESCALATE,
    FailMode.REQUIRE_APPROVAL: Outcome.REQUIRE_APPROVAL,
    FailMode.IGNORE: None,
}
RANK = {
    Outcome.ALLOW: 0,
    Outcome.REQUIRE_APPROVAL: 1,
    Outcome.ESCALATE: 2,
    Outcome.DENY: 3,
    Outcome.HALT: 4,
}  # §1 precedence


@dataclass
class RunRef:
    """§8, §9.3: what the reference knows of one run: its actor and grant instances (as
    ``begin_run`` stored them: ``id``, ``kind``, ``params``, ``uses_left``), and its allowed
    actions, oldest first (kind, target)."""

    actor: str = ""
    grants: list[dict[str, Any]] = field(default_factory=list)
    #: (kind, target, the arguments as conditions saw them, agent)
    actions: list[tuple[str, str, dict[str, Any], str]] = field(default_factory=list)


@dataclass
class State:
    """What the reference knows of the store: stops, budget spend, rate counts and runs."""

    stops: set[tuple[str, str]] = field(default_factory=set)
    #: (budget id, scope value) -> micro-units spent or held
    used: dict[tuple[str, str], int] = field(default_factory=dict)
    #: (rate id, scope value) -> actions counted
    counted: dict[tuple[str, str], int] = field(default_factory=dict)
    #: run id -> the run
    runs: dict[str, RunRef] = field(default_factory=dict)


@dataclass
class Verdict:
    """The decision content the engine must agree on, plus the state changes it implies."""

    outcome: Outcome
    rules: list[str]
    default_deny: bool
    stops: list[tuple[str, str]] = field(default_factory=list)
    reserve: list[tuple[str, str, int]] = field(default_factory=list)
    count: list[tuple[str, str]] = field(default_factory=list)
    #: §3: where evaluation failed ("rule ID", "budget ID" ...) and the failure mode taken
    failures: set[tuple[str, str]] = field(default_factory=set)
    #: §7.4 obligations: the rules whose human gates a require_approval decision names
    gates: list[str] = field(default_factory=list)
    #: §8: an allowed action of a run becomes its history: (run, kind, target, args, agent)
    record: tuple[str, str, str, dict[str, Any], str] | None = None
    #: §9.3: the grant instances whose use an allowed decision spends: (run, grant id)
    grant_uses: list[tuple[str, str]] = field(default_factory=list)


def all_of(values: Iterable[Truth]) -> Truth:
    """Commutative AND (§2): false beats an error, an error beats true."""
    vals = list(values)
    return False if False in vals else ERROR if ERROR in vals else True


def any_of(values: Iterable[Truth]) -> Truth:
    """Commutative OR: true beats an error, an error beats false."""
    vals = list(values)
    return True if True in vals else ERROR if ERROR in vals else False


def cond(c: Condition, act: Mapping[str, Any]) -> Truth:
    """One `when` (or negated `unless`) condition."""
    try:
        v = c.fn(act)
    except Exception:
        return ERROR
    if v is True or v is False:
        return v is not c.negate
    return ERROR


def reads_run(c: Condition) -> bool:
    """Whether a condition reads the ``run`` root."""
    return any(r == "run" or r.startswith("run.") for r in c.references)


def amount_of(c: Condition, req: Request) -> float | str:
    """§7 spend from arguments: the value of an ``amount`` expression, or ERROR unless it is a
    finite number of at least zero (without a run, one that reads the run is an error too)."""
    if reads_run(c) and not req.context.get("run"):
        return ERROR
    try:
        v = c.fn(req.act)
    except Exception:
        return ERROR
    if type(v) not in (int, float) or v != v or v in (float("inf"), float("-inf")) or v < 0:
        return ERROR
    return float(v)


#: §9.2: labels only the engine gives; a request's own are dropped from ``action.labels``
RESERVED = frozenset({"planned", "unknown"})


def _own_object(v: Any) -> bool:
    """§9.2: values Python shares between places carry no provenance (true, false, null, integers
    from -5 to 256, texts of 0 or 1 character)."""
    if type(v) is str:
        return len(v) > 1
    if type(v) is int:
        return not -5 <= v <= 256
    return type(v) in (float, list, dict)


class Provenance:
    """§9.2 ``labels(x)`` / ``sources(x)``, transcribed: per argument value (by the value itself),
    the labels its entry gives, the whole argument's labels, and one per source (``user``;
    ``agent``: ``planned`` when the run's labels are known and hold no ``untrusted``, else
    ``unknown``; a call: ``unknown``, as the reference models no settled calls). A value given two
    different provenances has none."""

    def __init__(
        self, args: Mapping[str, Any], prov: Mapping[str, Any], whole: Mapping[str, list[str]], planned: bool
    ):
        self.found: list[tuple[Any, list[str], list[dict[str, Any]]] | None] = []
        self.values: list[Any] = []
        agent = "planned" if planned else "unknown"
        for name, value in args.items():
            given = [x for x in whole.get(name, ()) if x not in RESERVED]
            entry = prov.get(name)
            if entry is None and not given:
                continue
            entry = entry or {}
            srcs = []
            labs = set(entry.get("labels", ())) | set(given)
            for s in entry.get("sources", ()):
                if "from" in s:
                    kind, label = s["from"], "user" if s["from"] == "user" else agent
                    srcs.append(
                        {"kind": kind, "call": "", "tool": "", "field": "", "labels": [label], "inputs": []}
                    )
                else:
                    label = "unknown"
                    srcs.append(
                        {
                            "kind": "call",
                            "call": s["call"],
                            "tool": "",
                            "field": s.get("field", ""),
                            "labels": [label],
                            "inputs": [],
                        }
                    )
                labs.add(label)
            if not _own_object(value):
                continue
            mine = (value, sorted(labs), srcs)
            for i, v in enumerate(self.values):
                if v is value:
                    old = self.found[i]
                    if old is None or (old[1], old[2]) != (mine[1], mine[2]):
                        self.found[i] = None
                    break
            else:
                self.values.append(value)
                self.found.append(mine)

    def _get(self, value: Any) -> tuple[Any, list[str], list[dict[str, Any]]] | None:
        for v, f in zip(self.values, self.found, strict=True):
            if v is value:
                return f
        return None

    def labels(self, value: Any) -> list[str]:
        """The value's labels; [] without provenance."""
        f = self._get(value)
        return list(f[1]) if f is not None else []

    def sources(self, value: Any) -> list[dict[str, Any]] | None:
        """The value's sources; None without any."""
        f = self._get(value)
        return [dict(s) for s in f[2]] if f is not None and f[2] else None


def micros(x: float) -> int:
    """Amounts in integer micro-units, rounded up (a spend under one micro-unit still counts)."""
    return math.ceil(Decimal(repr(float(x))) * 1_000_000)


class Grants:
    """§9.3 ``granted("KIND")``, transcribed: an instance of KIND of the request's run, bound to the
    request's actor (or an ancestor; no actor: anyone), whose kind's ``action`` meets the request,
    with uses left and every ``covers`` true (an error: not covered, and a failure). Remembers the
    kinds it answered true (``relied``: an allowed decision spends one use of the lowest covering
    instance of each)."""

    def __init__(self, policy: CompiledPolicy, req: Request, run: RunRef):
        self.kinds = policy.grant_kinds
        self.req = req
        self.run = run
        self.relied: dict[str, str] = {}
        self.failures: set[tuple[str, str]] = set()

    def _covers(self, decl: GrantKind, g: Mapping[str, Any], act: Mapping[str, Any]) -> bool:
        scope = {**act, "grant": g["params"]}
        for check in decl.covers:
            try:
                got = check.fn(scope)
            except Exception:
                got = ERROR
            if got is not True:
                if got is not False:
                    self.failures.add((f"grant {g['id']} covers", "not covered"))
                return False
        return True

    def granted(self, kind: str, act: Mapping[str, Any]) -> bool:
        decl = self.kinds.get(kind)
        if decl is None:
            return False
        req = self.req
        covering = [
            g["id"]
            for g in self.run.grants
            if g["kind"] == kind
            and req.meets(decl.selector)
            and g["uses_left"] != 0
            and (not self.run.actor or self.run.actor in req.lineage())
            and self._covers(decl, g, act)
        ]
        if covering:
            self.relied[kind] = covering[0]  # instances are kept lowest id first
        return bool(covering)


class Request:
    """The request dict resolved against the policy (§2 actor resolution, §9 activation)."""

    def __init__(self, policy: CompiledPolicy, raw: Mapping[str, Any], state: State | None = None):
        actor, action, ctx = raw["actor"], raw["action"], dict(raw.get("context") or {})
        self.policy = policy
        self.id: str = actor["id"]
        declared = policy.agents.get(self.id)
        attrs = dict(actor.get("attributes") or {})
        if declared is not None:  # the policy is authoritative for declared agents
            self.roles, self.ancestors = set(declared.roles), list(declared.ancestors)
            attrs.update(declared.attributes)
        else:
            self.roles, self.ancestors = set(actor.get("roles") or ()), []
        self.chain: list[str] = list(actor.get("chain") or ())
        self.kind: str = action.get("kind", "call")
        self.target: str = action["target"]
        self.tool = policy.tools.get(self.target) if self.kind == "call" else None
        args = dict(action.get("args") or {})
        for k, v in args.items():  # "typed by the tool's declared args" (lossless)
            typ = self.tool.args.get(k) if self.tool else None
            if typ in ("double", "number") and type(v) is int:
                args[k] = float(v)
            elif typ == "int" and type(v) is float and v.is_integer():
                args[k] = int(v)
        target_agent = policy.agents.get(self.target) if self.kind == "delegate" else None
        self.target_roles = set(target_agent.roles) if target_agent else set()
        self.workflow = ctx.get("workflow") or ""
        self.context = ctx
        self.cost = {u: float(a) for u, a in (raw.get("cost") or {}).items()}
        self.args = args
        self.signals = effective_signals(policy, raw.get("signals") or ())
        arg_labels = {k: list(v) for k, v in (action.get("labels") or {}).items()}
        t = ctx.get("time")
        self.act: dict[str, Any] = {
            "actor": {
                **attrs,
                "id": self.id,
                "roles": sorted(self.roles),
                "chain": self.chain,
                "depth": len(self.chain),
                "human": actor.get("human") or "",
            },
            "action": {
                "kind": self.kind,
                "target": self.target,
                "args": args,
                "labels": sorted({x for v in arg_labels.values() for x in v}),
                "arg_labels": arg_labels,
            },
            "args": args,
            "tool": {
                "name": self.target,
                "category": (self.tool.category or "") if self.tool else "",
                "tags": sorted(self.tool.tags) if self.tool else [],
            },
            "context": {
                **ctx,
                **{k: ctx.get(k) or "" for k in ("workflow", "run", "tenant", "env")},
                "time": datetime.fromisoformat(t) if isinstance(t, str) else t,
            },
            "cost": self.cost,
            "signals": self.signals,
        }
        # §9 `run`: the run's steps and grants (its labels are not modelled: no rule reads them)
        self.run_id: str = ctx.get("run") or ""
        self.run = (state.runs.get(self.run_id) if state is not None else None) or RunRef()
        grants = [
            {**g["params"], "id": g["id"], "kind": g["kind"], "uses_left": g["uses_left"]}
            for g in self.run.grants
        ]
        self.act["run"] = {"steps": len(self.run.actions), "labels": [], "grants": grants}
        self.grants: Grants | None = None
        if self.run_id and self.run.grants and policy.grant_kinds:
            self.grants = Grants(policy, self, self.run)
            self.act[GRANTS] = self.grants
        prov = action.get("provenance") or {}
        if prov or arg_labels:
            # the run's labels are known only with a run (nothing untrusted happened in it yet)
            self.act[PROVENANCE] = Provenance(args, prov, arg_labels, bool(ctx.get("run")))

    def lineage(self) -> set[str]:
        """The actor and the agents it descends from (§2 sub-agents)."""
        return {self.id, *self.ancestors}

    def meets(self, sel: Selector) -> bool:
        """§2: the action part of a selector (kind and target)."""
        if sel.kind is not None and sel.kind.value != self.kind:
            return False
        t = sel.target
        return t.any or self.target in t.names or bool(t.roles & self.target_roles)

    def covered_by(self, sel: Selector) -> bool:
        """§2: actor, action and narrowing-module subject."""
        if sel.subject_agent is not None and sel.subject_agent not in self.lineage():
            return False
        if sel.subject_workflow is not None and sel.subject_workflow != self.workflow:
            return False
        if not (sel.actor_any or sel.actor_agents & self.lineage() or sel.actor_roles & self.roles):
            return False
        if sel.kind is not None and sel.kind.value != self.kind:
            return False
        t = sel.target
        return t.any or self.target in t.names or bool(t.roles & self.target_roles)

    def scope_values(self, scope: Scope) -> list[str]:
        """The scope instance(s) this request falls in; a missing id is one shared '-'."""
        if scope in (Scope.GLOBAL, Scope.ORG):
            return ["*"]
        if scope is Scope.AGENT:
            return [self.id]
        if scope is Scope.TOOL:
            return [self.target]
        if scope is Scope.ROLE:
            return sorted(self.roles) or ["-"]
        return [self.context.get(scope.value) or "-"]

    def stop_keys(self) -> set[tuple[str, str]]:
        """§7.1: every stop that covers this request."""
        keys = {("global", "*"), ("tool", self.target)}
        keys |= {("agent", a) for a in [*self.lineage(), *self.chain]}
        keys |= {("role", r) for r in self.roles}
        keys |= {(s, self.context[s]) for s in ("workflow", "run", "tenant") if self.context.get(s)}
        return keys


def effective_signals(policy: CompiledPolicy, raw: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """§6: a concern is suppressed by a clearing signal from a strictly higher-ranked source."""
    sigs = []
    for s in raw:
        source = policy.signal_kind_source.get(s["kind"], s["source"])
        sigs.append(
            {
                "source": source,
                "kind": s["kind"],
                "severity": s.get("severity", "medium"),
                "score": float(s.get("score", 0.0)),
                "note": s.get("note", ""),
                "rank": policy.signal_source_rank.get(source, 0),
            }
        )
    clearing = [s["rank"] for s in sigs if s["kind"] in policy.signal_clears]
    return [s for s in sigs if s["kind"] in policy.signal_clears or not any(r > s["rank"] for r in clearing)]


def holds(item: Any, req: Request) -> Truth:
    """§2: all conditions hold together; signal clauses are alternatives; no run history."""
    # §3.1: a condition that reads the run (run.steps, run.labels, run.grants) of a request that
    # names no run fails
    parts = [ERROR if not req.run_id and reads_run(c) else cond(c, req.act) for c in item.conditions]
    signals = getattr(item, "signals", ())
    if signals:
        alts = []
        for sc in signals:
            for sig in req.signals:
                if sig["kind"] == sc.kind:
                    alts.append(True if sc.where is None else cond(sc.where, {**req.act, **sig}))
        parts.append(any_of(alts))
    for seq in getattr(item, "sequences", ()):
        # §3.1: without context.run the run's history is unknown (an error: the rule fails by its
        # `on error`); with one, `after E` holds when an earlier allowed action of the run matches
        # E, `before E` when none does (no windows are modelled). §8.2 `where C`: an entry counts
        # when C holds with `earlier` bound to it; an entry on which C fails does not stop the
        # search: a match elsewhere decides, otherwise the error is the rule's
        if not req.run_id:
            parts.append(ERROR)
            continue
        assert seq.within_steps is None and seq.within_seconds is None and not seq.labels
        mark = next(m for m in req.policy.marks if m.id == seq.mark)
        found: list[Truth] = []
        for step, (kind, target, args, agent) in enumerate(req.run.actions, start=1):
            kind_ok = mark.kind is None or mark.kind.value == kind
            if kind_ok and (mark.target.any or target in mark.target.names):
                if seq.where is None:
                    found.append(True)
                    continue
                earlier = {"step": step, "agent": agent, "kind": kind, "tool": target, "args": args}
                found.append(cond(seq.where, {**req.act, "earlier": earlier}))
        seen = any_of(found)
        parts.append(seen if seq.after else ERROR if seen == ERROR else not seen)
    return all_of(parts)


def evaluate(policy: CompiledPolicy, raw: Mapping[str, Any], state: State) -> Verdict:
    """Decide one request (§1-§7). Does not modify ``state``; see :func:`apply`."""
    req = Request(policy, raw, state)
    covering = sorted(req.stop_keys() & state.stops)
    if covering:  # §7.1 halt absorbs; nothing is counted
        return Verdict(Outcome.HALT, [f"stop:{s}:{v}" for s, v in covering], False)
    contrib: list[tuple[Outcome, str, Any]] = []  # (outcome, id, what may set a stop)
    failures: set[tuple[str, str]] = set()
    permitted = False
    for rule in policy.rules:
        if not req.covered_by(rule.selector) or rule.mode is Mode.SHADOW:
            continue  # §4 shadow rules never change the outcome
        v = holds(rule, req)
        if v is True:
            permitted |= rule.kind is RuleKind.PERMIT
            contrib.append((rule.effect, rule.id, rule if rule.kind is RuleKind.HALT else None))
        elif v == ERROR:
            took = FAIL[rule.fail]
            failures.add((f"rule {rule.id}", took.value if took is not None else "ignore (fail-open)"))
            if took is not None:
                contrib.append((took, rule.id, None))
    if req.kind == "call" and req.tool is None:
        contrib.append((Outcome.DENY, "charter.unknown-tool", None))
    for tw in policy.tripwires:  # §7.2: only the stateless delegation-depth tripwire is modelled
        assert tw.trigger is TriggerKind.DEPTH, "the reference models depth tripwires only"
        # the trigger is part of the conjunction: below the depth, a failing condition does not matter
        covering = req.covered_by(tw.selector) and len(req.chain) > tw.threshold
        if tw.mode is not Mode.ENFORCE and covering and holds(tw, req) == ERROR:
            failures.add((f"tripwire {tw.id}", "none (shadow)"))  # §4: recorded, never enforced
        if tw.mode is Mode.ENFORCE and req.covered_by(tw.selector) and len(req.chain) > tw.threshold:
            v = holds(tw, req)
            if v == ERROR:
                failures.add((f"tripwire {tw.id}", "deny"))
                contrib.append((Outcome.DENY, tw.id, None))
            elif v and len(req.chain) > tw.threshold:
                contrib.append((tw.outcome, tw.id, tw))

    def so_far() -> Outcome:
        worst = max((c[0] for c in contrib), key=RANK.__getitem__, default=Outcome.ALLOW)
        return Outcome.DENY if not permitted and RANK[worst] < RANK[Outcome.DENY] else worst

    count: list[tuple[str, str]] = []
    reserve: list[tuple[str, str, int]] = []
    if so_far() is Outcome.ALLOW:  # §7.3
        rates = [(rl, holds(rl, req)) for rl in policy.rates if req.covered_by(rl.selector)]
        budgets = [
            (b, holds(b, req))
            for b in policy.budgets
            if (b.amount is not None or b.unit in req.cost) and req.covered_by(b.selector)
        ]
        # §7 spend from arguments: where the conditions hold, an amount that cannot be counted
        # fails the budget (its `on error`) as a condition error would
        amounts: dict[str, float] = {}
        for i, (b, v) in enumerate(budgets):
            if b.amount is not None and v is True:
                a = amount_of(b.amount, req)
                if a == ERROR:
                    budgets[i] = (b, ERROR)
                else:
                    amounts[b.id] = float(a)
        for x, v in rates + budgets:
            if v == ERROR:
                took = FAIL[x.fail]
                kind = "rate" if x in policy.rates else "budget"
                if x.mode is not Mode.ENFORCE:  # §4: recorded, never enforced
                    failures.add((f"{kind} {x.id}", "none (shadow)"))
                    continue
                failures.add((f"{kind} {x.id}", took.value if took is not None else "ignore (fail-open)"))
        budgets = [(b, v) for b, v in budgets if b.mode is Mode.ENFORCE]
        failed = [
            (FAIL[x.fail], x.id)
            for x, v in rates + budgets
            if v == ERROR and FAIL[x.fail] is not None and x.mode is Mode.ENFORCE
        ]
        # a rate or budget that fails closed: nothing is counted or reserved
        contrib += [(o, i, None) for o, i in failed]
        if not failed:
            rate_over = False
            for rl, v in rates:
                if v is not True:
                    continue
                for value in req.scope_values(rl.scope):
                    if rl.mode is Mode.ENFORCE and state.counted.get((rl.id, value), 0) + 1 > rl.limit:
                        contrib.append((rl.on_exceed, rl.id, rl))
                        rate_over = True
                    else:
                        count.append((rl.id, value))
            for b, v in budgets if not rate_over else ():  # a rate over its limit: budgets not consulted
                if v is not True:
                    continue
                amount = micros(amounts[b.id] if b.amount is not None else req.cost[b.unit])
                for value in req.scope_values(b.scope):
                    if state.used.get((b.id, value), 0) + amount > b.limit_micros:
                        contrib.append((b.on_exceed, b.id, b))
                    reserve.append((b.id, value, amount))
    outcome = so_far()
    default_deny = outcome is Outcome.DENY and not any(c[0] is Outcome.DENY for c in contrib)
    ids = [] if default_deny else sorted({i for o, i, _ in contrib if o is outcome})
    stops: list[tuple[str, str]] = []
    if outcome is Outcome.HALT:
        for o, _, item in contrib:
            scope = getattr(item, "stop_scope", None)
            if o is Outcome.HALT and scope is not None:
                name = "global" if scope is Scope.ORG else scope.value
                stops += [(name, v) for v in req.scope_values(scope)]
    gates = [
        r.id
        for r in policy.rules
        if r.id in ids and r.approval is not None and outcome is Outcome.REQUIRE_APPROVAL
    ]
    allowed = outcome is Outcome.ALLOW
    if req.grants is not None:
        failures |= req.grants.failures
    return Verdict(
        outcome,
        ids,
        default_deny,
        stops,
        reserve if allowed else [],
        count,
        failures,
        sorted(gates),
        (req.run_id, req.kind, req.target, req.args, req.id) if allowed and req.run_id else None,
        [(req.run_id, gid) for gid in req.grants.relied.values()] if allowed and req.grants else [],
    )


def apply(state: State, v: Verdict) -> None:
    """Apply a decision's effects to the state: stops set, rates counted, budgets reserved."""
    state.stops.update(v.stops)
    for key in v.count:
        state.counted[key] = state.counted.get(key, 0) + 1
    for bid, value, amount in v.reserve:
        state.used[(bid, value)] = state.used.get((bid, value), 0) + amount
    if v.record is not None:
        run, kind, target, args, agent = v.record
        state.runs.setdefault(run, RunRef()).actions.append((kind, target, args, agent))
    for run, gid in v.grant_uses:
        for g in state.runs[run].grants:
            if g["id"] == gid and g["uses_left"] is not None:
                g["uses_left"] -= 1
