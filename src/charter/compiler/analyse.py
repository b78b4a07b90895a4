"""Compiler stage 4 (analyse): warnings about rules that cannot matter as written."""

from __future__ import annotations

from charter.compiler.lower import Lowered
from charter.compiler.resolve import RuleEntry, Symbols
from charter.diagnostics import Code, Diagnostic, warning
from charter.engine import policy as ir
from charter.enums import ActionKind, FailMode, Mode, Outcome, RuleKind, Scope, TriggerKind

_CONST_FALSE = {"false", "!true", "1 == 2"}
_CONST_TRUE = {"true", "!false"}


def _covers(outer: ir.Selector, inner: ir.Selector) -> bool:
    """Whether every request the inner selector selects is selected by the outer one."""
    if outer.subject_agent not in (None, inner.subject_agent):
        return False
    if outer.subject_workflow not in (None, inner.subject_workflow):
        return False
    if not outer.actor_any:
        if inner.actor_any:
            return False
        if inner.actor_agents and not inner.actor_agents <= outer.actor_agents:
            return False
        if inner.actor_roles and not inner.actor_roles <= outer.actor_roles:
            return False
    if outer.kind is not None and outer.kind is not inner.kind:
        return False
    if outer.target.any:
        return True
    if inner.target.any or outer.target.roles or inner.target.roles:
        return False
    return inner.target.names <= outer.target.names


class _CoverIndex:
    """Rules indexed by target, so finding the ones that may cover a selector is not a full scan."""

    def __init__(self, rules: list[ir.Rule]) -> None:
        self.rules = rules
        self.any_target: list[int] = []
        self.by_name: dict[str, list[int]] = {}
        self.plain: list[int] = []
        for i, r in enumerate(rules):
            target = r.selector.target
            if target.any:
                self.any_target.append(i)
            elif not target.roles:
                self.plain.append(i)
                for name in target.names:
                    self.by_name.setdefault(name, []).append(i)

    def candidates(self, inner: ir.Selector) -> list[ir.Rule]:
        """In declaration order, every rule whose target could cover ``inner``'s (a superset)."""
        target = inner.target
        if target.any or target.roles:
            picked = self.any_target
        elif not target.names:
            picked = sorted(self.any_target + self.plain)
        else:
            narrowest = min((self.by_name.get(n, []) for n in target.names), key=len)
            picked = sorted(self.any_target + narrowest)
        return [self.rules[i] for i in picked]


def _unconditional(rule: ir.Rule) -> bool:
    return not rule.conditions and not rule.signals and not rule.sequences


