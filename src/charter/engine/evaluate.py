"""Stateless evaluation: match rules for a request, evaluate conditions, combine by precedence."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from charter.cel.limits import DECISION_COST, Budget
from charter.engine.decision import Failure, RuleHit
from charter.engine.policy import (
    CompiledPolicy,
    Condition,
    Rule,
    SequenceCondition,
    ToolInfo,
)
from charter.enums import ActionKind, FailMode, Mode, Outcome, RuleKind

_FAIL_OUTCOME = {
    FailMode.DENY: Outcome.DENY,
    FailMode.HALT: Outcome.HALT,
    FailMode.ESCALATE: Outcome.ESCALATE,
    FailMode.REQUIRE_APPROVAL: Outcome.REQUIRE_APPROVAL,
}


class EvalError(Exception):
    """A condition could not be evaluated (carries the message recorded in the decision)."""


@dataclass(slots=True)
class RunView:
    """The run state a decision sees: step count, provenance labels, last step/time of each mark."""

    steps: int = 0
    labels: frozenset[str] = frozenset()
    marks: Mapping[str, tuple[int, float]] = field(default_factory=dict)


class View:
    """A request prepared for evaluation: resolved actor, target tool and (lazily) CEL activation."""

    __slots__ = (
        "_activation",
        "actor_id",
        "ancestors",
        "arg_labels",
        "args",
        "attributes",
        "chain",
        "cost",
        "declared",
        "human",
        "kind",
        "labels",
        "now",
        "req",
        "roles",
        "run",
        "signals",
        "target",
        "target_roles",
        "tool",
    )

    def __init__(
        self,
        actor_id: str,
        roles: frozenset[str],
        ancestors: tuple[str, ...],
        attributes: Mapping[str, Any],
        kind: ActionKind,
        target: str,
        tool: ToolInfo | None,
        args: Mapping[str, Any],
        labels: frozenset[str],
        arg_labels: Mapping[str, Sequence[str]],
        req: Any,
        cost: Mapping[str, float],
        signals: tuple[Mapping[str, Any], ...],
        chain: tuple[str, ...],
        human: str | None,
        now: float,
        run: RunView | None = None,
        target_roles: frozenset[str] = frozenset(),
        declared: Any = None,
    ):
        self.actor_id = actor_id
        self.roles = roles
        self.ancestors = ancestors
        self.attributes = attributes
        self.kind = kind
        self.target = target
        self.tool = tool
        self.args = args
        self.labels = labels
        self.arg_labels = arg_labels
        self.req = req
        self.cost = cost
        self.signals = signals
        self.chain = chain
        self.human = human
        self.now = now
        self.run = run
        self.target_roles = target_roles
        #: the declared agent, when the request adds nothing to its attributes (its activation is reused)
        self.declared = declared
        self._activation: dict[str, Any] | None = None

    def select(self, index: Any) -> Any:
        """The items of a compiled index (rules, budgets, rates...) whose selector covers this request."""
        return index.select(
            self.kind,
            self.target,
            self.actor_id,
            self.roles,
            self.ancestors,
            self.req.workflow,
            self.target_roles,
        )

    def copy(self) -> View:
        """A shallow copy without the cached activation."""
        v = View.__new__(View)
        for name in View.__slots__:
            setattr(v, name, getattr(self, name))
        v._activation = None
        return v

    def activation(self) -> dict[str, Any]:
        """The CEL activation; each root is built on first use (most conditions read two or three)."""
        act = self._activation
        if act is None:
            act = self._activation = Activation()
            act.view = self
        return act

    def full_activation(self) -> dict[str, Any]:
        """A plain dict with every root built (to extend with more names)."""
        act = self.activation()
        return {name: act[name] for name in ROOTS}

    def root(self, name: str) -> Any:
        """Build one root of the activation."""
        if name == "args":
            return self.args
        if name == "actor":
            return self.actor_dict()
        if name == "context":
            return self.context_dict()
        if name == "action":
            return {
                "kind": self.kind._value_,
                "target": self.target,
                "args": self.args,
                "labels": sorted(self.labels) if self.labels else [],
                "arg_labels": self._arg_labels(),
            }
        if name == "tool":
            return self.tool.activation if self.tool is not None else _unknown_tool(self.target)
        if name == "cost":
            return self.cost
        if name == "signals":
            return list(self.signals)
        if name == "run":
            run = self.run
            return {"steps": run.steps if run else 0, "labels": sorted(run.labels) if run else []}
        raise KeyError(name)

    def _arg_labels(self) -> dict[str, list[str]]:
        """Labels per argument: every argument the tool declares (none: []), then any other labelled."""
        out: dict[str, list[str]] = {a: [] for a in self.tool.args} if self.tool is not None else {}
        for k, v in self.arg_labels.items():
            out[k] = list(v)
        return out

    def actor_dict(self) -> Mapping[str, Any]:
        """The ``actor`` root of conditions."""
        if self.declared is not None and not self.chain and not self.human:
            return self.declared.activation  # type: ignore[no-any-return,unused-ignore]
        actor = dict(self.attributes)
        actor["id"] = self.actor_id
        actor["roles"] = sorted(self.roles)
        actor["chain"] = list(self.chain)
        actor["depth"] = len(self.chain)
        actor["human"] = self.human or ""
        return actor

    def context_dict(self) -> dict[str, Any]:
        """The ``context`` root of conditions (missing ids read as empty strings)."""
        req = self.req
        context = {
            "workflow": req.workflow or "",
            "run": req.run or "",
            "tenant": req.tenant or "",
            "env": req.env or "",
            "time": req.time,
        }
        if req.context_extra:
            context.update(req.context_extra)
        return context


ROOTS = frozenset({"actor", "action", "args", "tool", "context", "cost", "signals", "run"})


class Activation(dict[str, Any]):
    """A CEL activation whose roots are built when a condition first reads them.

    INVARIANT: reads by key (the compiled fast path) and membership tests (the exact path) both
    see every root; a root, once built, is an ordinary entry.
    """

    __slots__ = ("_budget", "view")

    view: View

    @property
    def cel_budget(self) -> Budget:
        """The decision's CEL work, shared by its conditions (made when a condition first needs it)."""
        try:
            return self._budget
        except AttributeError:
            self._budget: Budget = Budget(DECISION_COST)
            return self._budget

    def __missing__(self, key: str) -> Any:
        value = self.view.root(key)
        self[key] = value
        return value

    def __contains__(self, key: object) -> bool:
        return key in ROOTS or dict.__contains__(self, key)

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override,unused-ignore]
        """Like dict.get, building the root if needed."""
        try:
            return self[key]
        except KeyError:
            return default


