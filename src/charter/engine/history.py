"""History with conditions: what an allowed call leaves in its run, its settled result, and
``after/before EVENT ... where CEL`` over the run's entries (docs/semantics.md, "History with
conditions").

Only policies with ``history_detail`` (a ``where`` clause, or a tool that declares ``result``
fields) record or read any of this; every other policy pays nothing.

Failure is closed: an entry the ``where`` needs that is older than the detail window, a cut
value compared, a ``where`` that gives an error, a store fault -- each is an evaluation error of
the rule (its ``on error``, deny by default), never a silent "not found".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from charter.cel.history import DETAIL_CALLS, Unreadable, convert, keep_values, restore
from charter.engine.decision import Failure
from charter.engine.evaluate import ConditionError, condition_error
from charter.engine.policy import CompiledPolicy, EventMark, SequenceCondition, ToolInfo
from charter.engine.view import RunView, View
from charter.enums import ActionKind
from charter.state import StateStore, StoreError

__all__ = [
    "DETAIL_CALLS",
    "PART_CACHE",
    "PartCache",
    "attach_loader",
    "check_where",
    "decision_detail",
    "history_root",
    "settlement_detail",
]


def decision_detail(view: View, labels: frozenset[str]) -> dict[str, Any]:
    """What an allowed call adds to its history entry beside the plain event: its call id, the
    arguments kept (bounded; longer ones as their SHA-256) and the labels it brought."""
    kept, cut = keep_values(view.args) if view.args else ({}, {})
    out: dict[str, Any] = {"args": kept, "labels": sorted(labels)}
    if cut:
        out["cut"] = cut
    call_id = view.req.call_id
    if call_id is not None:
        out["call"] = call_id
    return out


def settlement_detail(
    tool: ToolInfo | None, result: Mapping[str, Any] | None, outcome: str, labels: frozenset[str]
) -> tuple[dict[str, Any], list[Failure]]:
    """The settlement's history detail: the declared result fields converted to their types
    (a field of the wrong type is dropped, with a failure that names it but never its value),
    bounded like arguments; undeclared fields are not kept."""
    failures: list[Failure] = []
    fields: dict[str, Any] = {}
    declared = tool.results if tool is not None else {}
    for name, value in (result or {}).items():
        typ = declared.get(name)
        if typ is None:
            continue
        try:
            fields[name] = convert(value, typ)
        except (ValueError, RecursionError) as exc:
            failures.append(Failure(f"result {name}", f"not kept: {exc}", "dropped"))
    kept, cut = keep_values(fields)
    doc: dict[str, Any] = {"outcome": outcome, "labels": sorted(labels), "result": kept}
    if cut:
        doc["cut"] = cut
    return doc, failures


#: stored event's id -> (the event, its step, the part of its entry built so far); see _Detail.shared
PartCache = dict[int, tuple[Mapping[str, Any], int, dict[str, Any]]]
#: parts an engine keeps across decisions (all of them dropped when full)
PART_CACHE = 8192
#: no ``where`` clause matched an entry yet (shared: never written, see _search)
_NO_MATCH: dict[str, str] = {}


class _Detail:
    """A run's entries in detail, read from the store once per decision on first use.

    Made for every decision of a policy that keeps history detail, read by few: only what
    every reader needs is set here; the rest when the entries are first read (``events``).
    """

    __slots__ = ("agents", "built", "cache", "error", "evicted", "first", "load", "matched", "parts", "raw",
                 "steps")  # fmt: skip

    def __init__(
        self, load: Any, steps: int, agents: Mapping[str, Any], cache: PartCache | None = None
    ) -> None:
        self.load = load
        self.cache = cache
        self.steps = steps
        self.agents = agents
        self.raw: list[Mapping[str, Any]] | None = None
        self.error: str | None = None
        #: where text -> the entry it matched ("call (tool, step N)"), for evidence (a dict of its
        #: own once a clause matches)
        self.matched: dict[str, str] = _NO_MATCH
        # (set by ``events``: the entries as read, those built from them, the first one's step,
        # and whether older ones were dropped)
        self.built: list[dict[str, Any] | None]
        #: entries with only the fields ``where`` clauses read so far (see ``part``)
        self.parts: list[dict[str, Any] | None]
        self.first: int
        self.evicted: bool

    def events(self) -> list[Mapping[str, Any]]:
        """The stored events, oldest first (read once; a store fault is remembered)."""
        if self.error is not None:
            raise ConditionError(self.error)
        if self.raw is None:
            try:
                raw = self.load()
            except StoreError as exc:
                self.error = f"history: the state store failed: {exc}"
                raise ConditionError(self.error) from None
            # one event per step: the newest event is the run's last step (at least: a decision
            # made since the run's state was read may have added one)
            self.first = max(self.steps - len(raw) + 1, 1)
            self.evicted = self.first > 1
            self.raw = raw
            self.built = [None] * len(raw)
            self.parts = [None] * len(raw)
        return self.raw

    def entry(self, i: int) -> dict[str, Any]:
        """Event ``i`` as conditions read it (built on first use)."""
        got = self.built[i]
        if got is None:
            got = self.built[i] = _entry(self.raw[i], self.first + i)  # type: ignore[index]
        return got

    def part(self, i: int, fields: frozenset[str] | None) -> dict[str, Any]:
        """Event ``i`` with at least ``fields`` built (all of them for None): a ``where`` that
        reads only ``earlier.result.id`` never sees, so never pays for, the other fields."""
        got = self.built[i]
        if got is not None:
            return got
        if fields is None:
            return self.entry(i)
        part = self.parts[i]
        ev = self.raw[i]  # type: ignore[index]
        step = self.first + i
        if part is None:
            part = self.parts[i] = self.shared(ev, step)
        for name in fields:
            if name not in part and name in _FIELDS:
                # (a field entries lack is left out: it reads as "no such key", as in the whole entry)
                part[name] = _FIELDS[name](ev, step)
        return part

    def shared(self, ev: Mapping[str, Any], step: int) -> dict[str, Any]:
        """The part built for this very stored event (the same object, at the same step) by an
        earlier decision, or a new one kept for later ones: a store that hands out the events it
        keeps (the memory store) has each field built once, not once per decision."""
        cache = self.cache
        if cache is None:
            return {}
        key = id(ev)
        hit = cache.get(key)
        # INVARIANT: the cache holds ``ev`` itself, so ``id(ev)`` cannot name another object
        if hit is not None and hit[0] is ev and hit[1] == step:
            return hit[2]
        if len(cache) >= PART_CACHE:
            cache.clear()
        part: dict[str, Any] = {}
        cache[key] = (ev, step, part)
        return part

    def read(self) -> list[dict[str, Any]]:
        """Every entry, oldest first."""
        return [self.entry(i) for i in range(len(self.events()))]


def history_root(run: RunView | None) -> list[dict[str, Any]] | Unreadable:
    """The ``history`` root of conditions: the run's entries in detail, oldest first; unreadable
    (an evaluation error wherever it is read) without a run, on a store fault, or when the run
    has entries older than the detail window (a query over it could miss them)."""
    detail = run.detail if run is not None else None
    if detail is None:
        return Unreadable("history: the request names no run, or the policy keeps no history detail")
    try:
        entries = detail.read()
    except ConditionError as exc:
        return Unreadable(str(exc))
    if detail.evicted:
        return Unreadable(
            f"history: the run has {detail.steps} calls, more than the {DETAIL_CALLS} kept in detail; "
            "use 'after call ... within N steps where ...'"
        )
    return entries


def attach_loader(
    run: RunView, store: StateStore, run_key: str, policy: CompiledPolicy, cache: PartCache | None = None
) -> None:
    """Let ``where`` clauses read the run's last ``DETAIL_CALLS`` entries (lazily, at most once);
    ``cache``: the engine's parts of entries built by earlier decisions."""
    run.detail = _Detail(lambda: store.history_detail(run_key, DETAIL_CALLS), run.steps, policy.agents, cache)


