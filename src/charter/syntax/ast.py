"""The typed, frozen AST of a policy file (pydantic); every node carries a span that equality ignores."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from charter.diagnostics import Span
from charter.enums import ActionKind, Calendar, MaskKind, Mode, RuleKind, Scope, TriggerKind

_NOWHERE = Span("<none>", 1, 1, 1, 1)
_LINE_BREAK = re.compile(r"[ \t\r]*\n[ \t]*")


def normalise_condition(text: str) -> str:
    """A condition's text with the whitespace around its line breaks collapsed.

    CEL strings cannot hold a raw newline, so this never changes what a condition means. AST
    equality compares conditions in this form, so re-indenting a multi-line condition (as the
    formatter does) keeps the AST equal.
    """
    return _LINE_BREAK.sub("\n", text.strip())


class Node(BaseModel):
    """Base of every AST node: frozen, typed, with a source span excluded from equality."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    span: Span = Field(default=_NOWHERE, repr=False, exclude=True)

    def _key(self) -> tuple[Any, ...]:
        # Every span field (span, text_span, where_span) stays out of equality.
        fields = type(self).model_fields
        return tuple(getattr(self, f) for f in fields if f != "span" and not f.endswith("_span"))

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._key() == other._key()  # type: ignore[attr-defined,unused-ignore]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._key()))


class Name(Node):
    """An identifier as written, with its span."""

    value: str


class Duration(Node):
    """A duration literal such as ``2m`` or ``1h30m``."""

    text: str
    seconds: float


class TypeRef(Node):
    """A declared type: ``int``, ``string``, ``list of string``..."""

    name: str
    element: TypeRef | None = None


# ---- header and declarations ----------------------------------------------------------------


class Extends(Node):
    """``extends PARENT for agent|workflow NAME``: this module narrows PARENT for one subject."""

    parent: Name
    subject_kind: Literal["agent", "workflow"]
    subject: Name


class Header(Node):
    """``policy NAME [extends ...]``."""

    name: Name
    extends: Extends | None = None


class Include(Node):
    """``include "path"``: another file of the same policy."""

    path: str


class AgentsFrom(Node):
    """``agents from "inventory.yaml"``: agents and groups from an inventory file."""

    path: str


class Units(Node):
    """``units USD, tokens``."""

    names: tuple[Name, ...]


class Mask(Node):
    """``mask args.password, args.card.number`` or ``hash args.account``: argument paths edited in
    exported decision logs."""

    kind: MaskKind
    paths: tuple[Name, ...]


class Roles(Node):
    """``roles research, risk``."""

    names: tuple[Name, ...]


class Attribute(Node):
    """``attribute clearance: int``: an actor attribute conditions may read."""

    name: Name
    type: TypeRef


class ContextField(Node):
    """``context env: string``: a request context field conditions may read."""

    name: Name
    type: TypeRef


Value = str | Decimal | bool | tuple[Any, ...]


class AgentAttr(Node):
    """One attribute value of a declared agent."""

    name: Name
    value: Any


class Agent(Node):
    """``agent NAME { role ...  parent ...  attr value }``."""

    name: Name
    roles: tuple[Name, ...] = ()
    parent: Name | None = None
    attrs: tuple[AgentAttr, ...] = ()


class ToolArg(Node):
    """``arg NAME: type [secret]``."""

    name: Name
    type: TypeRef
    secret: bool = False


class ToolResult(Node):
    """``result NAME: type [secret]``: a field of the tool's result that run history keeps."""

    name: Name
    type: TypeRef
    secret: bool = False


class Tool(Node):
    """``tool NAME { category ...  tags ...  arg ...  result ... }``."""

    name: Name
    category: Name | None = None
    tags: tuple[Name, ...] = ()
    args: tuple[ToolArg, ...] = ()
    results: tuple[ToolResult, ...] = ()


class Group(Node):
    """``group NAME { members a, b }``: approvers or operators."""

    name: Name
    members: tuple[Name, ...]


class Signal(Node):
    """``signal KIND { from SOURCE  [clears] }``."""

    name: Name
    source: Name | None = None
    clears: bool = False


class Rank(Node):
    """``rank compliance > risk > research``: which signal sources outrank which."""

    names: tuple[Name, ...]


class Stops(Node):
    """``stops { operators GROUP  resume requires N }``."""

    operators: Name | None = None
    resume_requires: int | None = None


class EscalationStep(Node):
    """``to TARGET [for DURATION]``."""

    target: Name
    timeout: Duration | None = None


class Escalation(Node):
    """``escalation NAME { to ... for ...  finally OUTCOME }``."""

    name: Name
    steps: tuple[EscalationStep, ...]
    final: str | None = None


