"""Compiler stage 3 (lower): typed rule IR with compiled conditions, inheritance checks, marks."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from charter.cel.provenance import PROVENANCE
from charter.cel.syntax import size as cel_size
from charter.cel.types import CelType
from charter.compiler.resolve import RuleEntry, Symbols
from charter.compiler.typecheck import (
    ConditionCompiler,
    Environments,
    earlier_type,
    event_tools,
    rule_env,
    signal_env,
    targeted_tools,
    where_env,
)
from charter.diagnostics import Code, Diagnostic, error
from charter.engine import policy as ir
from charter.engine.provenance import RESERVED_LABELS
from charter.enums import (
    ActionKind,
    Calendar,
    FailMode,
    Mode,
    Outcome,
    RuleKind,
    Scope,
    TriggerKind,
)
from charter.syntax import ast

EFFECT = {
    RuleKind.PERMIT: Outcome.ALLOW,
    RuleKind.FORBID: Outcome.DENY,
    RuleKind.HALT: Outcome.HALT,
    RuleKind.ESCALATE: Outcome.ESCALATE,
    RuleKind.APPROVAL: Outcome.REQUIRE_APPROVAL,
}
_CAL_SECONDS = {Calendar.HOUR: 3600, Calendar.DAY: 86400, Calendar.WEEK: 604800, Calendar.MONTH: 2592000}
_SPEC_OUTCOME = {
    "allow": Outcome.ALLOW,
    "deny": Outcome.DENY,
    "halt": Outcome.HALT,
    "escalate": Outcome.ESCALATE,
    "require_approval": Outcome.REQUIRE_APPROVAL,
}
MICROS = 1_000_000
#: the declared argument types a scope may be counted per: those whose values have one spelling
_KEY_TYPES = frozenset({CelType.STRING, CelType.INT, CelType.UINT, CelType.BOOL})


@dataclass
class Lowered:
    """The IR of every construct, ready to be indexed."""

    rules: list[ir.Rule] = field(default_factory=list)
    budgets: list[ir.Budget] = field(default_factory=list)
    rates: list[ir.RateLimit] = field(default_factory=list)
    tripwires: list[ir.Tripwire] = field(default_factory=list)
    result_checks: list[ir.ResultCheck] = field(default_factory=list)
    marks: dict[tuple[Any, ...], ir.EventMark] = field(default_factory=dict)
    uses_run_state: bool = False
    #: a rule relates the action to earlier entries (``where``): history keeps their detail
    history_detail: bool = False


class Lowerer:
    """Turns resolved rule entries into IR; diagnostics collect instead of raising."""

    def __init__(self, sym: Symbols, envs: Environments, conds: ConditionCompiler):
        self.sym = sym
        self.envs = envs
        self.conds = conds
        self.diags: list[Diagnostic] = []
        self.out = Lowered()
        #: the event matchers by mark id (a ``where`` clause matches history entries with them)
        self._events: dict[str, ir.EventMark] = {}
        self.escalations = {name: self._escalation(e) for name, e in sym.escalations.items()}

    # ---- shared pieces ------------------------------------------------------------------------
    def _escalation(self, esc: ast.Escalation) -> ir.EscalationPath:
        final = _SPEC_OUTCOME.get(esc.final or "deny", Outcome.DENY)
        steps = tuple(
            ir.EscalationStep(s.target.value, s.timeout.seconds if s.timeout else None) for s in esc.steps
        )
        return ir.EscalationPath(esc.name.value, steps, final)

    def _path_to(self, entry: RuleEntry, severity: str = "medium") -> ir.EscalationPath | None:
        to = entry.one("to")
        if to is None:
            return None
        name = to.name.value
        base = self.escalations.get(name)
        if base is None:
            base = ir.EscalationPath(name, (ir.EscalationStep(name, None),), Outcome.DENY)
        return ir.EscalationPath(base.name, base.steps, base.fallback, severity)

    def _target(self, sel: ast.TargetSel | None, delegate: bool) -> ir.Target:
        if sel is None or sel.by == "any":
            return ir.Target()
        names: set[str] = set()
        roles: set[str] = set()
        for n in sel.names:
            if sel.by == "name":
                names.add(n.value)
            elif sel.by == "tag":
                names.update(self.sym.tags.get(n.value, []))
            elif sel.by == "category":
                names.update(self.sym.categories.get(n.value, []))
            elif sel.by == "role":
                roles.add(n.value)
        return ir.Target(any=False, names=frozenset(names), roles=frozenset(roles))

    def selector(self, entry: RuleEntry) -> ir.Selector:
        """The actor x action x target selector of a rule (plus its module's narrowing subject)."""
        actor_any, roles, agents = True, frozenset[str](), frozenset[str]()
        ac = entry.one("actor")
        if ac is not None and ac.selector.by != "any":
            actor_any = False
            vals = frozenset(n.value for n in ac.selector.names)
            roles, agents = (vals, frozenset()) if ac.selector.by == "role" else (frozenset(), vals)
        kind = None
        target = ir.Target()
        act = entry.one("action")
        if act is not None and act.selector.kind is not None:
            kind = act.selector.kind
            target = self._target(act.selector.target, kind is ActionKind.DELEGATE)
        sa = sw = None
        if entry.extends is not None:
            if entry.extends.subject_kind == "agent":
                sa = entry.extends.subject.value
            else:
                sw = entry.extends.subject.value
        return ir.Selector(actor_any, roles, agents, kind, target, sa, sw)

    def conditions(self, entry: RuleEntry, env: dict[str, Any]) -> tuple[ir.Condition, ...]:
        """Compiled ``when`` / ``unless`` conditions of a rule."""
        out = []
        for name in ("when", "unless"):
            for c in entry.clauses.get(name, []):
                compiled = self.conds.compile(c.text, env, c.text_span, self.diags)
                if compiled is not None:
                    out.append(self._cond(c.text, name == "unless", compiled))
                    if _reads_run(compiled.references):
                        self.out.uses_run_state = True
                    if any(r.startswith("history") for r in compiled.references):
                        self.out.uses_run_state = self.out.history_detail = True
        return tuple(out)

    @staticmethod
    def _cond(text: str, negate: bool, compiled: Any) -> ir.Condition:
        return ir.Condition(
            text, negate, compiled.fn, compiled.explain, frozenset(compiled.references), compiled
        )

    def _where(self, c: ast.SequenceClause, env: dict[str, Any]) -> ir.Condition | None:
        """The compiled ``where`` of a history clause, with ``earlier`` typed by the event's tools."""
        assert c.where is not None
        if c.event.by == "labelled":
            self.diags.append(
                error(
                    Code.E106_BAD_CLAUSE,
                    "'where' relates the action to an earlier call or delegation, not to a label",
                    c.where_span,
                    "write 'after call TOOL where earlier.args.x == args.y'",
                )
            )
            return None
        earlier = earlier_type(event_tools(c.event, self.sym), self.envs)
        compiled = self.conds.compile(c.where, where_env(env, earlier), c.where_span, self.diags)
        return self._cond(c.where, False, compiled) if compiled is not None else None

    def _mark(self, ev: ast.EventSel) -> str:
        if ev.by == "labelled":
            key: tuple[Any, ...] = ("labelled", frozenset(n.value for n in ev.labels))
            kind, target, labels = None, ir.Target(), frozenset(n.value for n in ev.labels)
        else:
            kind = ActionKind.CALL if ev.by == "call" else ActionKind.DELEGATE
            target = self._target(ev.target, kind is ActionKind.DELEGATE)
            labels = frozenset()
            key = (kind, target)
        found = self.out.marks.get(key)
        if found is None:
            found = ir.EventMark(f"m{len(self.out.marks) + 1}", kind, target, labels)
            self.out.marks[key] = found
            self._events[found.id] = found
        return found.id

    def _mode(self, entry: RuleEntry) -> Mode:
        m = entry.one("mode")
        return m.mode if m is not None else Mode.ENFORCE

    def _fail(self, entry: RuleEntry) -> FailMode:
        oc = entry.one("on error")
        if oc is None:
            return FailMode.DENY
        kind = oc.outcome.kind
        if kind == "allow":
            self.diags.append(
                error(
                    Code.E402_BAD_VALUE,
                    "'on error allow' is not accepted",
                    oc.span,
                    "to fail open on purpose write 'on error ignore' (it is counted and reported)",
                )
            )
            return FailMode.DENY
        if kind == "label":
            self.diags.append(error(Code.E402_BAD_VALUE, "'on error' cannot label data", oc.span))
            return FailMode.DENY
        return FailMode(kind)

    def _outcome(
        self, entry: RuleEntry, clause: str, default: Outcome, allowed: set[str]
    ) -> tuple[Outcome, Scope | None]:
        oc = entry.one(clause)
        if oc is None:
            return default, None
        spec: ast.OutcomeSpec = oc.outcome
        if spec.kind not in allowed:
            self.diags.append(
                error(
                    Code.E402_BAD_VALUE,
                    f"'{clause} {spec.kind.replace('_', ' ')}' is not possible here",
                    spec.span,
                    "possible: " + ", ".join(sorted(a.replace("_", " ") for a in allowed)),
                )
            )
            return default, None
        return _SPEC_OUTCOME[spec.kind], spec.scope

    def _halt_scope(self, entry: RuleEntry, outcome: Outcome, scope: Scope | None) -> Scope | None:
        """What a boundary's halt stops: the scope it names, else its ``stop`` clause, else the agent."""
        if outcome is not Outcome.HALT:
            return None
        if scope is not None:
            return scope
        stop = entry.one("stop")
        return stop.scope if stop is not None else Scope.AGENT

    def _reason(self, entry: RuleEntry) -> str:
        r = entry.one("reason")
        return r.text if r is not None else ""

    def _source(self, entry: RuleEntry) -> ir.Source:
        sp = entry.rule.id.span
        return ir.Source(sp.path, sp.line, sp.column)

    def _narrowing(self, entry: RuleEntry) -> None:
        if entry.extends is None:
            return
        parent = entry.extends.parent.value
        if entry.rule.kind is RuleKind.PERMIT:
            self.diags.append(
                error(
                    Code.E401_WIDENS_PARENT,
                    f"permit '{entry.rule.id.value}' would widen what policy '{parent}' allows",
                    entry.rule.id.span,
                    f"a policy that extends '{parent}' may only narrow it: use forbid, require "
                    "approval, escalate, halt, budgets, rates or tripwires",
                )
            )
        if self._fail(entry) is FailMode.IGNORE:
            oc = entry.one("on error")
            self.diags.append(
                error(
                    Code.E404_FAIL_OPEN_IN_CHILD,
                    f"'on error ignore' in rule '{entry.rule.id.value}' would fail open"
                    " inside a narrowing policy",
                    oc.span if oc is not None else entry.rule.id.span,
                    "remove it: rules of a narrowing policy fail closed",
                )
            )
        for clause in ("on exceed", "then"):
            oc = entry.one(clause)
            if oc is not None and oc.outcome.kind in ("allow", "ignore"):
                self.diags.append(
                    error(
                        Code.E401_WIDENS_PARENT,
                        f"'{clause} {oc.outcome.kind}' would widen policy '{parent}'",
                        oc.span,
                        "a narrowing policy may only deny, escalate, require approval or halt",
                    )
                )

    # ---- kinds ---------------------------------------------------------------------------------
    def lower(self, order: int, entry: RuleEntry) -> None:
        """Lower one rule entry into the matching IR list."""
        self._narrowing(entry)
        kind = entry.rule.kind
        env = rule_env(entry, self.sym, self.envs)
        if kind in EFFECT:
            self._rule(order, entry, env)
        elif kind is RuleKind.BUDGET:
            self._budget(entry, env)
        elif kind is RuleKind.RATE:
            self._rate(entry, env)
        elif kind is RuleKind.TRIPWIRE:
            self._tripwire(entry, env)
        elif kind is RuleKind.RESULT:
            self._result(entry, env)

    def _rule(self, order: int, entry: RuleEntry, env: dict[str, Any]) -> None:
        kind = entry.rule.kind
        signals = []
        for sc in entry.clauses.get("signal", []):
            where = None
            if sc.where is not None:
                compiled = self.conds.compile(sc.where, signal_env(env), sc.where_span, self.diags)
                if compiled is not None:
                    where = self._cond(sc.where, False, compiled)
            signals.append(ir.SignalCondition(sc.kind.value, where))
        sequences = []
        for name in ("after", "before"):
            for c in entry.clauses.get(name, []):
                w = c.within
                mark = self._mark(c.event)
                where = self._where(c, env) if c.where is not None else None
                sequences.append(
                    ir.SequenceCondition(
                        mark,
                        name == "after",
                        w.steps if w is not None else None,
                        w.duration.seconds if w is not None and w.duration is not None else None,
                        labels=frozenset(n.value for n in c.event.labels),
                        where=where,
                        event=self._events[mark] if c.where is not None else None,
                        earlier_fields=earlier_fields(where.references) if where is not None else None,
                        step_cost=cel_size(where.checked.node) + 1 if where is not None else 1,
                    )
                )
                self.out.uses_run_state = True
                if c.where is not None:
                    self.out.history_detail = True
        approval = None
        if kind is RuleKind.APPROVAL:
            approval = self._approval(entry)
        sev = entry.one("severity")
        escalation = (
            self._path_to(entry, sev.name.value if sev else "medium") if kind is RuleKind.ESCALATE else None
        )
        stop = entry.one("stop")
        self.out.rules.append(
            ir.Rule(
                id=entry.rule.id.value,
                kind=kind,
                effect=EFFECT[kind],
                reason=self._reason(entry),
                mode=self._mode(entry),
                fail=self._fail(entry),
                selector=self.selector(entry),
                conditions=self.conditions(entry, env),
                signals=tuple(signals),
                sequences=tuple(sequences),
                approval=approval,
                escalation=escalation,
                stop_scope=stop.scope if stop is not None else None,
                source=self._source(entry),
                order=order,
            )
        )

    def _approval(self, entry: RuleEntry) -> ir.ApprovalGate:
        group = entry.one("approvers").name.value
        members = tuple(self.sym.groups.get(group, ()))
        q = entry.one("quorum")
        quorum = q.value if q is not None else 1
        if quorum < 1:
            self.diags.append(error(Code.E403_BAD_QUORUM, "quorum must be at least 1", q.span))
        sod = entry.one("separation of duties")
        exp = entry.one("expires after")
        redeem = entry.one("redeem within")
        timeout, _ = self._outcome(entry, "on timeout", Outcome.DENY, {"deny", "escalate", "halt"})
        return ir.ApprovalGate(
            group,
            max(1, quorum),
            sod.on if sod is not None else True,
            exp.duration.seconds if exp is not None else 86400.0,
            timeout,
            members,
            redeem.duration.seconds if redeem is not None else ir.DEFAULT_REDEEM_S,
        )

    def _budget(self, entry: RuleEntry, env: dict[str, Any]) -> None:
        lim: ast.LimitClause = entry.one("limit")
        if lim.unit is None:
            self.diags.append(
                error(
                    Code.E402_BAD_VALUE, "a budget limit needs a unit", lim.span, "e.g. limit 50 USD per day"
                )
            )
            return
        tz = entry.one("timezone")
        tzname = tz.tz if tz is not None else "UTC"
        try:
            ZoneInfo(tzname)
        except (ZoneInfoNotFoundError, ValueError):
            self.diags.append(
                error(
                    Code.E402_BAD_VALUE,
                    f"unknown time zone '{tzname}'",
                    tz.span,
                    "use an IANA name such as Europe/Paris or UTC",
                )
            )
        outcome, stop = self._outcome(
            entry, "on exceed", Outcome.DENY, {"deny", "halt", "escalate", "require_approval"}
        )
        window = lim.window
        self.out.budgets.append(
            ir.Budget(
                id=entry.rule.id.value,
                reason=self._reason(entry),
                scope=entry.one("scope").scope,
                by_arg=self._scope_by(entry),
                unit=lim.unit.value,
                limit_micros=int(lim.amount * MICROS),
                calendar=window.calendar if window is not None else None,
                rolling_seconds=window.rolling.seconds if window is not None and window.rolling else None,
                timezone=tzname,
                on_exceed=outcome,
                stop_scope=self._halt_scope(entry, outcome, stop),
                fail=self._fail(entry),
                amount=self._amount(entry, env),
                **self._shared(entry, env),
            )
        )

    def _scope_by(self, entry: RuleEntry) -> str | None:
        """``scope S by args.A``: the argument A, checked (E312) against the tools the rule selects.

        Only a top-level argument: a key part must be one value the caller sends, and its declared
        type must be one that has an exact identity (string, int, uint, bool): a double, list or map
        would make two spellings of one value two counters, or one counter for many values.
        """
        clause: ast.ScopeClause = entry.one("scope")
        by = clause.by
        if by is None:
            return None
        root, _, name = by.value.partition(".")
        if root != "args" or not name or "." in name:
            self.diags.append(
                error(
                    Code.E312_SCOPE_ARG,
                    f"'scope ... by' takes one argument, written args.NAME, not '{by.value}'",
                    by.span,
                    "e.g. scope agent by args.vendor",
                )
            )
            return None
        tools = targeted_tools(entry, self.sym)
        for tool in tools or ():
            declared = self.envs.tool_args.get(tool)
            if not declared:
                continue  # a tool that declares no arguments: its calls are checked at run time
            typ = declared.get(name)
            if typ is None:
                self.diags.append(
                    error(
                        Code.E312_SCOPE_ARG,
                        f"'{name}' is not an argument of tool {tool}: the {entry.rule.kind.value} "
                        f"'{entry.rule.id.value}' would fail on every call to it",
                        by.span,
                        "declare it on the tool, or narrow the rule's 'action call' to tools that have it",
                    )
                )
            elif typ not in _KEY_TYPES:
                self.diags.append(
                    error(
                        Code.E312_SCOPE_ARG,
                        f"argument '{name}' of tool {tool} is {typ}: a scope is counted per a "
                        "string, int or bool argument",
                        by.span,
                        "count per an identifier argument (e.g. a vendor id), not an amount or a list",
                    )
                )
        return name

    def _amount(self, entry: RuleEntry, env: dict[str, Any]) -> ir.Condition | None:
        """``amount CEL``: the number a budget or spend tripwire counts, instead of ``cost.<unit>``."""
        clause: ast.AmountClause | None = entry.one("amount")
        if clause is None:
            return None
        compiled = self.conds.compile(clause.text, env, clause.text_span, self.diags, numeric=True)
        if compiled is None:
            return None
        if _reads_run(compiled.references):
            self.out.uses_run_state = True
        if any(r.startswith("history") for r in compiled.references):
            self.out.uses_run_state = self.out.history_detail = True
        return self._cond(clause.text, False, compiled)

    def _rate(self, entry: RuleEntry, env: dict[str, Any]) -> None:
        lim: ast.LimitClause = entry.one("limit")
        if lim.unit is not None and lim.unit.value not in ("calls", "actions", "requests"):
            self.diags.append(
                error(
                    Code.E402_BAD_VALUE,
                    f"a rate counts actions, not '{lim.unit.value}'",
                    lim.unit.span,
                    "write e.g. limit 30 per 1m, or use a budget for amounts",
                )
            )
        if lim.window is None:
            self.diags.append(
                error(Code.E402_BAD_VALUE, "a rate limit needs a window", lim.span, "e.g. limit 30 per 1m")
            )
            return
        if lim.amount != int(lim.amount) or lim.amount < 0:
            self.diags.append(
                error(Code.E402_BAD_VALUE, "a rate limit is a whole number of actions", lim.span)
            )
            return
        seconds = lim.window.rolling.seconds if lim.window.rolling else _CAL_SECONDS[lim.window.calendar]  # type: ignore[index]
        outcome, stop = self._outcome(
            entry, "on exceed", Outcome.DENY, {"deny", "halt", "escalate", "require_approval"}
        )
        self.out.rates.append(
            ir.RateLimit(
                id=entry.rule.id.value,
                reason=self._reason(entry),
                scope=entry.one("scope").scope,
                by_arg=self._scope_by(entry),
                limit=int(lim.amount),
                window_seconds=float(seconds),
                on_exceed=outcome,
                stop_scope=self._halt_scope(entry, outcome, stop),
                fail=self._fail(entry),
                **self._shared(entry, env),
            )
        )

    def _tripwire(self, entry: RuleEntry, env: dict[str, Any]) -> None:
        trig: ast.Trigger = entry.one("trigger").trigger
        amount = entry.one("amount")
        if amount is not None and trig.kind is not TriggerKind.VELOCITY:
            self.diags.append(
                error(
                    Code.E402_BAD_VALUE,
                    "'amount' counts money: only a 'spend more than' tripwire takes it",
                    amount.span,
                    "remove it, or trigger on spend: trigger spend more than 3000 EUR within 1h",
                )
            )
        outcome, stop = self._outcome(
            entry, "then", Outcome.HALT, {"deny", "halt", "escalate", "require_approval"}
        )
        stop = self._halt_scope(entry, outcome, stop)
        self.out.tripwires.append(
            ir.Tripwire(
                id=entry.rule.id.value,
                reason=self._reason(entry),
                trigger=trig.kind,
                threshold=float(trig.threshold),
                window_seconds=trig.within.seconds if trig.within else None,
                unit=trig.unit.value if trig.unit else None,
                outcome=outcome,
                stop_scope=stop,
                amount=self._amount(entry, env),
                **self._shared(entry, env),
            )
        )

    def _shared(self, entry: RuleEntry, env: dict[str, Any]) -> dict[str, Any]:
        """What every boundary and check carries: selector, conditions, mode, source, escalation."""
        return {
            "selector": self.selector(entry),
            "conditions": self.conditions(entry, env),
            "mode": self._mode(entry),
            "source": self._source(entry),
            "escalation": self._path_to(entry),
        }

    def _result(self, entry: RuleEntry, env: dict[str, Any]) -> None:
        then: ast.OutcomeSpec = entry.one("then").outcome
        labels = frozenset(n.value for n in then.labels)
        for n in then.labels:
            if n.value in RESERVED_LABELS:
                self.diags.append(
                    error(
                        Code.E402_BAD_VALUE,
                        f"the label '{n.value}' is reserved: only the engine gives it",
                        n.span,
                        "'planned' and 'unknown' are derived from a value's sources; choose another label",
                    )
                )
        labels -= RESERVED_LABELS
        outcome: Outcome | None = None
        if then.kind in ("halt", "escalate", "deny"):
            outcome = _SPEC_OUTCOME[then.kind]
        elif then.kind != "label":
            self.diags.append(
                error(
                    Code.E402_BAD_VALUE,
                    f"a check after an action cannot '{then.kind.replace('_', ' ')}'",
                    then.span,
                    "possible: halt [scope], escalate, deny, label L",
                )
            )
        self.out.result_checks.append(
            ir.ResultCheck(
                id=entry.rule.id.value,
                reason=self._reason(entry),
                outcome=outcome,
                stop_scope=self._halt_scope(entry, outcome, then.scope) if outcome is not None else None,
                labels=labels,
                fields=frozenset(f.value for f in then.fields),
                fail=self._fail(entry),
                **self._shared(entry, env),
            )
        )


def _reads_run(references: frozenset[str]) -> bool:
    """A condition that reads the run's state: ``run`` itself, or provenance (an ``agent`` source
    is ``planned`` only while the run's labels hold no ``untrusted``: they must be read)."""
    return any(r == "run" or r.startswith("run.") or r == PROVENANCE for r in references)


def to_micros(amount: float | Decimal) -> int:
    """Amounts in integer micro-units (exact sums on every store)."""
    return round(Decimal(str(amount)) * MICROS)


def earlier_fields(references: frozenset[str]) -> frozenset[str] | None:
    """The fields of ``earlier`` a ``where`` reads (``earlier.result.id`` reads ``result``);
    None when it reads the entry whole (the checker then names plain ``earlier``: ``size(earlier)``,
    ``earlier[k]``, ``'x' in earlier``, a named condition given ``earlier``)."""
    out: set[str] = set()
    for ref in references:
        head, dot, rest = ref.partition(".")
        if head != "earlier":
            continue
        if not dot:
            return None
        out.add(rest.partition(".")[0])
    return frozenset(out)