def _entry(ev: Mapping[str, Any], step: int) -> dict[str, Any]:
    """One history entry as conditions read it (``earlier``; cut values unreadable)."""
    return {name: build(ev, step) for name, build in _FIELDS.items()}


def _settlement(ev: Mapping[str, Any]) -> Mapping[str, Any]:
    return ev.get("settlement") or {}


def _result(ev: Mapping[str, Any], step: int) -> Any:
    st = ev.get("settlement") or {}
    return restore(st.get("result") or {}, st.get("cut") or {}, "earlier.result")


def _tool(ev: Mapping[str, Any], step: int) -> str:
    return str(ev.get("target", "")) if str(ev.get("kind", "")) == "call" else ""


#: each field of an entry, built from the stored event (and its step); the order is the entry's
_FIELDS: dict[str, Any] = {
    "call": lambda ev, step: str(ev.get("call") or ev.get("decision", "")),
    "step": lambda ev, step: step,
    "at": lambda ev, step: float(ev.get("at", 0.0)),
    "agent": lambda ev, step: str(ev.get("agent", "")),
    "kind": lambda ev, step: str(ev.get("kind", "")),
    "tool": _tool,
    "target": lambda ev, step: str(ev.get("target", "")),
    "outcome": lambda ev, step: str(_settlement(ev).get("outcome", "")),
    "args": lambda ev, step: restore(ev.get("args") or {}, ev.get("cut") or {}, "earlier.args"),
    "result": _result,
    "labels": lambda ev, step: sorted({*ev.get("labels", ()), *_settlement(ev).get("labels", ())}),
}


