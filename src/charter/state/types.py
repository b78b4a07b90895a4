"""Value types of the state layer: atomic operations, their results and the store error."""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from charter.errors import Error
from charter.jsonenc import compact_encoder

#: 1 USD expressed in integer micro-units; every amount in this package is an int.
MICRO = 1_000_000

#: The largest amount (in units, e.g. USD) one request, settlement or budget line may carry:
#: 10**15 micro-units, so a limit plus an amount stays exact in every store (Redis's Lua numbers
#: are doubles, exact to 2**53 ≈ 9.007e15; SQLite and PostgreSQL hold 64-bit integers).
MAX_AMOUNT = 1_000_000_000
#: The largest count (a rate limit, a tripwire threshold) a policy may declare: exact as a double
#: (Redis) and far inside a signed 64-bit integer (SQLite, PostgreSQL bigint).
MAX_COUNT = 1_000_000_000_000_000
#: The longest window or duration a policy may declare (100 years, in seconds): in microseconds it
#: still fits a signed 64-bit integer and a double exactly.
MAX_WINDOW_S = 100 * 366 * 86_400

#: Compact JSON (no circular-reference check: the state layer encodes plain trees only).
dumps = compact_encoder()

#: Stop scopes the engine may use; "global" uses the value "*".
STOP_SCOPES = frozenset({"global", "workflow", "agent", "tool", "run", "role", "tenant"})

#: A calendar budget key stays usable (commits of straddling holds) this long past expires_at.
BUDGET_GRACE_S = 3600.0
#: How long a hold record is kept after it expires, so retries still replay its result.
HOLD_RETAIN_S = 86400.0
#: Window entries are kept one window past their window and at least this long, so a caller
#: whose clock lags (or that was descheduled between reading it and reaching the store) by up
#: to that long still counts every entry of its window.
PRUNE_LAG_S = 1.0


def prune_margin(window_s: float) -> float:
    """How long past its window an entry is kept: one window, at least PRUNE_LAG_S."""
    return window_s if window_s > PRUNE_LAG_S else PRUNE_LAG_S


#: Events a run's history keeps in every store (older ones are dropped with their settlements;
#: the step counter keeps counting): docs/state.md
HISTORY_CAP = 10_000
#: SQLite and PostgreSQL delete a run's events past the cap every this many steps (one range
#: delete, not one per decision): at most cap + HISTORY_PRUNE_EVERY - 1 are on disk, and readers
#: see the last cap
HISTORY_PRUNE_EVERY = 256
#: Settlements of a run whose event is not kept (dropped past the cap, or never recorded) are
#: dropped once the run holds more than 2 × (cap + 512) settlements (results_bound): the memory
#: store checks on every settlement, SQLite and PostgreSQL on one in RESULTS_CHECK_EVERY (a count
#: of the run's settlements; so they may pass the bound by about that many)
RESULTS_CHECK_EVERY = 64


def results_bound(cap: int) -> int:
    """How many settlements a run keeps before those without a kept event are dropped."""
    return 2 * (cap + 512)


#: TTL used where the protocol has no expiry (stops, all-time budgets, records without ttl).
LONG_TTL_S = 10 * 365 * 86400.0


#: this process's id, kept current across fork: os.getpid() is a system call on every use, and
#: a store checks it on every call (a forked child must never use its parent's connections)
PID = [os.getpid()]


def _after_fork() -> None:
    PID[0] = os.getpid()


os.register_at_fork(after_in_child=_after_fork)


class StoreFault(enum.Enum):
    """Classified store failure; the engine decides fail-open/closed from this."""

    UNAVAILABLE = "unavailable"
    TIMEOUT = "timeout"
    READONLY = "readonly"
    FULL = "full"
    CORRUPT = "corrupt"
    BUSY = "busy"
    CONFLICT = "conflict"
    SCRIPT = "script"
    WRONGTYPE = "wrongtype"
    OOM = "oom"
    PROTOCOL = "protocol"
    OTHER = "other"


class StoreError(Error):
    """Every backend failure, mapped; raw driver exceptions never reach the engine."""

    def __init__(self, kind: StoreFault, backend: str, message: str) -> None:
        super().__init__(f"[{backend}:{kind.value}] {message}")
        self.kind = kind
        self.backend = backend
        self.message = message


