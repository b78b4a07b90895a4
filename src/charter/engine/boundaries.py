"""The kinds of stateful boundary as a registry: what each is called, where a policy keeps it, and its hooks.

A boundary kind (budget, rate, tripwire, check after an action) is one :class:`BoundaryKind` in
:data:`KINDS`. Everything that handles boundaries generically iterates this registry instead of
naming kinds: the compiler indexes ``items`` under ``index``; explain words a recorded check with
``describe``; replay rebuilds the state a recorded check saw with ``seed``; policy diff compares
limits by ``looseness``; coverage lists every boundary with :func:`boundaries`. What a kind does
when deciding (its batch operations and how their result reads) is its function pair in
``engine/stateful.py``. docs/architecture.md walks through adding a kind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from charter.engine.policy import Budget, CompiledPolicy, RateLimit, ResultCheck, Tripwire
from charter.enums import HitKind, RuleKind

#: A recorded check, as JSON (``BoundaryCheck.to_dict()``, a trace record's ``boundaries``).
Check = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Seed:
    """State a recorded check saw, to rebuild for a replay: a counter's hits or a budget's spend."""

    key: str
    hits: int = 0
    spent_micros: int = 0


@dataclass(frozen=True, slots=True)
class BoundaryKind:
    """One kind of stateful boundary and its hooks (see the module docstring)."""

    #: how decisions, traces, coverage and stops name it
    kind: HitKind
    #: the keyword of its rules in a policy
    rule_kind: RuleKind
    #: its compiled class (engine/policy.py); ``ir.kind`` is ``kind``
    ir: type
    #: the CompiledPolicy field that holds its items, and the name of their index
    items: str
    index: str
    #: a sentence for a recorded check of this kind (None: nothing worth saying)
    describe: Callable[[Check], str | None]
    #: the state a recorded check of this kind saw, to replay it (None: it saw none)
    seed: Callable[[Check], Seed | None]
    #: how loose one item is, comparable between two versions of it (greater: looser); None: no limit
    looseness: Callable[[Any], float | None]


def number_text(x: Any) -> str:
    """A number as people read it in explanations: ``12,000`` or ``12.50`` (None: ``?``)."""
    if x is None:
        return "?"
    x = float(x)
    return f"{int(x):,}" if x == int(x) else f"{x:,.2f}"


def _budget_text(b: Check) -> str | None:
    if b.get("limit") is None or b.get("amount") is None:
        return None
    before = float(b.get("used") or 0) + float(b.get("reserved") or 0)
    after = before + float(b.get("amount") or 0)
    state = "within the limit" if b.get("ok") else "over the limit, so nothing was reserved"
    return (
        f"Budget {b['id']} ({b.get('scope')}): {number_text(before)} -> {number_text(after)} of "
        f"{number_text(b['limit'])} {b.get('unit')}, {state}."
    )


def _rate_text(b: Check) -> str | None:
    seen = f"{number_text(b.get('used'))} of {number_text(b.get('limit'))}"
    return f"Rate {b['id']}: {seen} {b.get('detail') or ''}".rstrip() + "."


def _tripwire_text(b: Check) -> str | None:
    state = "tripped" if not b.get("ok") else "not tripped"
    seen = f"{number_text(b.get('used'))} against {number_text(b.get('limit'))}"
    return f"Tripwire {b['id']} ({b.get('detail')}): {seen}, {state}."


def _budget_seed(b: Check) -> Seed | None:
    seen = float(b.get("used") or 0) + float(b.get("reserved") or 0)
    key = b.get("key")
    return Seed(key, spent_micros=round(seen * 1_000_000)) if key and seen > 0 else None


def _counter_seed(b: Check) -> Seed | None:
    key, used = b.get("key"), b.get("used")
    if not key or not used:
        return None
    count = float(used)
    if b.get("detail") != "spend-velocity":
        count = max(0.0, count - 1)  # the recorded count includes the recorded request
    return Seed(key, hits=int(count)) if count > 0 else None


KINDS: tuple[BoundaryKind, ...] = (
    BoundaryKind(
        HitKind.BUDGET,
        RuleKind.BUDGET,
        Budget,
        "budgets",
        "budgets",
        _budget_text,
        _budget_seed,
        lambda b: b.limit_micros / 1e6,
    ),
    BoundaryKind(
        HitKind.RATE,
        RuleKind.RATE,
        RateLimit,
        "rates",
        "rates",
        _rate_text,
        _counter_seed,
        lambda r: r.limit / r.window_seconds,
    ),
    BoundaryKind(
        HitKind.TRIPWIRE,
        RuleKind.TRIPWIRE,
        Tripwire,
        "tripwires",
        "tripwires",
        _tripwire_text,
        _counter_seed,
        lambda t: t.threshold / (t.window_seconds or 1.0),
    ),
    BoundaryKind(
        HitKind.RESULT,
        RuleKind.RESULT,
        ResultCheck,
        "result_checks",
        "results",
        lambda b: None,
        lambda b: None,
        lambda c: None,
    ),
)

#: The kinds by their name in decisions.
BY_KIND: Mapping[str, BoundaryKind] = {str(k.kind): k for k in KINDS}


def boundaries(policy: CompiledPolicy) -> Iterator[tuple[BoundaryKind, Any]]:
    """Every boundary of a policy with its kind, kind by kind in registry order."""
    for kind in KINDS:
        for item in getattr(policy, kind.items):
            yield kind, item