def _matches(mark: EventMark, ev: Mapping[str, Any], agents: Mapping[str, Any]) -> bool:
    """Whether a stored event matches the clause's event (kind and target)."""
    if mark.kind is not None and ev.get("kind") != mark.kind.value:
        return False
    t = mark.target
    target = ev.get("target", "")
    if t.any or target in t.names:
        return True
    if t.roles and mark.kind is ActionKind.DELEGATE:
        agent = agents.get(target)
        return agent is not None and not t.roles.isdisjoint(agent.roles)
    return False


def check_where(seq: SequenceCondition, view: View) -> bool:
    """``after EVENT [within ...] where CEL``: an entry in the window matches the event and the
    condition holds with ``earlier`` bound to it; ``before EVENT where CEL``: none does.

    Raises ConditionError (the rule fails closed) when the run names no history, the store
    fails, the condition errs on an entry and no other entry matches, or no entry matched but
    the window reaches entries older than the detail window.
    """
    assert seq.where is not None and seq.event is not None
    run = view.run
    detail = run.detail if run is not None else None
    if detail is None:
        raise ConditionError(f"'{seq.text or seq.where.text}': the run's history is unknown")
    events = detail.events()
    # the decision's own (lazy) activation, with ``earlier`` bound for this clause only: no
    # compiled condition elsewhere can name ``earlier`` (E307), and it is removed afterwards
    act = view.activation()
    try:
        return _search(seq, view, detail, events, act)
    finally:
        act.pop("earlier", None)


def _search(
    seq: SequenceCondition, view: View, detail: _Detail, events: list[Mapping[str, Any]], act: Any
) -> bool:
    assert seq.where is not None and seq.event is not None
    first_error: ConditionError | None = None
    reaches_back = True  # the window reaches past the oldest entry kept in detail
    now = view.now
    mark = seq.event
    # the event's matcher, taken apart once (``_matches`` decides what this does not)
    kind = mark.kind._value_ if mark.kind is not None else None
    any_target = mark.target.any
    names = mark.target.names
    roles = mark.target.roles and mark.kind is ActionKind.DELEGATE
    fields = seq.earlier_fields
    where = seq.where
    budget = act.cel_budget  # the decision's CEL work: each entry checked is one step of a search
    step_cost = seq.step_cost
    fn = where.fn
    assert not where.negate
    within_steps = seq.within_steps
    within_seconds = seq.within_seconds
    last = detail.steps - detail.first  # steps back from the newest step to entry 0
    for i in range(len(events) - 1, -1, -1):
        ev = events[i]
        if within_steps is not None and last - i >= within_steps:
            reaches_back = False
            break
        if within_seconds is not None and now - float(ev.get("at", 0.0)) > within_seconds:
            reaches_back = False
            break
        # on the stored event: no entry is built for an event the clause does not name
        if kind is not None and ev.get("kind") != kind:
            continue
        if (
            not any_target
            and ev.get("target", "") not in names
            and (not roles or not _matches(mark, ev, detail.agents))
        ):
            continue
        budget.cost += step_cost
        if budget.cost > budget.max_cost:
            raise ConditionError(
                f"condition '{where.text}': cost limit exceeded (searching the run's history)"
            )
        act["earlier"] = detail.part(i, fields)
        # the compiled condition called directly (a where is never negated); anything but
        # true/false is the error check_condition gives
        try:
            held = fn(act)
        except RecursionError:
            first_error = first_error or ConditionError(f"condition '{where.text}' is too deep to evaluate")
            continue
        if held is False:
            continue
        if held is not True:
            first_error = first_error or condition_error(where, held)
            continue
        call = _FIELDS["call"](ev, detail.first + i)
        if detail.matched is _NO_MATCH:
            detail.matched = {}
        detail.matched[where.text] = f"{call} ({ev.get('target', '')}, step {detail.first + i})"
        return seq.after
    if first_error is not None:
        raise first_error
    if detail.evicted and reaches_back:
        raise ConditionError(
            f"history: the clause needs entries older than the detail window (the last {DETAIL_CALLS} "
            f"calls of {detail.steps}), so whether one matches is unknown"
        )
    return not seq.after
