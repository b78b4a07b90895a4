"""Stateless evaluation: conditions, sequences and signals of the selected rules, combined by precedence."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from charter.engine.decision import Failure, RuleHit
from charter.engine.policy import Condition, Rule, Selector, SequenceCondition
from charter.engine.runlabels import latest_arrival
from charter.engine.view import View
from charter.enums import ActionKind, FailMode, HitKind, Mode, Outcome, RuleKind
from charter.errors import Error

#: The message of a condition on a run's history asked about a request that names no run.
NO_RUN = (
    "the request names no context.run, so the run's history is unknown "
    "(a rule that reads history fails by its 'on error', deny by default)"
)


class ConditionError(Error):
    """A condition could not be evaluated (carries the message recorded in the decision)."""


def check_condition(cond: Condition, act: Mapping[str, Any]) -> bool:
    """True/False for one condition; raises ConditionError when it does not give a boolean."""
    try:
        value = cond.fn(act)
    except RecursionError:
        raise ConditionError(f"condition '{cond.text}' is too deep to evaluate") from None
    if value is True or value is False:
        return (not value) if cond.negate else value
    raise condition_error(cond, value)


def condition_error(cond: Condition, value: Any) -> ConditionError:
    """The error of a condition that gave ``value``, not true or false (an error value's message)."""
    msg = getattr(value, "message", None)
    if msg is None:
        msg = f"gave {type(value).__name__}, not true or false"
    return ConditionError(f"condition '{cond.text}': {msg}")


def spend_amount(expr: Condition, view: View) -> float:
    """The amount an ``amount CEL`` expression gives for this request (budgets, spend tripwires).

    Raises ConditionError unless it is a finite number of at least zero (a negative amount would
    refund a budget; NaN or infinity would break it): the boundary then fails closed.
    """
    if expr.reads_history and view.run is None:
        raise ConditionError(f"amount '{expr.text}': {NO_RUN}")
    try:
        value = expr.fn(view.activation())
    except RecursionError:
        raise ConditionError(f"amount '{expr.text}' is too deep to evaluate") from None
    kind = type(value)
    if kind is not int and kind is not float:
        msg = getattr(value, "message", None) or f"gave {kind.__name__}, not a number"
        raise ConditionError(f"amount '{expr.text}': {msg}")
    if value != value or value in (float("inf"), float("-inf")):
        raise ConditionError(f"amount '{expr.text}': {value} is not a finite number")
    if value < 0:
        raise ConditionError(f"amount '{expr.text}': {value} is negative")
    return float(value)


def check_conditions(conds: Sequence[Condition], view: View) -> bool:
    """All conditions hold. False beats an error (commutative AND); an error otherwise raises.

    A condition on the run's history is an error when the request names no run (fail closed).
    """
    if not conds:
        return True
    act = view.activation()
    first_error: ConditionError | None = None
    for cond in conds:
        try:
            if cond.reads_history and view.run is None:
                raise ConditionError(f"condition '{cond.text}': {NO_RUN}")
            if not check_condition(cond, act):
                return False
        except ConditionError as exc:
            first_error = first_error or exc
    if first_error is not None:
        raise first_error
    return True


def check_sequence(seq: SequenceCondition, view: View) -> bool:
    """``after`` holds when the event happened within the window; ``before`` when it never did.

    A ``labelled`` event is the arrival of one of its labels in the run, by the one rule of
    docs/semantics.md 8.1 (engine/runlabels.py): present in ``run.labels`` for the unwindowed
    clauses, at the step and time of its latest arrival for a window.
    """
    if seq.where is not None:
        from charter.engine.history import check_where  # (history imports this module)

        return check_where(seq, view)
    run = view.run
    if seq.labels:
        if run is None:
            return not seq.after
        if seq.within_steps is None and seq.within_seconds is None:
            held = not seq.labels.isdisjoint(run.labels) or seq.mark in run.marks
            return held if seq.after else not held
        seen = latest_arrival(run, seq.labels, seq.mark)
    else:
        seen = run.marks.get(seq.mark) if run is not None else None
    if not seq.after:
        return seen is None
    if seen is None:
        return False
    step, at = seen
    if seq.within_steps is not None and run is not None and run.steps - step >= seq.within_steps:
        return False
    return not (seq.within_seconds is not None and view.now - at > seq.within_seconds)


def rule_holds(rule: Rule, view: View) -> bool:
    """Whether a selected rule's conditions, signals and sequences all hold (may raise ConditionError).

    Commutative: any part that is false makes the rule not apply, even if another part failed.
    Sequences without a run are unknown: an error, unless another part is false.
    """
    first_error: ConditionError | None = None
    if rule.sequences:
        if view.run is None:
            first_error = ConditionError(f"'{_sequence_text(rule.sequences[0])}': {NO_RUN}")
        else:
            for seq in rule.sequences:
                # a `where` that failed on every matching entry is an error of this part only:
                # another part that is false still decides (commutative, as for conditions)
                try:
                    if not check_sequence(seq, view):
                        return False
                except ConditionError as exc:
                    first_error = first_error or exc
    try:
        if not check_conditions(rule.conditions, view):
            return False
    except ConditionError as exc:
        first_error = first_error or exc
    if rule.signals:
        matched = False
        signal_error: ConditionError | None = None
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
                except ConditionError as exc:
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


def _sequence_text(seq: SequenceCondition) -> str:
    return seq.text or f"{'after' if seq.after else 'before'} {seq.mark}"


class Verdict:
    """The stateless part of a decision: what the rules say, before any state is consulted.

    A value (plans memoise verdicts and share them between decisions): never change one. When
    no state is consulted the verdict is the decision's ruling (engine/step.py): the class
    attributes below are what the state would have added.
    """

    __slots__ = (
        "approvals",
        "deciding",
        "default_deny",
        "escalations",
        "failures",
        "halts",
        "outcome",
        "shadow",
    )

    boundaries: tuple[Any, ...] = ()
    hold_id: str | None = None
    recorded = False
    final = False
    replayed: dict[str, Any] | None = None
    request_digest = ""

    def __init__(
        self,
        outcome: Outcome,
        deciding: tuple[RuleHit, ...],
        shadow: tuple[RuleHit, ...],
        failures: tuple[Failure, ...],
        default_deny: bool,
        approvals: tuple[Rule, ...] = (),
        escalations: tuple[Rule, ...] = (),
        halts: tuple[Rule, ...] = (),
    ):
        self.outcome = outcome
        self.deciding = deciding
        self.shadow = shadow
        self.failures = failures
        self.default_deny = default_deny
        #: the deciding human gates, escalations and halts (their obligations and stops)
        self.approvals = approvals
        self.escalations = escalations
        self.halts = halts


def _hit(rule: Rule, effect: Outcome, shadow: bool = False, err: str | None = None) -> RuleHit:
    return RuleHit(
        rule.id,
        HitKind(rule.kind.value),
        effect,
        rule.reason,
        str(rule.source) if rule.source else None,
        shadow,
        err,
    )


def evaluate(view: View, candidates: Sequence[Rule]) -> Verdict:
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
            if rule.signals or rule.reads_history:
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
                        except ConditionError as exc:
                            first_error = first_error or exc
                if holds and first_error is not None:
                    raise first_error
            else:
                holds = True
        except ConditionError as exc:
            took = rule.fail.outcome
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
        errors.append((Outcome.DENY, UNKNOWN_TOOL, ""))
        if Outcome.DENY.rank > top:
            top, outcome = Outcome.DENY.rank, Outcome.DENY
    if not permitted and top < _DENY_RANK:
        return Verdict(Outcome.DENY, (), _sorted(shadow), tuple(failures), True)
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
            deciding.append(rule.hit if rule is UNKNOWN_TOOL else _hit(rule, eff, err=err))
            # a gate or an escalation whose condition failed into its own outcome keeps its
            # approvers or its chain (without them the caller could never get an answer)
            if rule.kind is RuleKind.APPROVAL and eff is Outcome.REQUIRE_APPROVAL:
                approvals.append(rule)
            elif rule.kind is RuleKind.ESCALATE and eff is Outcome.ESCALATE:
                escalations.append(rule)
    # INVARIANT: by id, like the deciding hits: the order of rules never changes a decision
    return Verdict(
        outcome,
        _sorted(deciding),
        _sorted(shadow),
        tuple(failures),
        False,
        tuple(sorted(approvals, key=_rule_id)),
        tuple(sorted(escalations, key=_rule_id)),
        tuple(sorted(halts, key=_rule_id)),
    )


_DENY_RANK = Outcome.DENY.rank


def _by_id(h: RuleHit) -> str:
    return h.id


def _rule_id(r: Rule) -> str:
    return r.id


def _sorted(hits: list[RuleHit]) -> tuple[RuleHit, ...]:
    if len(hits) > 1:
        hits.sort(key=_by_id)
    return tuple(hits)


#: The rule behind "tools the policy does not declare are denied".
UNKNOWN_TOOL = Rule(
    id="charter.unknown-tool",
    kind=RuleKind.FORBID,
    effect=Outcome.DENY,
    reason="Tools the policy does not declare are denied.",
    mode=Mode.ENFORCE,
    fail=FailMode.DENY,
    selector=Selector(),
)
