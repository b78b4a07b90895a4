"""Closed sets shared by every stage (outcomes, rule kinds, scopes, modes); imports nothing internal."""

from __future__ import annotations

import enum


class Outcome(enum.Enum):
    """A decision's outcome. Precedence: halt > deny > escalate > require_approval > allow."""

    ALLOW = "allow"
    REQUIRE_APPROVAL = "require_approval"
    ESCALATE = "escalate"
    DENY = "deny"
    HALT = "halt"

    #: strictness; the combining rule takes the maximum (a plain attribute: read on the hot path)
    rank: int


for _member, _rank in (
    (Outcome.ALLOW, 0),
    (Outcome.REQUIRE_APPROVAL, 1),
    (Outcome.ESCALATE, 2),
    (Outcome.DENY, 3),
    (Outcome.HALT, 4),
):
    object.__setattr__(_member, "rank", _rank)

#: Outcomes from the loosest to the strictest.
PRECEDENCE: tuple[Outcome, ...] = tuple(sorted(Outcome, key=lambda o: o.rank))


def strictest(a: Outcome, b: Outcome) -> Outcome:
    """The stricter of two outcomes (the one combining rule)."""
    return a if a.rank >= b.rank else b


class RuleKind(enum.Enum):
    """The kinds of rule a policy can contain."""

    PERMIT = "permit"
    FORBID = "forbid"
    HALT = "halt"
    ESCALATE = "escalate"
    APPROVAL = "require approval"
    BUDGET = "budget"
    RATE = "rate"
    TRIPWIRE = "tripwire"
    RESULT = "on result"


class Mode(enum.Enum):
    """Enforcement mode of a rule: shadow rules are evaluated and recorded but never decide."""

    ENFORCE = "enforce"
    SHADOW = "shadow"


class Scope(enum.Enum):
    """What a budget, rate, tripwire or stop is counted or applied per."""

    GLOBAL = "global"
    ORG = "org"
    TENANT = "tenant"
    WORKFLOW = "workflow"
    RUN = "run"
    AGENT = "agent"
    ROLE = "role"
    TOOL = "tool"


class ActionKind(enum.Enum):
    """The kind of action an agent asks to take."""

    CALL = "call"
    DELEGATE = "delegate"
    MODEL = "model"
    MESSAGE = "message"


class Calendar(enum.Enum):
    """Calendar windows for budgets, in the budget's time zone."""

    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class TriggerKind(enum.Enum):
    """The runaway tripwires the language knows."""

    REPEAT = "repeated-call"
    DEPTH = "delegation-depth"
    PINGPONG = "ping-pong"
    VELOCITY = "spend-velocity"
    FANOUT = "fan-out"
    DENIED = "denied"


class FailMode(enum.Enum):
    """What a rule does when evaluating it fails (closed unless a policy says otherwise)."""

    DENY = "deny"
    HALT = "halt"
    ESCALATE = "escalate"
    REQUIRE_APPROVAL = "require_approval"
    IGNORE = "ignore"  # explicit fail-open: counted and visible

    #: the outcome a failure contributes (None: ignored, the explicit fail-open)
    outcome: Outcome | None


for _fail in FailMode:
    object.__setattr__(_fail, "outcome", None if _fail is FailMode.IGNORE else Outcome(_fail.value))


class HitKind(enum.StrEnum):
    """What contributed to a decision (``RuleHit.kind``) or was consulted (``BoundaryCheck.kind``).

    A ``StrEnum``: members compare equal to, and serialise as, their text.
    """

    PERMIT = "permit"
    FORBID = "forbid"
    HALT = "halt"
    ESCALATE = "escalate"
    REQUIRE_APPROVAL = "require approval"
    BUDGET = "budget"
    RATE = "rate"
    TRIPWIRE = "tripwire"
    RESULT = "on result"
    #: an emergency stop that covered the request
    STOP = "stop"
    #: the engine failing closed (a store or record that could not be used)
    FAILURE = "failure"
    #: a human answer used for a resubmitted action
    APPROVAL = "approval"
    ESCALATION = "escalation"
    #: an idempotency key reused for a different request
    IDEMPOTENCY = "idempotency"
    #: a run grant whose use the decision consumed (or found used up)
    GRANT = "grant"


class Severity(enum.Enum):
    """Severity of an escalation or a signal."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class MaskKind(enum.Enum):
    """How a ``mask``/``hash`` declaration edits an argument before a decision log leaves the process."""

    #: replaced by ``"****"``
    MASK = "mask"
    #: replaced by a keyed hash (HMAC-SHA256) of its canonical JSON: equal values stay joinable
    HASH = "hash"