def analyse(sym: Symbols, low: Lowered) -> list[Diagnostic]:
    """Warnings: never fires, shadowed permits, budgets that never trip, unreachable quorum, unused tools,
    spend tripwires whose outcome changes no decision."""
    out: list[Diagnostic] = []
    entries: dict[str, RuleEntry] = {e.rule.id.value: e for e in sym.rules}

    for entry in sym.rules:
        rid = entry.rule.id
        for name, consts in (("when", _CONST_FALSE), ("unless", _CONST_TRUE)):
            for c in entry.clauses.get(name, []):
                if c.text.strip() in consts:
                    out.append(
                        warning(
                            Code.W501_NEVER_FIRES,
                            f"rule '{rid.value}' can never fire",
                            c.span,
                            f"'{name} {c.text.strip()}' is always unmet; remove the rule or the clause",
                        )
                    )
        if entry.one("reason") is None:
            out.append(
                warning(
                    Code.W506_NO_REASON,
                    f"rule '{rid.value}' has no reason",
                    rid.span,
                    'add reason "..." so decisions explain themselves',
                )
            )
        if entry.rule.kind is RuleKind.PERMIT:
            for c in entry.clauses.get("after", []):
                if c.event.by == "labelled":
                    labels = ", ".join(n.value for n in c.event.labels)
                    out.append(
                        warning(
                            Code.W511_LABEL_AS_PERMISSION,
                            f"permit '{rid.value}' allows because the run is labelled {labels}",
                            c.span,
                            "run labels only grow, from anything that enters the run: permit on "
                            "the action's own evidence, such as labels(args.x)",
                        )
                    )
        oc = entry.one("on error")
        if oc is not None and oc.outcome.kind == "ignore":
            out.append(
                warning(
                    Code.W507_FAIL_OPEN,
                    f"rule '{rid.value}' fails open on errors",
                    oc.span,
                    "errors in this rule will be ignored; each one is counted in decisions",
                )
            )

    forbids = [
        r
        for r in low.rules
        if r.kind in (RuleKind.FORBID, RuleKind.HALT) and r.mode is Mode.ENFORCE and _unconditional(r)
    ]
    shadow_candidates = _CoverIndex(forbids)
    for r in low.rules:
        if r.kind is not RuleKind.PERMIT or r.mode is not Mode.ENFORCE:
            continue
        for f in shadow_candidates.candidates(r.selector):
            if _covers(f.selector, r.selector):
                entry = entries[r.id]
                out.append(
                    warning(
                        Code.W502_PERMIT_SHADOWED,
                        f"permit '{r.id}' can never allow anything: {f.kind.value} '{f.id}' always applies",
                        entry.rule.id.span,
                        f"narrow '{f.id}' or remove '{r.id}'",
                    )
                )
                break

    # Only unconditional, enforced org/global budgets can make another budget unreachable.
    wide: dict[str, list[ir.Budget]] = {}
    for other in low.budgets:
        # a `global by args.A` budget is one counter per value of A: it bounds no other budget
        wide_scope = other.scope in (Scope.ORG, Scope.GLOBAL) and other.by_arg is None
        if wide_scope and not other.conditions and other.mode is not Mode.SHADOW:
            wide.setdefault(other.unit, []).append(other)
    for b in low.budgets:
        if b.limit_micros <= 0 or (b.scope in (Scope.ORG, Scope.GLOBAL) and b.by_arg is None):
            continue
        for other in wide.get(b.unit, ()):
            same_window = (other.calendar, other.rolling_seconds) == (b.calendar, b.rolling_seconds)
            if same_window and other.limit_micros <= b.limit_micros and _covers(other.selector, b.selector):
                entry = entries[b.id]
                out.append(
                    warning(
                        Code.W503_BUDGET_NEVER_TRIPS,
                        f"budget '{b.id}' can never trip: '{other.id}' allows less over the same window",
                        entry.rule.id.span,
                        f"lower '{b.id}' below {other.limit_micros / 1e6:g} {b.unit} or remove it",
                    )
                )
                break

    for r in low.rules:
        gate = r.approval
        if gate is None:
            continue
        size = len(set(gate.members))
        if size < gate.quorum:
            entry = entries[r.id]
            ap = entry.one("approvers")
            out.append(
                warning(
                    Code.W504_QUORUM_UNREACHABLE,
                    f"approval '{r.id}' needs {gate.quorum} approvers but group '{gate.group}' has {size}",
                    ap.span if ap is not None else entry.rule.id.span,
                    "add members to the group or lower the quorum",
                )
            )

    # A spend tripwire is counted at settlement, after the action: only the stop a halt sets
    # outlives it; any other 'then' is reported in that settlement and changes no decision.
    for tw in low.tripwires:
        if tw.trigger is TriggerKind.VELOCITY and tw.outcome is not Outcome.HALT and tw.mode is Mode.ENFORCE:
            entry = entries[tw.id]
            then = entry.one("then")
            out.append(
                warning(
                    Code.W512_SETTLED_TRIP_NO_EFFECT,
                    f"tripwire '{tw.id}' trips at settlement, after the spend: "
                    f"'then {tw.outcome.value.replace('_', ' ')}' changes no decision",
                    then.span if then is not None else entry.rule.id.span,
                    "write 'then halt agent' (or another scope) to stop what follows, or gate before "
                    "the money moves with a budget: 'amount args.x' and 'on exceed require approval'",
                )
            )

    mentioned: set[str] = set()
    any_call = False
    selectors = (
        [r.selector for r in low.rules] + [b.selector for b in low.budgets] + [x.selector for x in low.rates]
    )
    for sel in selectors:
        if sel.kind in (None, ActionKind.CALL):
            if sel.target.any:
                any_call = any_call or sel.kind is ActionKind.CALL or sel.kind is None
            mentioned |= sel.target.names
    for mark in low.marks.values():
        mentioned |= mark.target.names
    if not any_call:
        for name, tool in sym.tools.items():
            if name not in mentioned:
                out.append(
                    warning(
                        Code.W505_UNUSED_TOOL,
                        f"no rule mentions tool '{name}'",
                        tool.name.span,
                        "it is denied by default; permit it or remove the declaration",
                    )
                )
    _ = FailMode  # fail modes are reported above by clause
    return out
