"""The compiled, immutable policy the engine runs: rules, boundaries, catalog and index (no syntax)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from charter.approvals.gates import DEFAULT_REDEEM_S
from charter.enums import (
    ActionKind,
    Calendar,
    FailMode,
    HitKind,
    MaskKind,
    Mode,
    Outcome,
    RuleKind,
    Scope,
    TriggerKind,
)

#: A compiled condition: activation -> value (True/False, or an error value).
CondFn = Callable[[Mapping[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class Source:
    """Where a rule or boundary was written (for decisions and traces)."""

    path: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Condition:
    """One ``when`` (negate False) or ``unless`` (negate True) condition."""

    text: str
    negate: bool
    fn: CondFn
    explain: Callable[[Mapping[str, Any]], list[tuple[str, Any]]] | None = None
    references: frozenset[str] = frozenset()
    #: the checked CEL program (charter.cel's ``Compiled``: its AST and declarations), read by
    #: charter.analysis to encode the condition for a solver; None for hand-built conditions
    checked: Any = field(default=None, compare=False, repr=False)
    #: it reads the run's history (``run.steps``, ``run.labels``): unknown without ``context.run``
    reads_history: bool = field(default=False, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        history = any(r == "run" or r.startswith(("run.", "history")) for r in self.references)
        object.__setattr__(self, "reads_history", history)


@dataclass(frozen=True, slots=True)
class SignalCondition:
    """``signal KIND [where CEL]``: holds when an effective (unsuppressed) signal of KIND matches."""

    kind: str
    where: Condition | None = None


@dataclass(frozen=True, slots=True)
class SequenceCondition:
    """``after EVENT [within ...]`` (after=True) or ``before EVENT`` (after=False), via a run mark."""

    mark: str
    after: bool
    within_steps: int | None = None
    within_seconds: float | None = None
    text: str = ""
    #: for ``after labelled L`` with no window: result labels already in the run also count
    labels: frozenset[str] = frozenset()
    #: ``where CEL``: the condition an earlier entry must meet, with ``earlier`` bound to it
    #: (docs/semantics.md, "History with conditions"); None: the event alone
    where: Condition | None = None
    #: the event's matcher (kind and target), for matching history entries
    event: EventMark | None = None
    #: the fields of ``earlier`` the ``where`` reads (only these are built for each entry it is
    #: checked against); None: it reads the entry whole (``size(earlier)``, a named condition
    #: given ``earlier``), so every field is built
    earlier_fields: frozenset[str] | None = None
    #: the cost units each entry checked charges the decision's CEL budget (like one step of a
    #: comprehension: the condition's size in nodes plus one), so a long search stays bounded
    step_cost: int = 1


@dataclass(frozen=True, slots=True)
class Target:
    """Which action targets a rule selects; tags and categories are expanded to tool names."""

    any: bool = True
    names: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()  # delegate to an agent holding one of these roles


@dataclass(frozen=True, slots=True)
class Selector:
    """Actor x action x target selector shared by every rule-like construct."""

    actor_any: bool = True
    actor_roles: frozenset[str] = frozenset()
    actor_agents: frozenset[str] = frozenset()
    kind: ActionKind | None = None
    target: Target = Target()
    #: extra scope from ``extends ... for agent|workflow X`` (narrowing modules)
    subject_agent: str | None = None
    subject_workflow: str | None = None


@dataclass(frozen=True, slots=True)
class ApprovalGate:
    """Obligation of a ``require approval`` rule."""

    group: str
    quorum: int = 1
    separation_of_duties: bool = True
    expires_seconds: float = 86400.0
    on_timeout: Outcome = Outcome.DENY
    members: tuple[str, ...] = ()
    #: ``redeem within``: how long a granted approval stays usable
    redeem_seconds: float = DEFAULT_REDEEM_S


@dataclass(frozen=True, slots=True)
class EscalationStep:
    """One step of an escalation chain."""

    target: str
    timeout_seconds: float | None


@dataclass(frozen=True, slots=True)
class EscalationPath:
    """Where an escalation goes: a chain of targets and a terminal fallback."""

    name: str
    steps: tuple[EscalationStep, ...]
    fallback: Outcome = Outcome.DENY
    severity: str = "medium"


@dataclass(frozen=True, slots=True)
class Rule:
    """A compiled permit / forbid / halt / escalate / require-approval rule."""

    id: str
    kind: RuleKind
    effect: Outcome
    reason: str
    mode: Mode
    fail: FailMode
    selector: Selector
    conditions: tuple[Condition, ...] = ()
    signals: tuple[SignalCondition, ...] = ()
    sequences: tuple[SequenceCondition, ...] = ()
    approval: ApprovalGate | None = None
    escalation: EscalationPath | None = None
    stop_scope: Scope | None = None
    source: Source | None = None
    order: int = 0
    #: the RuleHit this rule contributes when it holds (built once; decisions share it)
    hit: Any = field(default=None, compare=False, repr=False)
    #: it reads the run's history (a sequence, or a condition on ``run``): unknown without a run
    reads_history: bool = field(default=False, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        from charter.engine.decision import RuleHit
        from charter.enums import HitKind

        object.__setattr__(
            self,
            "hit",
            RuleHit(
                self.id,
                HitKind(self.kind.value),
                self.effect,
                self.reason,
                str(self.source) if self.source else None,
                self.mode is Mode.SHADOW,
            ),
        )
        history = bool(self.sequences) or any(c.reads_history for c in self.conditions)
        object.__setattr__(self, "reads_history", history)


@dataclass(frozen=True, slots=True)
class Budget:
    """A spend limit: amount per scope instance and window, in one unit."""

    kind: ClassVar[HitKind] = HitKind.BUDGET

    id: str
    reason: str
    scope: Scope
    unit: str
    limit_micros: int
    calendar: Calendar | None
    rolling_seconds: float | None
    timezone: str
    on_exceed: Outcome
    stop_scope: Scope | None
    selector: Selector
    conditions: tuple[Condition, ...] = ()
    mode: Mode = Mode.ENFORCE
    fail: FailMode = FailMode.DENY
    source: Source | None = None
    escalation: EscalationPath | None = None
    #: ``amount CEL``: the amount counted, from the request, instead of ``cost.<unit>``
    amount: Condition | None = None
    #: ``scope S by args.A``: counted per (scope instance, value of argument A) (semantics.md 7)
    by_arg: str | None = None


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``limit`` matching actions per scope instance in a rolling window."""

    kind: ClassVar[HitKind] = HitKind.RATE

    id: str
    reason: str
    scope: Scope
    limit: int
    window_seconds: float
    on_exceed: Outcome
    stop_scope: Scope | None
    selector: Selector
    conditions: tuple[Condition, ...] = ()
    mode: Mode = Mode.ENFORCE
    fail: FailMode = FailMode.DENY
    source: Source | None = None
    escalation: EscalationPath | None = None
    #: ``scope S by args.A``: counted per (scope instance, value of argument A) (semantics.md 7)
    by_arg: str | None = None


