"""The request an orchestrator sends before an action: the pydantic model behind the published JSON Schema.

The model is the wire contract and the model tier of the one validator (engine/validate.py),
which adds the value rules a schema cannot state well (finite numbers everywhere, sizes, nesting).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictFloat,
    StringConstraints,
    field_validator,
)

from charter.enums import ActionKind
from charter.errors import RequestError
from charter.state.types import MAX_AMOUNT

#: Bounds on request size (a request is untrusted input).
MAX_ID = 256
MAX_ITEMS = 256
#: The longest trace id (a W3C trace id is 32 hex digits; other tracers' ids are longer).
MAX_TRACE_ID = 128


def id_rule(most: int = MAX_ID) -> str:
    """The identifier rule, worded for errors (docs/security.md, "Request limits")."""
    return (
        f"an identifier is 1 to {most} printable characters: no control, format, separator or "
        "bidi character (the space is the one allowed, not leading or trailing)"
    )


def id_ok(v: str, most: int = MAX_ID) -> bool:
    """Whether a text is a valid identifier (an exact ``str``; callers check the class).

    Why the rule: an id (actor, role, chain entry, human, target, label, call id, workflow,
    tenant, env, approval, idempotency key, trace id, signal source and kind) is compared by
    equality, kept in store keys and written to trace lines, CLI output and HTTP paths. A NUL, a
    newline or a bidi override (U+202E) would forge or hide text in an audit log; a zero-width or
    surrounding space would make two ids that look equal differ. ``str.isprintable`` refuses
    Unicode categories C* and Z* except the ASCII space, so after it the only whitespace is ' '.
    Free text (args values, attribute values, a signal's note) is not an id and keeps its rules.
    """
    return 0 < len(v) <= most and v.isprintable() and v[0] != " " and v[-1] != " "


def id_problem(v: Any, most: int = MAX_ID) -> str | None:
    """What is wrong with an identifier (None: nothing): the rule and the value, by its repr."""
    if v.__class__ is not str:
        return f"an identifier is a text (str), not {type(v).__name__}"
    if id_ok(v, most):
        return None
    return f"{id_rule(most)} (got {quoted(v)})"


def quoted(v: str) -> str:
    """A text for an error message: its first 40 characters by repr (bad characters visible)."""
    return f"{v[:40]!r}{'...' if len(v) > 40 else ''}"


def check_id(v: Any, where: str, error: type[RequestError] = RequestError, most: int = MAX_ID) -> str:
    """An identifier from any entry (request fields, ``begin_run``, settlements), or ``error``."""
    problem = id_problem(v, most)
    if problem is not None:
        raise error(f"{where}: {problem}", where)
    return v


def _id(v: Any) -> Any:
    """The model tier's identifier check (before pydantic's str: no coercion of bytes or a subclass)."""
    problem = id_problem(v)
    if problem is not None:
        raise ValueError(problem)
    return v


def _opt_id(v: Any) -> Any:
    return v if v is None else _id(v)


def _run_text(v: Any) -> Any:
    """``context.run``: a text or None, never coerced (the run id rule is validate.check_run_id's)."""
    if v is not None and v.__class__ is not str:
        raise ValueError(f"a run id is a text, not {type(v).__name__}")
    return v


def _trace_id(v: Any) -> Any:
    problem = None if v is None else id_problem(v, MAX_TRACE_ID)
    if problem is not None:
        raise ValueError(problem)
    return v


#: An identifier the request gives: an actor id, a target, a role, a chain entry, a label.
Name = Annotated[str, BeforeValidator(_id), StringConstraints(min_length=1, max_length=MAX_ID)]
#: An optional identifier (None: not given).
OptName = Annotated[str | None, BeforeValidator(_opt_id)]


class Actor(BaseModel):
    """Who asks: an agent id, its roles, attributes and the delegation chain that led here."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    id: Name = Field(description="Agent id")
    roles: tuple[Name, ...] = Field(default=(), max_length=MAX_ITEMS)
    attributes: dict[str, Any] = Field(default_factory=dict)
    chain: tuple[Name, ...] = Field(
        default=(),
        max_length=MAX_ITEMS,
        description="Delegation chain, oldest first: the agents that asked, in turn, for this action",
    )
    human: OptName = Field(
        default=None, min_length=1, max_length=MAX_ID, description="The human who launched the run"
    )


class Action(BaseModel):
    """What the actor wants to do: a kind, a target (tool, agent, model, recipient) and arguments."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    kind: ActionKind = ActionKind.CALL
    target: Name
    args: dict[str, Any] = Field(default_factory=dict)
    labels: dict[str, Annotated[tuple[Name, ...], Field(max_length=MAX_ITEMS)]] = Field(
        default_factory=dict,
        max_length=MAX_ITEMS,
        description="Provenance labels per argument, e.g. {'recipient': ['untrusted']}",
    )
    call_id: OptName = Field(
        default=None, min_length=1, max_length=MAX_ID, description="The orchestrator's id of this call"
    )
    provenance: dict[str, Any] | None = Field(
        default=None,
        description="Per argument (per element for a list): {'sources': [{'from': 'user'|'agent'} | "
        "{'call': ID, 'field'?: PATH}], 'labels': [...]}; checked by the request validator",
    )


class Context(BaseModel):
    """Where the action happens; policies may declare more fields (``context NAME: type``)."""

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)

    workflow: OptName = Field(default=None, min_length=1, max_length=MAX_ID)
    run: Annotated[str | None, BeforeValidator(_run_text)] = Field(default=None, max_length=MAX_ID)
    tenant: OptName = Field(default=None, min_length=1, max_length=MAX_ID)
    env: OptName = Field(default=None, min_length=1, max_length=MAX_ID)
    time: datetime | None = None


class SignalIn(BaseModel):
    """A finding from another agent: source, kind, severity, score."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    source: Name
    kind: Name
    # (pydantic refuses a str holding a surrogate code point: "unable to parse raw data as a
    # unicode string"; the shape tier does too, with charter.text.text_ok)
    severity: str = Field(default="medium", max_length=32)
    score: StrictFloat = 0.0
    note: str = Field(default="", max_length=4096)


class Request(BaseModel):
    """Everything the engine needs to decide one action."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    actor: Actor
    action: Action
    context: Context = Field(default_factory=Context)
    cost: dict[Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID)], StrictFloat] = Field(
        default_factory=dict,
        max_length=MAX_ITEMS,
        description="Estimated cost per declared unit, e.g. {'USD': 12.5}",
    )
    signals: tuple[SignalIn, ...] = Field(default=(), max_length=MAX_ITEMS)
    approval: OptName = Field(
        default=None, min_length=1, max_length=MAX_ID, description="Approval id on resubmission"
    )
    idempotency_key: OptName = Field(default=None, min_length=1, max_length=MAX_ID)
    trace_id: Annotated[str | None, BeforeValidator(_trace_id)] = Field(
        default=None, min_length=1, max_length=MAX_TRACE_ID, description="W3C trace id, kept in records"
    )

    @field_validator("cost")
    @classmethod
    def _non_negative(cls, v: dict[str, float]) -> dict[str, float]:
        for unit, amount in v.items():
            if not 0 <= amount <= MAX_AMOUNT:
                raise ValueError(f"cost of {unit} must be a finite number from 0 to {MAX_AMOUNT:,}")
        return v