def _unknown_tool(target: str) -> dict[str, Any]:
    return {"name": target, "category": "", "tags": []}


def check_condition(cond: Condition, act: Mapping[str, Any]) -> bool:
    """True/False for one condition; raises EvalError when it does not give a boolean."""
    try:
        value = cond.fn(act)
    except RecursionError:
        raise EvalError(f"condition '{cond.text}' is too deep to evaluate") from None
    if value is True or value is False:
        return (not value) if cond.negate else value
    msg = getattr(value, "message", None)
    if msg is None:
        msg = f"gave {type(value).__name__}, not true or false"
    raise EvalError(f"condition '{cond.text}': {msg}")


def check_conditions(conds: Sequence[Condition], view: View) -> bool:
    """All conditions hold. False beats an error (commutative AND); an error otherwise raises."""
    if not conds:
        return True
    act = view.activation()
    first_error: EvalError | None = None
    for cond in conds:
        try:
            if not check_condition(cond, act):
                return False
        except EvalError as exc:
            first_error = first_error or exc
    if first_error is not None:
        raise first_error
    return True


def check_sequence(seq: SequenceCondition, view: View) -> bool:
    """``after`` holds when the mark was set within the window; ``before`` when it never was."""
    run = view.run
    seen = run.marks.get(seq.mark) if run is not None else None
    if (
        seen is None
        and seq.labels
        and run is not None
        and seq.within_steps is None
        and seq.within_seconds is None
        and not seq.labels.isdisjoint(run.labels)
    ):
        return seq.after
    if not seq.after:
        return seen is None
    if seen is None:
        return False
    step, at = seen
    if seq.within_steps is not None and run is not None and run.steps - step >= seq.within_steps:
        return False
    return not (seq.within_seconds is not None and view.now - at > seq.within_seconds)


def rule_holds(rule: Rule, view: View) -> bool:
    """Whether a selected rule's conditions, signals and sequences all hold (may raise EvalError).

    Commutative: any part that is false makes the rule not apply, even if another part failed.
    """
    for seq in rule.sequences:
        if not check_sequence(seq, view):
            return False
    first_error: EvalError | None = None
    try:
        if not check_conditions(rule.conditions, view):
            return False
    except EvalError as exc:
        first_error = exc
    if rule.signals:
        matched = False
        signal_error: EvalError | None = None
        for sc in rule.signals:
            for sig in view.signals:
                if sig["kind"] != sc.kind:
                    continue
                if sc.where is None:
                    matched = True
                    break
                act = view.full_activation()
                act.update(sig)
                try:
                    if check_condition(sc.where, act):
                        matched = True
                        break
                except EvalError as exc:
                    signal_error = signal_error or exc
            if matched:
                break
        if not matched:
            if signal_error is None:
                return False
            first_error = first_error or signal_error
    if first_error is not None:
        raise first_error
    return True


@dataclass(slots=True)
class Verdict:
    """The stateless part of a decision."""

    outcome: Outcome
    deciding: list[RuleHit]
    shadow: list[RuleHit]
    failures: list[Failure]
    default_deny: bool
    approvals: list[Rule]
    escalations: list[Rule]
    halts: list[Rule]
    #: (deciding, shadow, failures) as tuples, set when a plan memoises the verdict (for the lane)
    frozen: tuple[tuple[RuleHit, ...], tuple[RuleHit, ...], tuple[Failure, ...]] | None = None