@dataclass(frozen=True, slots=True)
class Tripwire:
    """A runaway tripwire with its response."""

    kind: ClassVar[HitKind] = HitKind.TRIPWIRE

    id: str
    reason: str
    trigger: TriggerKind
    threshold: float
    window_seconds: float | None
    unit: str | None
    outcome: Outcome
    stop_scope: Scope | None
    escalation: EscalationPath | None
    selector: Selector
    conditions: tuple[Condition, ...] = ()
    mode: Mode = Mode.ENFORCE
    source: Source | None = None
    #: ``amount CEL`` (spend tripwires): the amount counted at settlement, instead of the cost
    amount: Condition | None = None


@dataclass(frozen=True, slots=True)
class ResultCheck:
    """A check after an action (``on result``): may halt, escalate or label the run's data."""

    kind: ClassVar[HitKind] = HitKind.RESULT

    id: str
    reason: str
    outcome: Outcome | None
    stop_scope: Scope | None
    labels: frozenset[str]
    escalation: EscalationPath | None
    selector: Selector
    conditions: tuple[Condition, ...] = ()
    mode: Mode = Mode.ENFORCE
    fail: FailMode = FailMode.DENY
    source: Source | None = None
    #: ``then label L on F``: the result fields (paths) the labels are given to; empty: the whole result
    fields: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class EventMark:
    """An event matcher used by sequence conditions; an action that matches sets the mark."""

    id: str
    kind: ActionKind | None
    target: Target
    labels: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class MaskRule:
    """``mask args.card.number``: the path below ``args`` (``("card", "number")``) and how it is edited."""

    path: tuple[str, ...]
    kind: MaskKind


