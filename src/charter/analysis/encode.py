"""The symbolic request and the encoding of a compiled policy's decision over it (one case at a time).

A *case* fixes the action kind and, for calls, the target tool (declared, or "not declared");
everything else about the request is symbolic: the actor (declared agents, or any other id with
any roles and attributes), typed arguments (present or not), labels, context, cost, signals, and
the state (run history, rate counts, budget spend) as free values. :func:`encode_policy` gives the
outcome the engine returns for every such request, as a z3 term, following docs/semantics.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import z3

from charter.analysis.cel import (
    FALSE,
    INT_MAX,
    INT_MIN,
    TRUE,
    Encoder,
    Obj,
    StrSet,
    Unsupported,
    V,
    _and,
    _or,
)
from charter.cel.types import CelType
from charter.engine.policy import (
    Budget,
    CompiledPolicy,
    Condition,
    RateLimit,
    Rule,
    Selector,
    SequenceCondition,
)
from charter.enums import ActionKind, Mode, Outcome, Scope

RANK = {o: o.rank for o in Outcome}
BY_RANK = {o.rank: o for o in Outcome}
#: ids, context ids and names in a request are at most this long (engine/request.py)
MAX_ID = 256
MICROS = 1_000_000


@dataclass(frozen=True, slots=True)
class Case:
    """The action kind and (for calls) the tool every request of the case targets."""

    kind: ActionKind
    tool: str | None = None  # a call: the declared tool; None: a target no policy declares

    def __str__(self) -> str:
        if self.kind is ActionKind.CALL:
            return f"call {self.tool}" if self.tool else "call of an undeclared tool"
        return self.kind.value


def mark_key(policy: CompiledPolicy, mark_id: str) -> tuple[Any, ...]:
    """A policy-independent identity of a sequence mark (ids are numbered per policy)."""
    for m in policy.marks:
        if m.id == mark_id:
            return (m.kind, m.target.any, tuple(sorted(m.target.names)), tuple(sorted(m.target.roles)),
                    tuple(sorted(m.labels)))  # fmt: skip
    return ("?", mark_id)


def _cel_kind(t: CelType | None) -> str:
    if t is None:
        return "dyn"
    return {"int": "int", "double": "double", "string": "string", "bool": "bool"}.get(t.kind, t.kind)


class SymRequest:
    """The z3 variables of one case's request and state, shared by every policy encoded over it."""

    def __init__(self, case: Case, arg_types: Mapping[str, str], declared_tools: Iterable[str] = ()):
        self.case = case
        self.actor = z3.String("actor")
        self.target = z3.StringVal(case.tool) if case.tool else z3.String("target")
        self.human = z3.String("human")
        self.chain_len = z3.Int("chain_len")
        self.ctx_ids = {k: z3.String(f"context.{k}") for k in ("workflow", "run", "tenant", "env")}
        self.arg_types = dict(arg_types)
        self.declared_tools = frozenset(declared_tools)
        self.run_steps = z3.Int("run.steps")
        self.constraints: list[z3.BoolRef] = [
            z3.Length(self.actor) >= 1,
            z3.Length(self.actor) <= MAX_ID,
            z3.Length(self.human) <= MAX_ID,
            self.chain_len >= 0,
            self.chain_len <= 8,
            self.run_steps >= 0,
            self.run_steps <= 8,
        ]
        for v in self.ctx_ids.values():
            self.constraints.append(z3.Length(v) <= MAX_ID)
        if case.tool is None:
            self.constraints += [z3.Length(self.target) >= 1, z3.Length(self.target) <= MAX_ID]
            if case.kind is ActionKind.CALL:  # the case of calls to a tool no version declares
                self.constraints += [self.target != z3.StringVal(t) for t in sorted(set(declared_tools))]
        self._vars: dict[tuple[Any, ...], Any] = {}
        #: free stand-ins for what is not encoded: key -> (value, error)
        self.opaque: dict[tuple[Any, ...], tuple[z3.BoolRef, z3.BoolRef]] = {}

    # ---- variables, made on first use ----------------------------------------------------------
    def var(self, key: tuple[Any, ...], sort: str) -> Any:
        """The variable named by ``key`` (made once; ``sort``: bool int double string micros)."""
        got = self._vars.get(key)
        if got is None:
            name = "|".join(str(k) for k in key)
            if sort == "bool":
                got = z3.Bool(name)
            elif sort == "int":
                got = z3.Int(name)
                self.constraints += [got >= INT_MIN, got <= INT_MAX]
            elif sort == "double":
                got = z3.Real(name)
            elif sort == "string":
                got = z3.String(name)
            elif sort == "micros":  # a non-negative amount in whole micro-units
                n = z3.Int(name + "#micros")
                self.constraints += [n >= 0, n <= 10**15]
                got = z3.ToReal(n) / MICROS
                self._vars[(*key, "#n")] = n
            elif sort == "count":
                got = z3.Int(name)
                self.constraints += [got >= 0, got <= 10**6]
            else:  # pragma: no cover - the sorts above are the only ones asked for
                raise ValueError(sort)
            self._vars[key] = got
        return got

    def typed(self, key: tuple[Any, ...], kind: str) -> V:
        """A symbolic value of a CEL kind (list, map and other kinds are not encoded)."""
        if kind in ("bool", "int", "double", "string"):
            return V(kind, self.var((*key, kind), kind))
        raise Unsupported(f"a value of type {kind} ({'.'.join(str(k) for k in key)})")

    def has_run(self) -> z3.BoolRef:
        """The request names a run (``context.run``), so the run's history is known."""
        return z3.Length(self.ctx_ids["run"]) > 0

    def opaque_pair(self, key: tuple[Any, ...]) -> tuple[z3.BoolRef, z3.BoolRef]:
        """A free (value, error) pair standing for a condition that is not encoded."""
        got = self.opaque.get(key)
        if got is None:
            n = len(self.opaque)
            got = (z3.Bool(f"opaque{n}"), z3.Bool(f"opaque{n}.error"))
            self.opaque[key] = got
        return got

    def values(self) -> Mapping[tuple[Any, ...], Any]:
        """Every variable made so far, by key."""
        return self._vars


