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
from charter.cel.values import EvalError
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
    ``begin_run`` stored them: ``id``, ``kind``, ``params``, ``uses_left``), its allowed actions,
    oldest first, and its labels."""

    actor: str = ""
    grants: list[dict[str, Any]] = field(default_factory=list)
    #: §8.2 entries, oldest first (step = position + 1): ``kind``, ``target``, ``args`` (as
    #: conditions saw them), ``agent``, ``at`` (the engine's clock when it was decided) and
    #: ``result`` (the declared result fields its settlement kept; {} until settled)
    actions: list[dict[str, Any]] = field(default_factory=list)
    #: §8.1 "each label records when it last arrived": label -> (step, time) of its latest arrival
    labels: dict[str, tuple[int, float]] = field(default_factory=dict)


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
    #: the engine's clock (epoch seconds) for the next decision: `within D` windows (§8.1, §8.2)
    now: float = 0.0


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
    #: §8: an allowed action of a run becomes its history: (run, entry, the labels it brings)
    record: tuple[str, dict[str, Any], frozenset[str]] | None = None
    #: §9.3: the grant instances whose use an allowed decision spends: (run, grant id)
    grant_uses: list[tuple[str, str]] = field(default_factory=list)
    #: §9.3 output: the instances granted() consulted: (id, kind, covers, uses_left)
    consulted: set[tuple[str, str, bool, int | None]] = field(default_factory=set)


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
        self.shared: set[tuple[type, Any]] = set()
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
                # §9.2: a shared value (bool, null, a small int, a text of at most one
                # character) an argument gave provenance: an equal value's is an error
                self.shared.add((type(value), value))
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
        if not _own_object(value) and (type(value), value) in self.shared:
            raise EvalError(f"the provenance of {value!r} cannot be told apart (a shared value)")
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
        #: §9.3 "grants in the decision (instances consulted: id, kind, covers, uses_left)"
        self.consulted: set[tuple[str, str, bool, int | None]] = set()

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
        covering = []
        for g in self.run.grants:
            if g["kind"] != kind:
                continue
            ok = (
                req.meets(decl.selector)
                and g["uses_left"] != 0
                and (not self.run.actor or self.run.actor in req.lineage())
                and self._covers(decl, g, act)
            )
            # every instance of the kind asked about is consulted, covering or not
            self.consulted.add((g["id"], kind, ok, g["uses_left"]))
            if ok:
                covering.append(g["id"])
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
        # §9 `run`: the run's steps, labels (§8.1: the whole set) and grants
        self.run_id: str = ctx.get("run") or ""
        self.run = (state.runs.get(self.run_id) if state is not None else None) or RunRef()
        self.now = state.now if state is not None else 0.0
        grants = [
            {**g["params"], "id": g["id"], "kind": g["kind"], "uses_left": g["uses_left"]}
            for g in self.run.grants
        ]
        self.act["run"] = {
            "steps": len(self.run.actions),
            "labels": sorted(self.run.labels),
            "grants": grants,
        }
        # §8.1 "the labels of the action's arguments and list elements: action.labels and the
        # labels of action.provenance entries" (the engine-only labels are no labels of a request)
        entered = {x for v in arg_labels.values() for x in v}
        for entry in (action.get("provenance") or {}).values():
            for e in entry if isinstance(entry, list) else [entry]:
                entered.update(e.get("labels", ()))
        self.entered = frozenset(entered - RESERVED)
        self.grants: Grants | None = None
        if self.run_id and self.run.grants and policy.grant_kinds:
            self.grants = Grants(policy, self, self.run)
            self.act[GRANTS] = self.grants
        prov = action.get("provenance") or {}
        if prov or arg_labels:
            # §9.2 `planned` when the run's labels are known (a run is named) and hold no `untrusted`
            planned = bool(ctx.get("run")) and "untrusted" not in self.run.labels
            self.act[PROVENANCE] = Provenance(args, prov, arg_labels, planned)

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
        # `on error`)
        if not req.run_id:
            parts.append(ERROR)
            continue
        parts.append(sequence(seq, req))
    return all_of(parts)


def in_window(seq: Any, req: Request, step: int, at: float) -> bool:
    """§8.1, §8.2 windows: `within N steps` is fewer than N steps ago (the run's newest step is 0
    steps ago), `within D` at most D seconds before the engine's clock."""
    if seq.within_steps is not None and len(req.run.actions) - step >= seq.within_steps:
        return False
    return seq.within_seconds is None or req.now - at <= seq.within_seconds