def _hit(rule: Rule, effect: Outcome, shadow: bool = False, err: str | None = None) -> RuleHit:
    return RuleHit(
        rule.id,
        rule.kind.value,
        effect,
        rule.reason,
        str(rule.source) if rule.source else None,
        shadow,
        err,
    )


def evaluate(policy: CompiledPolicy, view: View, candidates: Sequence[Rule]) -> Verdict:
    """Evaluate the candidate rules (already selected by the index) and combine them.

    The outcome is the strictest contribution of the enforced rules that hold (or fail), with
    default deny when no permit holds. Shadow rules are evaluated and recorded, never combined.
    """
    held: list[Rule] = []
    errors: list[tuple[Outcome, Rule, str]] = []
    shadow: list[RuleHit] = []
    failures: list[Failure] = []
    act = None
    for rule in candidates:
        try:
            if rule.signals or rule.sequences:
                holds = rule_holds(rule, view)
            elif rule.conditions:
                # inline of check_conditions for the common case (conditions only)
                if act is None:
                    act = view.activation()
                holds = True
                first_error = None
                for cond in rule.conditions:
                    value = cond.fn(act)
                    if value is True or value is False:
                        if value is cond.negate:
                            holds = False
                            break
                    else:
                        try:
                            check_condition(cond, act)
                        except EvalError as exc:
                            first_error = first_error or exc
                if holds and first_error is not None:
                    raise first_error
            else:
                holds = True
        except EvalError as exc:
            took = _FAIL_OUTCOME.get(rule.fail)
            if rule.mode is Mode.SHADOW:
                shadow.append(_hit(rule, took or rule.effect, shadow=True, err=str(exc)))
                continue
            failures.append(
                Failure(f"rule {rule.id}", str(exc), took.value if took else "ignore (fail-open)")
            )
            if took is not None:
                errors.append((took, rule, str(exc)))
            continue
        if not holds:
            continue
        if rule.mode is Mode.SHADOW:
            shadow.append(rule.hit)
            continue
        held.append(rule)
    return combine(view, held, errors, shadow, failures)


def combine(
    view: View,
    held: list[Rule],
    errors: list[tuple[Outcome, Rule, str]],
    shadow: list[RuleHit],
    failures: list[Failure],
) -> Verdict:
    """The verdict of the enforced rules that held and the rules that failed (with the outcome
    their failure mode gives): the strictest wins; default deny when no permit holds."""
    permitted = False
    outcome = Outcome.ALLOW
    top = 0
    for rule in held:
        eff = rule.effect
        if eff is Outcome.ALLOW:
            permitted = True
        elif eff.rank > top:
            top, outcome = eff.rank, eff
    for took, _, _ in errors:
        if took.rank > top:
            top, outcome = took.rank, took
    if view.kind is ActionKind.CALL and view.tool is None:
        errors.append((Outcome.DENY, _UNKNOWN_TOOL, ""))
        if Outcome.DENY.rank > top:
            top, outcome = Outcome.DENY.rank, Outcome.DENY
    if not permitted and top < _DENY_RANK:
        return Verdict(Outcome.DENY, [], _sorted(shadow), failures, True, [], [], [])
    deciding: list[RuleHit] = []
    approvals: list[Rule] = []
    escalations: list[Rule] = []
    halts: list[Rule] = []
    for rule in held:
        if rule.effect is outcome:
            deciding.append(rule.hit)
            kind = rule.kind
            if kind is RuleKind.APPROVAL:
                approvals.append(rule)
            elif kind is RuleKind.ESCALATE:
                escalations.append(rule)
            elif kind is RuleKind.HALT:
                halts.append(rule)
    for eff, rule, err in errors:
        if eff is outcome:
            deciding.append(rule.hit if rule is _UNKNOWN_TOOL else _hit(rule, eff, err=err))
    if len(deciding) > 1:
        deciding.sort(key=_by_id)
    return Verdict(outcome, deciding, _sorted(shadow), failures, False, approvals, escalations, halts)


_DENY_RANK = Outcome.DENY.rank


def _by_id(h: RuleHit) -> str:
    return h.id


def _sorted(hits: list[RuleHit]) -> list[RuleHit]:
    if len(hits) > 1:
        hits.sort(key=_by_id)
    return hits


def _unknown_tool_rule() -> Rule:
    from charter.engine.policy import Selector

    return Rule(
        id="charter.unknown-tool",
        kind=RuleKind.FORBID,
        effect=Outcome.DENY,
        reason="Tools the policy does not declare are denied.",
        mode=Mode.ENFORCE,
        fail=FailMode.DENY,
        selector=Selector(),
    )


_UNKNOWN_TOOL = _unknown_tool_rule()