@dataclass
class Encoded:
    """One policy's decision over a case: the final outcome (a rank), its parts, what was approximated."""

    outcome: z3.ArithRef
    rules_outcome: z3.ArithRef
    holds: dict[str, z3.BoolRef] = field(default_factory=dict)
    fails: dict[str, z3.BoolRef] = field(default_factory=dict)
    selected: dict[str, z3.BoolRef] = field(default_factory=dict)
    approximations: list[str] = field(default_factory=list)
    contributions: dict[str, z3.BoolRef] = field(default_factory=dict)


class PolicyEncoder:
    """Encodes one compiled policy over a symbolic request."""

    def __init__(self, policy: CompiledPolicy, req: SymRequest):
        self.p = policy
        self.r = req
        self.approx: list[str] = []
        case = req.case
        self.tool = policy.tools.get(case.tool) if case.tool else None
        self._roots: dict[str, V] | None = None

    # ---- the request as this policy sees it ------------------------------------------------------
    def _is(self, agent: str) -> z3.BoolRef:
        return self.r.actor == z3.StringVal(agent)

    def role(self, name: str) -> z3.BoolRef:
        """The actor holds role ``name`` (declared agents: the policy's roles; others: the request's)."""
        expr: z3.BoolRef = self.r.var(("actor.roles", name), "bool")
        for aid, info in sorted(self.p.agents.items()):
            expr = z3.If(self._is(aid), z3.BoolVal(name in info.roles), expr)
        return expr

    def attribute(self, name: str, kind: str) -> tuple[z3.BoolRef, V]:
        """(present, value) of an actor attribute: a declared agent's own value wins."""
        base = self.r.typed(("actor.attr", name), kind)
        present: z3.BoolRef = self.r.var(("actor.attr", name, "present"), "bool")
        term = base.term
        for aid, info in sorted(self.p.agents.items()):
            if name in info.attributes:
                lit = Encoder._lit(info.attributes[name])
                if lit.kind != kind:
                    if {lit.kind, kind} == {"int", "double"}:
                        lit = V(kind, z3.ToReal(lit.term) if kind == "double" else lit.term)
                    else:
                        raise Unsupported(f"attribute {name} of agent {aid} is a {lit.kind}, not a {kind}")
                term = z3.If(self._is(aid), lit.term, term)
                present = z3.If(self._is(aid), TRUE, present)
        return present, V(kind, term)

    def _attr_type(self, name: str) -> str:
        env = self._any_env()
        actor = env.get("actor") if env else None
        fields = actor.fields if actor is not None and actor.fields else {}
        return _cel_kind(fields.get(name))

    def _any_env(self) -> Mapping[str, Any] | None:
        for r in self.p.rules:
            for c in r.conditions:
                if c.checked is not None and c.checked.env is not None:
                    return c.checked.env
        return None

    def roots(self) -> dict[str, V]:
        """The CEL roots of this case's requests, under this policy."""
        if self._roots is not None:
            return self._roots
        r = self.r
        case = r.case
        is_call = case.kind is ActionKind.CALL

        def args_get(name: str) -> tuple[z3.BoolRef, V] | None:
            kind = r.arg_types.get(name) if is_call and case.tool else None
            if kind is None:
                return None  # requests carry only declared arguments
            return r.var(("args", name, "present"), "bool"), r.typed(("args", name), kind)

        args = V("obj", Obj(args_get, is_map=True, name="args"))

        def actor_get(name: str) -> tuple[z3.BoolRef, V] | None:
            if name == "id":
                return TRUE, V("string", r.actor)
            if name == "roles":
                return TRUE, V("strset", StrSet(self.role, "actor.roles"))
            if name == "depth":
                return TRUE, V("int", r.chain_len)
            if name == "human":
                return TRUE, V("string", r.human)
            if name == "chain":
                raise Unsupported("actor.chain (only its length, actor.depth, is encoded)")
            kind = self._attr_type(name)
            return self.attribute(name, kind)

        tool = self.tool

        def tool_get(name: str) -> tuple[z3.BoolRef, V] | None:
            if name == "name":
                return TRUE, V("string", r.target)
            if name == "category":
                return TRUE, V("string", z3.StringVal(tool.category or "" if tool else ""))
            if name == "tags":
                tags = sorted(tool.tags) if tool else []
                return TRUE, V("list", [V("string", z3.StringVal(t)) for t in tags])
            return None

        def labels(name: str) -> z3.BoolRef:
            return r.var(("action.labels", name), "bool")

        def action_get(name: str) -> tuple[z3.BoolRef, V] | None:
            if name == "kind":
                return TRUE, V("string", z3.StringVal(case.kind.value))
            if name == "target":
                return TRUE, V("string", r.target)
            if name == "args":
                return TRUE, args
            if name == "labels":
                return TRUE, V("strset", StrSet(labels, "action.labels"))
            if name == "arg_labels":
                raise Unsupported("action.arg_labels")
            return None

        def context_get(name: str) -> tuple[z3.BoolRef, V] | None:
            if name in r.ctx_ids:
                return TRUE, V("string", r.ctx_ids[name])
            if name == "time":
                raise Unsupported("context.time")
            env = self._any_env()
            ctx = env.get("context") if env else None
            fields = ctx.fields if ctx is not None and ctx.fields else {}
            if name not in fields:
                return None
            return r.var(("context", name, "present"), "bool"), r.typed(
                ("context", name), _cel_kind(fields[name])
            )

        def cost_get(unit: str) -> tuple[z3.BoolRef, V] | None:
            if unit not in self.p.units:
                return None
            return r.var(("cost", unit, "present"), "bool"), V("double", r.var(("cost", unit), "micros"))

        def run_labels(name: str) -> z3.BoolRef:
            return r.var(("run.labels", name), "bool")

        def run_get(name: str) -> tuple[z3.BoolRef, V] | None:
            if name == "steps":
                return TRUE, V("int", r.run_steps)
            if name == "labels":
                return TRUE, V("strset", StrSet(run_labels, "run.labels"))
            return None

        def signals_get(name: str) -> tuple[z3.BoolRef, V] | None:
            raise Unsupported("the signals list in a condition")

        self._roots = {
            "args": args,
            "actor": V("obj", Obj(actor_get, name="actor")),
            "action": V("obj", Obj(action_get, name="action")),
            "tool": V("obj", Obj(tool_get, name="tool")),
            "context": V("obj", Obj(context_get, name="context")),
            "cost": V("obj", Obj(cost_get, is_map=True, name="cost")),
            "run": V("obj", Obj(run_get, name="run")),
            "signals": V("obj", Obj(signals_get, name="signals")),
        }
        return self._roots

    # ---- selectors -------------------------------------------------------------------------------
    def actor_matches(self, sel: Selector) -> z3.BoolRef:
        """The selector's actor part (declared sub-agents match their ancestors' rules)."""
        parts: list[z3.BoolRef] = []
        if sel.subject_agent is not None:
            subj = sel.subject_agent
            subjects = {subj} | {a for a, info in self.p.agents.items() if subj in info.ancestors}
            parts.append(_or([self._is(a) for a in sorted(subjects)]))
        if sel.subject_workflow is not None:
            parts.append(self.r.ctx_ids["workflow"] == z3.StringVal(sel.subject_workflow))
        if not sel.actor_any:
            alts: list[z3.BoolRef] = []
            if sel.actor_agents:
                who = set(sel.actor_agents) | {
                    a for a, info in self.p.agents.items() if not sel.actor_agents.isdisjoint(info.ancestors)
                }
                alts += [self._is(a) for a in sorted(who)]
            alts += [self.role(rn) for rn in sorted(sel.actor_roles)]
            parts.append(_or(alts))
        return _and(parts)

    def may_target(self, sel: Selector) -> bool:
        """A static filter: False when the selector's action part can never cover this case."""
        case = self.r.case
        if sel.kind is not None and sel.kind is not case.kind:
            return False
        t = sel.target
        if t.any:
            return True
        if case.tool is None:
            # an undeclared call target is none of the declared tools a selector names
            if case.kind is ActionKind.CALL:
                return not (t.names <= self.r.declared_tools)
            return True
        return case.tool in t.names

    def target_matches(self, sel: Selector) -> z3.BoolRef:
        """The selector's action part, for this case's kind and target."""
        case = self.r.case
        if sel.kind is not None and sel.kind is not case.kind:
            return FALSE
        t = sel.target
        if t.any:
            return TRUE
        if case.tool is not None:
            by_name = z3.BoolVal(case.tool in t.names)
        else:
            by_name = _or([self.r.target == z3.StringVal(n) for n in sorted(t.names)])
        by_role: list[z3.BoolRef] = []
        if t.roles and case.kind is ActionKind.DELEGATE:
            for aid, info in sorted(self.p.agents.items()):
                if not t.roles.isdisjoint(info.roles):
                    by_role.append(self.r.target == z3.StringVal(aid))
        return _or([by_name, *by_role])

    def selects(self, sel: Selector) -> z3.BoolRef:
        """The selector covers the request."""
        return _and([self.target_matches(sel), self.actor_matches(sel)])

    # ---- conditions --------------------------------------------------------------------------------
    def condition(self, cond: Condition, extra: str = "") -> tuple[z3.BoolRef, z3.BoolRef]:
        """(definitely false, error) of one when/unless condition over this case."""
        key = ("cond", cond.text, cond.negate, extra, self._env_key(cond))
        try:
            if cond.checked is None:
                raise Unsupported("a condition without its checked AST")
            v = Encoder(self.roots(), cond.text).encode(cond.checked.node)
            if v.kind != "bool":
                raise Unsupported(f"a condition that gives a {v.kind}")
            val, err = v.term, v.err
        except Unsupported as ex:
            self.approx.append(f"condition '{cond.text}': {ex} is not encoded")
            val, err = self.r.opaque_pair(key)
        if cond.reads_history:
            err = _or([err, z3.Not(self.r.has_run())])
        holds = z3.Not(val) if cond.negate else val
        return z3.And(z3.Not(err), z3.Not(holds)), err

    @staticmethod
    def _env_key(cond: Condition) -> str:
        env = cond.checked.env if cond.checked is not None else None
        if not env:
            return ""
        args = env.get("args")
        return str(sorted((k, str(v)) for k, v in (args.fields or {}).items())) if args is not None else ""

    def sequence(self, seq: SequenceCondition) -> z3.BoolRef:
        """Whether a sequence clause holds, given a run (the marks and run labels are state)."""
        if seq.within_steps is not None or seq.within_seconds is not None:
            self.approx.append(f"'{seq.text or seq.mark}': windowed sequences are not encoded")
            v, _ = self.r.opaque_pair(
                ("seq", mark_key(self.p, seq.mark), seq.within_steps, seq.within_seconds)
            )
            seen = v
        else:
            seen = self.r.var(("run.mark", str(mark_key(self.p, seq.mark))), "bool")
            if seq.labels:
                labelled = _or([self.r.var(("run.labels", lab), "bool") for lab in sorted(seq.labels)])
                seen = _or([seen, labelled])
        return seen if seq.after else z3.Not(seen)

    def rule(self, rule: Rule) -> tuple[z3.BoolRef, z3.BoolRef, z3.BoolRef]:
        """(selected, holds, fails) of a rule, with the commutative error semantics of docs/semantics.md."""
        sel = self.selects(rule.selector)
        falses: list[z3.BoolRef] = []
        errs: list[z3.BoolRef] = []
        if rule.sequences:
            run = self.r.has_run()
            errs.append(z3.Not(run))
            for seq in rule.sequences:
                falses.append(z3.And(run, z3.Not(self.sequence(seq))))
        for cond in rule.conditions:
            f, e = self.condition(cond)
            falses.append(f)
            errs.append(e)
        if rule.signals:
            if self.p.signal_clears:
                self.approx.append(f"rule {rule.id}: clearing signals are not encoded")
            matched: list[z3.BoolRef] = []
            serrs: list[z3.BoolRef] = []
            for sc in rule.signals:
                present = self.r.var(("signal", sc.kind), "bool")
                if sc.where is None:
                    matched.append(present)
                else:
                    self.approx.append(f"rule {rule.id}: signal '{sc.kind}' where-clauses are not encoded")
                    v, e = self.r.opaque_pair(("signal-where", sc.kind, sc.where.text))
                    matched.append(z3.And(present, z3.Not(e), v))
                    serrs.append(z3.And(present, e))
            m = _or(matched)
            falses.append(z3.And(z3.Not(m), z3.Not(_or(serrs))))
            errs.append(z3.And(z3.Not(m), _or(serrs)))
        false = _or(falses)
        err = _or(errs)
        holds = _and([sel, z3.Not(false), z3.Not(err)])
        fails = _and([sel, z3.Not(false), err])
        return sel, holds, fails

    # ---- the whole decision ------------------------------------------------------------------------
    def encode(self, relevant: Iterable[Rule] | None = None) -> Encoded:
        """The outcome of every request of the case under this policy (ranks: allow 0 ... halt 4)."""
        rules = list(relevant) if relevant is not None else self.relevant_rules()
        out = Encoded(z3.IntVal(0), z3.IntVal(0))
        contrib: dict[int, list[z3.BoolRef]] = {k: [] for k in range(5)}
        permits: list[z3.BoolRef] = []
        for rule in rules:
            sel, holds, fails = self.rule(rule)
            out.selected[rule.id], out.holds[rule.id], out.fails[rule.id] = sel, holds, fails
            if rule.mode is Mode.SHADOW:
                continue
            if rule.effect is Outcome.ALLOW:
                permits.append(holds)
            else:
                contrib[rule.effect.rank].append(holds)
            took = rule.fail.outcome
            if took is not None:
                contrib[took.rank].append(fails)
        case = self.r.case
        if case.kind is ActionKind.CALL and (case.tool is None or case.tool not in self.p.tools):
            contrib[RANK[Outcome.DENY]].append(TRUE)  # charter.unknown-tool
        c = {k: _or(v) for k, v in contrib.items()}
        permitted = _or(permits)
        rules_outcome = z3.If(
            c[4], 4, z3.If(_or([c[3], z3.Not(permitted)]), 3, z3.If(c[2], 2, z3.If(c[1], 1, 0)))
        )
        out.rules_outcome = rules_outcome
        out.contributions = {BY_RANK[k].value: v for k, v in c.items()}
        out.contributions["permitted"] = permitted
        bound = self.boundaries()
        out.outcome = z3.If(rules_outcome == 0, bound, rules_outcome)
        out.approximations = list(dict.fromkeys(self.approx))
        return out

    def relevant_rules(self) -> list[Rule]:
        """The rules whose selector can cover a request of this case (a static filter)."""
        return [r for r in self.p.rules if self.may_target(r.selector)]

    def boundaries(self) -> z3.ArithRef:
        """What rates and budgets contribute when the rules allow (state: counts and spend are free)."""
        contrib: dict[int, list[z3.BoolRef]] = {k: [] for k in range(1, 5)}
        for tw in self.p.tripwires:
            if tw.mode is Mode.ENFORCE and self.may_target(tw.selector):
                self.approx.append(f"tripwire {tw.id}: taken as not tripped (tripwires are not encoded)")
        for rl in self.p.rates:
            self._limit(rl, contrib)
        for b in self.p.budgets:
            self._limit(b, contrib)
        expr: z3.ArithRef = z3.IntVal(0)
        for k in range(1, 5):
            expr = z3.If(_or(contrib[k]), k, expr)
        return expr

    def _limit(self, item: RateLimit | Budget, contrib: dict[int, list[z3.BoolRef]]) -> None:
        if item.mode is not Mode.ENFORCE:
            return
        if not self.may_target(item.selector):
            return
        sel = self.selects(item.selector)
        if item.scope is Scope.ROLE:
            self.approx.append(f"{item.kind} {item.id}: role-scoped state is not encoded")
        falses: list[z3.BoolRef] = []
        errs: list[z3.BoolRef] = []
        for cond in item.conditions:
            f, e = self.condition(cond)
            falses.append(f)
            errs.append(e)
        if item.by_arg is not None:
            # its counter is one free variable like any other scope's; a call whose argument
            # cannot key it fails the boundary. A declared string/int/bool argument has its type,
            # so only its absence fails; any other argument's run-time type is not modelled.
            case = self.r.case
            kind = self.r.arg_types.get(item.by_arg) if case.kind is ActionKind.CALL and case.tool else None
            if kind in ("string", "int", "uint", "bool"):
                self.r.typed(("args", item.by_arg), kind)  # so that a witness carries its value
                errs.append(z3.Not(self.r.var(("args", item.by_arg, "present"), "bool")))
            else:
                self.approx.append(
                    f"{item.kind} {item.id}: counted per args.{item.by_arg}, whose type here is not "
                    "declared; a missing or ill-typed argument (which fails the boundary) is not encoded"
                )
        if isinstance(item, Budget):
            present = self.r.var(("cost", item.unit, "present"), "bool")
            if item.unit not in self.p.units:
                return
            amount = self.r.var(("cost", item.unit), "micros")
            used = self.r.var(("state.budget", item.id), "micros")
            self.r.constraints.append(used <= item.limit_micros / MICROS)
            over = amount + used > z3.RealVal(item.limit_micros) / MICROS
            sel = z3.And(sel, present)
        else:
            count = self.r.var(("state.rate", item.id), "count")
            over = count >= item.limit
        ok = z3.Not(_or(falses))
        err = _or(errs)
        took = item.fail.outcome
        if took is not None and errs:
            contrib[took.rank].append(_and([sel, ok, err]))
        contrib[item.on_exceed.rank].append(_and([sel, ok, z3.Not(err), over]))


def arg_types(policies: Iterable[CompiledPolicy], tool: str) -> tuple[dict[str, str], list[str]]:
    """The argument kinds of ``tool`` across policies, and the names whose declared types disagree."""
    out: dict[str, str] = {}
    clash: list[str] = []
    for p in policies:
        info = p.tools.get(tool)
        if info is None:
            continue
        for name, typ in info.args.items():
            kind = {"number": "double"}.get(typ, typ)
            if name in out and out[name] != kind:
                clash.append(name)
            out.setdefault(name, kind)
    return out, clash


def cases(policies: Iterable[CompiledPolicy]) -> list[Case]:
    """Every case of requests: a call to each declared tool, to an undeclared one, and the other kinds."""
    tools: set[str] = set()
    for p in policies:
        tools |= set(p.tools)
    out = [Case(ActionKind.CALL, t) for t in sorted(tools)]
    out.append(Case(ActionKind.CALL, None))
    out += [Case(k) for k in ActionKind if k is not ActionKind.CALL]
    return out