def sequence(seq: Any, req: Request) -> Truth:
    """§2 `after E [within ...]` / `before E` of a request that names a run."""
    mark = next(m for m in req.policy.marks if m.id == seq.mark)
    run = req.run
    if mark.labels:
        # §8.1 "every clause reads the same labels": `after labelled L` is L in the set, `before
        # labelled L` it is not; with a window, one of the labels last arrived within it
        if seq.within_steps is None and seq.within_seconds is None:
            seen = any(lab in run.labels for lab in mark.labels)
        else:
            seen = any(in_window(seq, req, *run.labels[lab]) for lab in mark.labels if lab in run.labels)
        return seen if seq.after else not seen
    # `after E` holds when an earlier allowed action of the run (in the window) matches E,
    # `before E` when none does. §8.2 `where C`: an entry counts when C holds with `earlier` bound
    # to it; an entry on which C fails does not stop the search: a match elsewhere decides,
    # otherwise the error is the clause's
    found: list[Truth] = []
    for step, e in enumerate(run.actions, start=1):
        if not in_window(seq, req, step, e["at"]):
            continue
        kind_ok = mark.kind is None or mark.kind.value == e["kind"]
        # §2: `delegate role R` names the hand-offs to agents holding R
        agent = req.policy.agents.get(e["target"]) if e["kind"] == "delegate" else None
        by_role = agent is not None and bool(mark.target.roles & set(agent.roles))
        if kind_ok and (mark.target.any or e["target"] in mark.target.names or by_role):
            if seq.where is None:
                found.append(True)
                continue
            earlier = {
                "step": step,
                "at": e["at"],
                "agent": e["agent"],
                "kind": e["kind"],
                "tool": e["target"],
                "args": e["args"],
                "result": e["result"],
            }
            found.append(cond(seq.where, {**req.act, "earlier": earlier}))
    seen = any_of(found)
    return seen if seq.after else ERROR if seen == ERROR else not seen


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
    record = None
    if allowed and req.run_id:
        entry = {"kind": req.kind, "target": req.target, "args": req.args, "agent": req.id}
        record = (req.run_id, {**entry, "at": req.now, "result": {}}, req.entered)
    return Verdict(
        outcome,
        ids,
        default_deny,
        stops,
        reserve if allowed else [],
        count,
        failures,
        sorted(gates),
        record,
        [(req.run_id, gid) for gid in req.grants.relied.values()] if allowed and req.grants else [],
        req.grants.consulted if req.grants is not None else set(),
    )


def apply(state: State, v: Verdict) -> None:
    """Apply a decision's effects to the state: stops set, rates counted, budgets reserved."""
    state.stops.update(v.stops)
    for key in v.count:
        state.counted[key] = state.counted.get(key, 0) + 1
    for bid, value, amount in v.reserve:
        state.used[(bid, value)] = state.used.get((bid, value), 0) + amount
    if v.record is not None:
        run_id, entry, labels = v.record
        run = state.runs.setdefault(run_id, RunRef())
        run.actions.append(entry)
        arrive(run, labels, entry["at"])
    for run, gid in v.grant_uses:
        for g in state.runs[run].grants:
            if g["id"] == gid and g["uses_left"] is not None:
                g["uses_left"] -= 1


def arrive(run: RunRef, labels: Iterable[str], at: float) -> None:
    """§8.1: labels arrive at the run's current step (the step of the last allowed action)."""
    for lab in labels:
        run.labels[lab] = (len(run.actions), at)


def convert_result(policy: CompiledPolicy, tool: str, result: Mapping[str, Any]) -> dict[str, Any]:
    """§8.2: the result fields a settlement keeps: those the tool declares, "converted like
    arguments (an integral double to int, an int to double)"; a field of the wrong type, or a
    non-finite number, is dropped; undeclared fields are not kept."""
    info = policy.tools.get(tool)
    declared = info.results if info is not None else {}  # (a delegation, a model call: no fields)
    kept: dict[str, Any] = {}
    for name, value in result.items():
        typ = getattr(declared.get(name), "kind", None)
        if (typ, type(value)) in (("string", str), ("int", int)):
            kept[name] = value
        elif typ == "int" and type(value) is float and value.is_integer():
            kept[name] = int(value)
        elif typ == "double" and type(value) in (int, float) and abs(value) < float("inf"):
            kept[name] = float(value)  # (NaN fails the comparison too)
    return kept


def settle(
    policy: CompiledPolicy,
    state: State,
    run_id: str,
    index: int,
    labels: Iterable[str],
    result: Mapping[str, Any],
) -> None:
    """§8 settlement of the run's allowed action ``index`` (0-based): its result fields join its
    entry (§8.2) and its labels arrive in the run at the current step and time (§8.1)."""
    run = state.runs[run_id]
    entry = run.actions[index]
    if entry["kind"] == "call":
        entry["result"] = convert_result(policy, entry["target"], result)
    arrive(run, labels, state.now)