# ---- named constants and named conditions ---------------------------------------------------


class ConstDecl(Node):
    """``const NAME [: TYPE] = VALUE`` or ``const NAME: TYPE from "FILE.yaml"``."""

    name: Name
    type: TypeRef | None = None
    #: the literal value (None when it comes from a file)
    value: Any = None
    #: the file the value is read from, relative to the policy file (None for a literal)
    file: str | None = None


class CondParam(Node):
    """``NAME: TYPE``, one parameter of a named condition."""

    name: Name
    type: TypeRef


class ConditionDecl(Node):
    """``condition NAME(PARAM: TYPE, ...) = CEL``; ``body_span`` locates the expression itself."""

    name: Name
    params: tuple[CondParam, ...]
    body: str
    body_span: Span = Field(default=_NOWHERE, repr=False, exclude=True)

    def _key(self) -> tuple[Any, ...]:
        return (self.name, self.params, normalise_condition(self.body))


# ---- selectors --------------------------------------------------------------------------------


class ActorSel(Node):
    """``actor any | role a, b | agent x, y``."""

    by: Literal["any", "role", "agent"]
    names: tuple[Name, ...] = ()


class TargetSel(Node):
    """What an action is aimed at: ``any``, names, ``tagged``, ``category`` or ``role``."""

    by: Literal["any", "name", "tag", "category", "role"]
    names: tuple[Name, ...] = ()

    def tool_names(
        self, tags: Mapping[str, Sequence[str]], categories: Mapping[str, Sequence[str]]
    ) -> list[str]:
        """The tool names this selector names, tags and categories expanded (roles and ``any``: none)."""
        if self.by == "name":
            return [n.value for n in self.names]
        table = tags if self.by == "tag" else categories if self.by == "category" else None
        return [] if table is None else [t for n in self.names for t in table.get(n.value, ())]


class ActionSel(Node):
    """``action any | call T | delegate [T] | model [T] | message [T]``."""

    kind: ActionKind | None  # None: any action
    target: TargetSel | None = None


class EventSel(Node):
    """An earlier event in the run: ``call T``, ``delegate [T]`` or ``labelled L``."""

    by: Literal["call", "delegate", "labelled"]
    target: TargetSel | None = None
    labels: tuple[Name, ...] = ()


class Within(Node):
    """``within N steps`` or ``within DURATION``."""

    steps: int | None = None
    duration: Duration | None = None


class OutcomeSpec(Node):
    """A response: allow, deny, ignore, halt [scope], escalate, require approval [from G], label L [on F]."""

    kind: Literal["allow", "deny", "ignore", "halt", "escalate", "require_approval", "label"]
    scope: Scope | None = None
    group: Name | None = None
    labels: tuple[Name, ...] = ()
    #: ``label L on F, G``: the result fields the labels are given to (empty: the whole result)
    fields: tuple[Name, ...] = ()


class Trigger(Node):
    """A runaway tripwire's trigger."""

    kind: TriggerKind
    threshold: Decimal
    unit: Name | None = None
    within: Duration | None = None


class Window(Node):
    """``per day`` (calendar) or ``per 24h`` (rolling)."""

    calendar: Calendar | None = None
    rolling: Duration | None = None


# ---- clauses ----------------------------------------------------------------------------------


class ActorClause(Node):
    """``actor ...``."""

    clause: Literal["actor"] = "actor"
    selector: ActorSel


class ActionClause(Node):
    """``action ...``."""

    clause: Literal["action"] = "action"
    selector: ActionSel


class ConditionClause(Node):
    """``when CEL`` or ``unless CEL``; ``text_span`` locates the expression itself."""

    clause: Literal["when", "unless"]
    text: str
    text_span: Span = Field(default=_NOWHERE, repr=False, exclude=True)

    def _key(self) -> tuple[Any, ...]:
        return (self.clause, normalise_condition(self.text))


class AmountClause(Node):
    """``amount CEL``: what a budget or a spend tripwire counts, from the request (not ``cost``)."""

    clause: Literal["amount"] = "amount"
    text: str
    text_span: Span = Field(default=_NOWHERE, repr=False, exclude=True)

    def _key(self) -> tuple[Any, ...]:
        return (self.clause, normalise_condition(self.text))


class ParamClause(Node):
    """``param NAME: TYPE [= VALUE]``: one typed parameter of a grant kind (no value: required)."""

    clause: Literal["param"] = "param"
    name: Name
    type: TypeRef
    #: the default value (None: the parameter is required)
    default: Any = None


