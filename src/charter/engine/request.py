"""The request an orchestrator sends before an action: the pydantic model behind the published JSON Schema.

The model is the wire contract and the model tier of the one validator (engine/validate.py),
which adds the value rules a schema cannot state well (finite numbers everywhere, sizes, nesting).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StringConstraints, field_validator

from charter.enums import ActionKind
from charter.state.types import MAX_AMOUNT

#: Bounds on request size (a request is untrusted input).
MAX_ID = 256
MAX_ITEMS = 256

#: A name the request gives: a role, a chain entry, a label.
Name = Annotated[str, StringConstraints(max_length=MAX_ID)]


class Actor(BaseModel):
    """Who asks: an agent id, its roles, attributes and the delegation chain that led here."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    id: str = Field(min_length=1, max_length=MAX_ID, description="Agent id")
    roles: tuple[Name, ...] = Field(default=(), max_length=MAX_ITEMS)
    attributes: dict[str, Any] = Field(default_factory=dict)
    chain: tuple[Name, ...] = Field(
        default=(),
        max_length=MAX_ITEMS,
        description="Delegation chain, oldest first: the agents that asked, in turn, for this action",
    )
    human: str | None = Field(default=None, max_length=MAX_ID, description="The human who launched the run")


class Action(BaseModel):
    """What the actor wants to do: a kind, a target (tool, agent, model, recipient) and arguments."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    kind: ActionKind = ActionKind.CALL
    target: str = Field(min_length=1, max_length=MAX_ID)
    args: dict[str, Any] = Field(default_factory=dict)
    labels: dict[str, Annotated[tuple[Name, ...], Field(max_length=MAX_ITEMS)]] = Field(
        default_factory=dict,
        max_length=MAX_ITEMS,
        description="Provenance labels per argument, e.g. {'recipient': ['untrusted']}",
    )
    call_id: str | None = Field(
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

    workflow: str | None = Field(default=None, max_length=MAX_ID)
    run: str | None = Field(default=None, max_length=MAX_ID)
    tenant: str | None = Field(default=None, max_length=MAX_ID)
    env: str | None = Field(default=None, max_length=MAX_ID)
    time: datetime | None = None


class SignalIn(BaseModel):
    """A finding from another agent: source, kind, severity, score."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    source: str = Field(max_length=MAX_ID)
    kind: str = Field(max_length=MAX_ID)
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
    approval: str | None = Field(default=None, max_length=MAX_ID, description="Approval id on resubmission")
    idempotency_key: str | None = Field(default=None, max_length=MAX_ID)
    trace_id: str | None = Field(default=None, max_length=128, description="W3C trace id, kept in records")

    @field_validator("cost")
    @classmethod
    def _non_negative(cls, v: dict[str, float]) -> dict[str, float]:
        for unit, amount in v.items():
            if not 0 <= amount <= MAX_AMOUNT:
                raise ValueError(f"cost of {unit} must be a finite number from 0 to {MAX_AMOUNT:,}")
        return v