# The operations and results a batch carries are values: never change one after building it.
# (Not ``frozen=True``: a frozen dataclass costs ~5x as much to build, 0.78 against 0.16 us for
# eight fields, and a decision builds about ten of them.)
@dataclass(slots=True)
class HitOp:
    """Sliding-window counter hit: sum (or distinct members) of entries newer than now - window_s.

    With a monotonic clock that is exactly (now - window_s, now]. Entries stamped after `now`
    (a caller whose clock lags, or a call delayed between reading the clock and arriving) are
    counted too, so the limit holds for every window even when calls arrive out of order.
    """

    key: str
    window_s: float
    amount: int = 1
    limit: int | None = None
    trip_above: int | None = None
    member: str | None = None


@dataclass(slots=True)
class HitResult:
    key: str
    total: int  # window total after this hit (unchanged when limited)
    limited: bool
    tripped: bool


@dataclass(slots=True)
class BudgetLine:
    key: str
    limit: int
    amount: int
    rolling_s: float | None = None
    expires_at: float | None = None


@dataclass(slots=True)
class LineStatus:
    key: str
    limit: int
    used: int
    reserved: int
    amount: int
    ok: bool


@dataclass(slots=True)
class ReserveOp:
    hold_id: str
    lines: tuple[BudgetLine, ...]
    ttl_s: float


@dataclass(slots=True)
class ReserveResult:
    ok: bool
    lines: tuple[LineStatus, ...]
    replayed: bool


#: The prefix of a label's mark in a run's marks: ``l:<label>`` -> (step, time) of the label's
#: latest arrival, whichever way it came (an allowed action's arguments or a settlement); compiled
#: mark ids never start with it (docs/semantics.md 8.1).
LABEL_MARK = "l:"


@dataclass(slots=True)
class EventOp:
    run_key: str
    event: Mapping[str, Any]
    labels: frozenset[str] = frozenset()
    marks: frozenset[str] = frozenset()
    ttl_s: float = 86400.0


@dataclass(frozen=True, slots=True)
class GrantRecord:
    """One run grant instance as a store keeps it (``limit`` None: no use limit).

    ``seq`` orders instances (``g<seq>`` is the id); ``used`` counts the allowed actions it covered.
    """

    id: str
    seq: int
    kind: str
    params: Mapping[str, Any]
    limit: int | None
    used: int = 0
    actor: str = ""
    at: float = 0.0

    @property
    def uses_left(self) -> int | None:
        """Uses left (None: no limit)."""
        return None if self.limit is None else max(0, self.limit - self.used)

    def to_doc(self) -> dict[str, Any]:
        """JSON-ready form (the stores that keep documents)."""
        return {
            "id": self.id,
            "seq": self.seq,
            "kind": self.kind,
            "params": dict(self.params),
            "limit": self.limit,
            "used": self.used,
            "actor": self.actor,
            "at": self.at,
        }

    @staticmethod
    def from_doc(d: Mapping[str, Any]) -> GrantRecord:
        """The record of a document written by :meth:`to_doc`."""
        limit = d.get("limit")
        return GrantRecord(
            str(d["id"]),
            int(d["seq"]),
            str(d["kind"]),
            dict(d.get("params") or {}),
            None if limit is None else int(limit),
            int(d.get("used", 0)),
            str(d.get("actor", "")),
            float(d.get("at", 0.0)),
        )


@dataclass(slots=True)
class GrantUseOp:
    """Consume one use of a covering grant instance per kind relied on, in the decide batch.

    ``candidates``: per kind, the ids of the instances that covered the request, lowest first;
    the store consumes the first one still present with uses left. If a kind has none left (a
    concurrent decision used it up, or it was revoked), the whole batch is refused (nothing
    written: ``BatchResult.grant_refused``).
    """

    run_key: str
    candidates: tuple[tuple[str, ...], ...]


def pick_grant_uses(grants: Mapping[str, GrantRecord], op: GrantUseOp) -> tuple[GrantRecord, ...] | None:
    """The records after consuming ``op`` (None: some kind has no candidate with uses left).

    The one rule every store applies (inside its atomic step) so all stores pick alike.
    """
    out: list[GrantRecord] = []
    taken: set[str] = set()
    for ids in op.candidates:
        chosen = None
        for gid in ids:
            g = grants.get(gid)
            if g is None or gid in taken or (g.limit is not None and g.used >= g.limit):
                continue
            chosen = g
            break
        if chosen is None:
            return None
        taken.add(chosen.id)
        out.append(
            GrantRecord(
                chosen.id, chosen.seq, chosen.kind, chosen.params, chosen.limit, chosen.used + 1,
                chosen.actor, chosen.at,
            )
        )  # fmt: skip
    return tuple(out)