class GrantCelClause(Node):
    """``covers CEL``, ``bound CEL`` or ``uses CEL`` of a grant kind."""

    clause: Literal["covers", "bound", "uses"]
    text: str
    text_span: Span = Field(default=_NOWHERE, repr=False, exclude=True)

    def _key(self) -> tuple[Any, ...]:
        return (self.clause, normalise_condition(self.text))


class SignalClause(Node):
    """``signal KIND [where CEL]``."""

    clause: Literal["signal"] = "signal"
    kind: Name
    where: str | None = None
    where_span: Span = Field(default=_NOWHERE, repr=False, exclude=True)

    def _key(self) -> tuple[Any, ...]:
        where = normalise_condition(self.where) if self.where is not None else None
        return (self.clause, self.kind, where)


class SequenceClause(Node):
    """``after EVENT [within ...] [where CEL]`` or ``before EVENT [where CEL]``."""

    clause: Literal["after", "before"]
    event: EventSel
    within: Within | None = None
    where: str | None = None
    where_span: Span = Field(default=_NOWHERE, repr=False, exclude=True)

    def _key(self) -> tuple[Any, ...]:
        where = normalise_condition(self.where) if self.where is not None else None
        return (self.clause, self.event, self.within, where)


class ReasonClause(Node):
    """``reason "..."``."""

    clause: Literal["reason"] = "reason"
    text: str


class ModeClause(Node):
    """``mode enforce|shadow``."""

    clause: Literal["mode"] = "mode"
    mode: Mode


class OutcomeClause(Node):
    """``on error|on timeout|on exceed|then OUTCOME``."""

    clause: Literal["on error", "on timeout", "on exceed", "then"]
    outcome: OutcomeSpec


class NameClause(Node):
    """``approvers G``, ``to T``, ``severity S``: one name."""

    clause: Literal["approvers", "to", "severity"]
    name: Name


class NumberClause(Node):
    """``quorum N``."""

    clause: Literal["quorum"] = "quorum"
    value: int


class SwitchClause(Node):
    """``separation of duties on|off``."""

    clause: Literal["separation of duties"] = "separation of duties"
    on: bool


class DurationClause(Node):
    """``expires after DURATION`` (time to reach quorum) or ``redeem within DURATION`` (time to use a
    granted approval)."""

    clause: Literal["expires after", "redeem within"] = "expires after"
    duration: Duration


class ScopeClause(Node):
    """``scope S [by args.A]`` (what a budget or rate counts per) or ``stop S`` (what a halt stops)."""

    clause: Literal["scope", "stop"]
    scope: Scope
    #: ``by args.A``: the path as written (checked by the compiler), counted per its value too
    by: Name | None = None


class LimitClause(Node):
    """``limit AMOUNT [UNIT] [per WINDOW]``."""

    clause: Literal["limit"] = "limit"
    amount: Decimal
    unit: Name | None = None
    window: Window | None = None


class TimezoneClause(Node):
    """``timezone "Europe/Paris"``."""

    clause: Literal["timezone"] = "timezone"
    tz: str


class TriggerClause(Node):
    """``trigger ...``."""

    clause: Literal["trigger"] = "trigger"
    trigger: Trigger


Clause = (
    ActorClause
    | ActionClause
    | ConditionClause
    | SignalClause
    | SequenceClause
    | ReasonClause
    | ModeClause
    | OutcomeClause
    | NameClause
    | NumberClause
    | SwitchClause
    | DurationClause
    | ScopeClause
    | LimitClause
    | TimezoneClause
    | TriggerClause
    | AmountClause
    | ParamClause
    | GrantCelClause
)


class Rule(Node):
    """``KIND ID { clauses }``; clauses keep their source order."""

    kind: RuleKind
    id: Name
    clauses: tuple[Clause, ...]


class GrantDecl(Node):
    """``grant KIND { action ...  param ...  covers ...  bound ...  uses ...  reason ... }``."""

    name: Name
    clauses: tuple[Clause, ...]


Item = (
    Header
    | Include
    | AgentsFrom
    | Units
    | Roles
    | Attribute
    | ContextField
    | Agent
    | Tool
    | Group
    | Signal
    | Rank
    | Stops
    | Escalation
    | Mask
    | Rule
    | ConstDecl
    | ConditionDecl
    | GrantDecl
)


class Comment(Node):
    """A ``#`` comment, kept for the formatter."""

    text: str


class Module(Node):
    """One parsed policy file."""

    path: str
    items: tuple[Item, ...]
    comments: tuple[Comment, ...] = Field(default=(), exclude=True)

    def _key(self) -> tuple[Any, ...]:
        # INVARIANT: equality of modules is equality of their items (path and comments aside),
        # so that print -> parse round trips compare equal.
        return (self.items,)