@dataclass(frozen=True, slots=True)
class ToolInfo:
    """A declared tool."""

    name: str
    category: str | None
    tags: frozenset[str]
    args: Mapping[str, str]
    secret_args: frozenset[str]
    #: some argument is declared double/int, so JSON numbers are coerced to it
    coerce: bool = False
    #: ``result NAME: type``: the result fields history keeps, by name, as CEL types
    results: Mapping[str, Any] = field(default_factory=dict)
    #: ``result NAME: type secret``: kept for conditions, never written to the trace
    secret_results: frozenset[str] = frozenset()

    #: the ``tool`` root of conditions, built once
    activation: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "activation",
            {"name": self.name, "category": self.category or "", "tags": sorted(self.tags)},
        )


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """A declared agent: roles and attributes (inherited from its parent chain)."""

    id: str
    roles: frozenset[str]
    attributes: Mapping[str, Any]
    ancestors: tuple[str, ...] = ()
    #: the ``actor`` root of conditions when the request adds nothing (built once)
    activation: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        act = dict(self.attributes)
        act.update(id=self.id, roles=sorted(self.roles), chain=[], depth=0, human="")
        object.__setattr__(self, "activation", act)


@dataclass(frozen=True, slots=True)
class StopsConfig:
    """Who may stop and resume, and how many distinct operators a resume needs."""

    operators: str | None = None
    members: tuple[str, ...] = ()
    resume_requires: int = 2


@dataclass(frozen=True, slots=True)
class GrantParam:
    """One ``param NAME: TYPE [= VALUE]`` of a grant kind (``type``: the declared type's text)."""

    name: str
    type: str
    #: the scalar element type: string, int, double, bool or any
    scalar: str
    #: a list or set of ``scalar``
    many: bool
    required: bool
    default: Any = None


@dataclass(frozen=True, slots=True)
class GrantCheck:
    """A ``covers`` or ``bound`` condition of a grant kind, where it was written."""

    text: str
    fn: CondFn
    line: int


@dataclass(frozen=True, slots=True)
class GrantKind:
    """``grant KIND { ... }``: what a run grant of this kind may cover, its typed params and bounds."""

    name: str
    selector: Selector
    params: tuple[GrantParam, ...]
    covers: tuple[GrantCheck, ...]
    bounds: tuple[GrantCheck, ...]
    #: ``uses``: how many allowed actions one instance may cover (None: no limit)
    uses: CondFn | None
    reason: str = ""
    source: Source | None = None


@dataclass(frozen=True)
class CompiledPolicy:
    """An immutable, thread-safe compiled policy. ``revision`` is a content hash of its sources."""

    revision: str
    name: str
    files: tuple[str, ...]
    rules: tuple[Rule, ...]
    budgets: tuple[Budget, ...]
    rates: tuple[RateLimit, ...]
    tripwires: tuple[Tripwire, ...]
    result_checks: tuple[ResultCheck, ...]
    marks: tuple[EventMark, ...]
    tools: Mapping[str, ToolInfo]
    agents: Mapping[str, AgentInfo]
    groups: Mapping[str, tuple[str, ...]]
    units: frozenset[str]
    signal_clears: frozenset[str]
    signal_source_rank: Mapping[str, int]
    signal_kind_source: Mapping[str, str]
    escalations: Mapping[str, EscalationPath]
    stops: StopsConfig
    index: Any = field(default=None, compare=False, repr=False)
    uses_run_state: bool = False
    #: argument paths edited before a decision log leaves the process (``mask``/``hash``; charter.export)
    masks: tuple[MaskRule, ...] = ()
    #: run grant kinds by name (docs/language.md, "Run grants")
    grant_kinds: Mapping[str, GrantKind] = field(default_factory=dict)
    #: run history keeps detail (arguments at decision, declared result fields at settlement):
    #: a rule has ``after/before ... where``, or a tool declares ``result`` fields
    history_detail: bool = False

    @property
    def stateful(self) -> bool:
        """True when deciding needs the state store beyond stop checks."""
        return bool(self.budgets or self.rates or self.tripwires or self.marks or self.uses_run_state)