def narrowed(grant: GrantRecord, revoke: frozenset[str], uses: Mapping[str, int]) -> GrantRecord | None:
    """A grant after ``narrow``: None when revoked; at most ``uses[id]`` more uses (never more)."""
    if grant.id in revoke:
        return None
    more = uses.get(grant.id)
    if more is None:
        return grant
    limit = grant.used + max(0, int(more))
    if grant.limit is not None:
        limit = min(limit, grant.limit)
    return GrantRecord(
        grant.id, grant.seq, grant.kind, grant.params, limit, grant.used, grant.actor, grant.at
    )


@dataclass(frozen=True, slots=True)
class RunState:
    steps: int
    labels: frozenset[str]
    marks: Mapping[str, tuple[int, float]] = field(default_factory=dict)
    #: the run's grant instances, lowest id first (docs/language.md, "Run grants")
    grants: tuple[GrantRecord, ...] = ()


EMPTY_RUN = RunState(0, frozenset(), {})


@dataclass(frozen=True, slots=True)
class StopRecord:
    scope: str
    value: str
    reason: str
    by: str
    at: float
    source: str = "operator"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (decisions, settlements, the sidecar and the CLI)."""
        return {
            "scope": self.scope,
            "value": self.value,
            "reason": self.reason,
            "by": self.by,
            "at": self.at,
            "source": self.source,
        }


@dataclass(slots=True)
class RecordOp:
    """A versioned record written in the batch's transaction when the batch goes through.

    Same upsert as ``put_record`` (version 1, or +1 over a live record); the expiry is
    wall-clock ``time.time() + ttl_s`` as for ``put_record``.
    """

    kind: str
    id: str
    doc: Mapping[str, Any]
    ttl_s: float | None


@dataclass(slots=True)
class Batch:
    now: float
    stop_keys: tuple[tuple[str, str], ...] = ()
    hits: tuple[HitOp, ...] = ()
    reserve: ReserveOp | None = None
    event: EventOp | None = None
    idempotency_key: str | None = None
    idempotency_ttl_s: float = 86400.0
    #: written iff nothing was replayed, stopped, limited, tripped or refused (like the event)
    record: RecordOp | None = None
    #: run grant uses consumed iff the batch goes through (its own op: see GrantUseOp)
    grant_use: GrantUseOp | None = None
    #: False: the caller never reads ``BatchResult.run`` (the engine read the run's state before
    #: its rules), so a store may leave it None instead of building it
    want_run: bool = True


@dataclass(slots=True)
class BatchResult:
    stop: StopRecord | None = None
    hits: tuple[HitResult, ...] = ()
    reserve: ReserveResult | None = None
    step: int | None = None
    run: RunState | None = None
    replayed_payload: str | None = None
    #: the batch's record op was written
    recorded: bool = False
    #: the grant instances whose use this batch consumed (after the use)
    grant_uses: tuple[GrantRecord, ...] = ()
    #: a grant the decision relied on had no use left: nothing was written
    grant_refused: bool = False


@dataclass(frozen=True, slots=True)
class CommitResult:
    """ok: the hold became spend (or already had); lines: status AFTER the commit;
    found: the store knows the hold (False: never reserved, or forgotten after its retention)."""

    ok: bool
    already: bool
    lines: tuple[LineStatus, ...] = ()
    found: bool = True


def stop_to_dict(rec: StopRecord) -> dict[str, Any]:
    return {
        "scope": rec.scope,
        "value": rec.value,
        "reason": rec.reason,
        "by": rec.by,
        "at": rec.at,
        "source": rec.source,
    }


def stop_from_dict(d: Mapping[str, Any]) -> StopRecord:
    return StopRecord(
        scope=str(d["scope"]),
        value=str(d["value"]),
        reason=str(d["reason"]),
        by=str(d["by"]),
        at=float(d["at"]),
        source=str(d.get("source", "operator")),
    )


def check_stop(rec: StopRecord) -> None:
    if rec.scope not in STOP_SCOPES:
        raise ValueError(f"unknown stop scope {rec.scope!r}; expected one of {sorted(STOP_SCOPES)}")
    if rec.scope == "global" and rec.value != "*":
        raise ValueError('a global stop uses the value "*"')


def lines_to_json(lines: tuple[LineStatus, ...]) -> list[list[Any]]:
    return [[x.key, x.limit, x.used, x.reserved, x.amount, x.ok] for x in lines]


def lines_from_json(data: Any) -> tuple[LineStatus, ...]:
    return tuple(
        LineStatus(str(k), int(lim), int(u), int(r), int(a), bool(ok)) for k, lim, u, r, a, ok in data
    )
