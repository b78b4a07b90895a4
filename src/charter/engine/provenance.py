"""Provenance of request arguments: `action.provenance` checked, and what labels() and sources() read.

A request may say, per argument and per list element, where a value came from (``sources``: the
user, the agent, or an earlier call's result) and which labels it carries. This module checks
that structure (one validator, called by :func:`charter.engine.validate.validate_request`) and
answers ``labels(x)`` / ``sources(x)`` for the values of one decision (docs/semantics.md,
"Provenance").

INVARIANT (closed by default): a value without provenance has no labels and one ``unknown``
source; derived labels ``planned`` and ``unknown`` come only from the engine, never a request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from charter.cel.values import EvalError
from charter.engine.request import id_problem
from charter.errors import RequestError

__all__ = [
    "CALL_RECORD",
    "MAX_ELEMENTS",
    "MAX_PATH",
    "MAX_PER_VALUE",
    "RESERVED_LABELS",
    "CallLookup",
    "Entry",
    "ProvenanceTable",
    "Source",
    "call_facts",
    "call_key",
    "check_call_id",
    "check_provenance",
]

#: labels only the engine derives (E402 in a ``then label``, a RequestError in a request)
RESERVED_LABELS = frozenset({"planned", "unknown"})
#: sources and labels of one value
MAX_PER_VALUE = 16
#: entries of one list argument
MAX_ELEMENTS = 256
#: entries in one request (every argument and element together)
MAX_TOTAL = 10_000
#: characters of a call id, a label or a field path
MAX_PATH = 256
#: names in a field path (``a.b.c``)
MAX_PATH_PARTS = 16

_FROM = frozenset({"user", "agent"})

#: the store record kind of what a settled call left for later provenance (see :func:`call_facts`)
CALL_RECORD = "call"
#: looks up the facts of an earlier call of the run by its call id (None: not settled in this run);
#: may raise the store's error
CallLookup = Callable[[str], "Mapping[str, Any] | None"]


def call_key(run: str, call_id: str) -> str:
    """The store record id of a call of a run (length-prefixed: no two (run, call) pairs collide)."""
    return f"{len(run)}:{run}:{call_id}"


def call_facts(
    tool: str,
    labels: frozenset[str] | set[str],
    fields: Mapping[str, frozenset[str] | set[str]],
    inputs: frozenset[str] | set[str],
    at: float,
) -> dict[str, Any]:
    """What a settled call leaves for the values later calls take from its result: its tool, the
    labels of its result (settlement and ``on result`` checks), the labels given to fields
    (``then label L on F``), and ``inputs``, the labels of its own arguments."""
    return {
        "tool": tool,
        "labels": sorted(labels),
        "fields": {f: sorted(v) for f, v in sorted(fields.items())},
        "inputs": sorted(inputs),
        "at": at,
    }


@dataclass(frozen=True, slots=True)
class Source:
    """Where a value came from: ``user``, ``agent``, or ``call`` (an earlier call, a field of its result)."""

    kind: str
    call: str = ""
    field: str = ""

    def to_dict(self) -> dict[str, str]:
        """The request form of this source."""
        if self.kind != "call":
            return {"from": self.kind}
        return {"call": self.call, "field": self.field} if self.field else {"call": self.call}


@dataclass(frozen=True, slots=True)
class Entry:
    """The provenance a request gives one value: its labels and its sources."""

    labels: tuple[str, ...] = ()
    sources: tuple[Source, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The request form of this entry."""
        return {"labels": list(self.labels), "sources": [s.to_dict() for s in self.sources]}


def _fail(where: str, msg: str) -> RequestError:
    return RequestError(f"request field '{where}': {msg}", where)


def check_call_id(call_id: Any) -> str | None:
    """``action.call_id``: None or an identifier (the request's one rule, request.id_ok)."""
    if call_id is None:
        return None
    problem = id_problem(call_id)
    if problem is not None:
        raise _fail("action.call_id", problem)
    return call_id


def _name(v: Any, where: str, what: str) -> str:
    if v.__class__ is not str or not 0 < len(v) <= MAX_PATH:
        raise _fail(where, f"{what} must be a text of 1 to {MAX_PATH} characters")
    return v


def _path(v: Any, where: str) -> str:
    path = _name(v, where, "a field path")
    parts = path.split(".")
    if len(parts) > MAX_PATH_PARTS or any(not p for p in parts):
        raise _fail(where, f"a field path is 1 to {MAX_PATH_PARTS} names separated by '.'")
    return path


_USER_SOURCE, _AGENT_SOURCE = Source("user"), Source("agent")
#: the commonest entries, checked once (entries are immutable, so they are shared)
_COMMON: tuple[tuple[dict[str, Any], Entry], ...] = (
    ({"sources": [{"from": "user"}]}, Entry((), (_USER_SOURCE,))),
    ({"sources": [{"from": "agent"}]}, Entry((), (_AGENT_SOURCE,))),
)
_CALL_SOURCES_MAX = 4096
#: entries of one source and no labels, by their source
_ONE_SOURCE: dict[Source, Entry] = {}
#: entries of one call source and no labels, by (call id, field): the commonest entries of all,
#: and where a call source is built once (one request names a few calls many times)
_CALL_ENTRIES: dict[tuple[str, str], Entry] = {}


def _call_entry(call: str, field: str) -> Entry:
    """The entry of one call source and no labels (built once per call and field)."""
    key = (call, field)
    e = _CALL_ENTRIES.get(key)
    if e is None:
        if len(_CALL_ENTRIES) >= _CALL_SOURCES_MAX:
            _CALL_ENTRIES.clear()  # bounded: a cache, never a record
        e = _CALL_ENTRIES[key] = Entry((), (Source("call", call, field),))
    return e


def _plain_path(field: Any) -> bool:
    """Whether a source's field path is one the shortcuts may take without :func:`_path`: a text of
    1 to MAX_PATH characters, names separated by single dots, at most MAX_PATH_PARTS of them
    (INVARIANT: accepts only what ``_path`` accepts; anything else is left to it to word)."""
    return (
        field.__class__ is str
        and 0 < len(field) <= MAX_PATH
        and ".." not in field
        and field[0] != "."
        and field[-1] != "."
        and field.count(".") < MAX_PATH_PARTS
    )


def _fast_entry(e: Any) -> Entry | None:
    """The entry of the commonest shapes (one source and nothing else), checked exactly as
    :func:`_entry` checks them, without its messages; None: :func:`_entry` decides (and words
    any problem)."""
    if e.__class__ is not dict or len(e) != 1:
        return None
    sources = e.get("sources")
    if sources.__class__ is not list or len(sources) != 1:
        return None
    s = sources[0]
    if s.__class__ is not dict:
        return None
    n = len(s)
    field: Any
    if n == 1:
        source = s.get("from")
        if source is not None:  # (compared as _COMMON's shapes are)
            return _COMMON[0][1] if source == "user" else _COMMON[1][1] if source == "agent" else None
        call = s.get("call")
        field = ""
    elif n == 2:
        call = s.get("call")
        field = s.get("field")
        if call.__class__ is str and field.__class__ is str and field:
            # a pair seen before was checked then: only checked pairs are kept (an empty field,
            # kept for sources without one, is a problem here, so it is never looked up)
            found = _CALL_ENTRIES.get((call, field))
            if found is not None:
                return found
        if not _plain_path(field):
            return None
    else:
        return None
    if call.__class__ is not str or not 0 < len(call) <= MAX_PATH:
        return None
    return _call_entry(call, field)


def _call_source(call: str, field: str) -> Source:
    """The call source (call id, field), built once (it is the source of that call's entry)."""
    return _call_entry(call, field).sources[0]


def _entry(e: Any, where: str) -> Entry:
    if e.__class__ is not dict:
        raise _fail(where, "a provenance entry is an object with 'sources' and/or 'labels'")
    for shape, entry in _COMMON:
        if e == shape:
            return entry
    if len(e) > ("sources" in e) + ("labels" in e):
        extra = set(e) - {"sources", "labels"}
        raise _fail(where, f"unknown key {sorted(extra)[0]!r} (an entry has 'sources' and 'labels')")
    labels = e.get("labels", [])
    if labels.__class__ is not list or len(labels) > MAX_PER_VALUE:
        raise _fail(f"{where}.labels", f"a list of at most {MAX_PER_VALUE} labels")
    for lab in labels:
        _name(lab, f"{where}.labels", "a label")
        if lab in RESERVED_LABELS:
            raise _fail(f"{where}.labels", f"'{lab}' is reserved: only the engine gives it")
    sources = e.get("sources", [])
    if sources.__class__ is not list or len(sources) > MAX_PER_VALUE:
        raise _fail(f"{where}.sources", f"a list of at most {MAX_PER_VALUE} sources")
    out: list[Source] = []
    for i, s in enumerate(sources):
        if s.__class__ is not dict:
            sw = f"{where}.sources[{i}]"
            raise _fail(sw, 'a source is {"from": "user" | "agent"} or {"call": ID, "field"?: PATH}')
        if "from" in s:
            if len(s) != 1 or s["from"].__class__ is not str or s["from"] not in _FROM:
                raise _fail(f"{where}.sources[{i}]", 'a source "from" is "user" or "agent", alone')
            out.append(_USER_SOURCE if s["from"] == "user" else _AGENT_SOURCE)
        elif "call" in s:
            if len(s) > 1 + ("field" in s):
                raise _fail(f"{where}.sources[{i}]", 'a call source has "call" and optionally "field"')
            call = s["call"]
            field = s.get("field", "")
            # the checks in full only for what the common case cannot prove (a short text id,
            # a simple field path)
            if call.__class__ is not str or not 0 < len(call) <= MAX_PATH:
                _name(call, f"{where}.sources[{i}].call", "a call id")
            if "field" in s and not _plain_path(field):
                _path(field, f"{where}.sources[{i}].field")
            out.append(_call_source(call, field))
        else:
            sw = f"{where}.sources[{i}]"
            raise _fail(sw, 'a source is {"from": "user" | "agent"} or {"call": ID, "field"?: PATH}')
    if not labels and len(out) == 1:  # one source, no labels: the usual entry, built once
        if out[0].kind == "call":
            return _call_entry(out[0].call, out[0].field)
        found = _ONE_SOURCE.get(out[0])
        if found is None:
            if len(_ONE_SOURCE) >= _CALL_SOURCES_MAX:
                _ONE_SOURCE.clear()
            found = _ONE_SOURCE[out[0]] = Entry((), (out[0],))
        return found
    return Entry(tuple(sorted(set(labels))) if labels else (), tuple(out))


def check_provenance(provenance: Any, args: Mapping[str, Any]) -> Mapping[str, Entry | tuple[Entry, ...]]:
    """``action.provenance`` checked against the arguments: one entry for a scalar or object, one
    per element for a list (lengths must match); raises RequestError (never an allow)."""
    if provenance is None:
        return {}
    if provenance.__class__ is not dict or len(provenance) > MAX_ELEMENTS:
        raise _fail("action.provenance", f"an object of at most {MAX_ELEMENTS} arguments")
    out: dict[str, Entry | tuple[Entry, ...]] = {}
    total = 0
    for name, spec in provenance.items():
        if name.__class__ is not str or name not in args:
            raise _fail(f"action.provenance.{name}", f"no argument {str(name)[:40]!r} in action.args")
        value = args[name]
        # (the commonest entries first, without the texts only a problem needs)
        if value.__class__ is list or value.__class__ is tuple:
            if spec.__class__ is not list or len(spec) != len(value) or len(spec) > MAX_ELEMENTS:
                where = f"action.provenance.{name}"
                if spec.__class__ is not list:
                    raise _fail(where, "a list argument needs one entry per element (a list)")
                if len(spec) != len(value):
                    raise _fail(where, f"{len(spec)} entries for a list of {len(value)} elements")
                raise _fail(where, f"at most {MAX_ELEMENTS} elements carry provenance")
            total += len(spec)
            if total > MAX_TOTAL:
                raise _fail("action.provenance", f"more than {MAX_TOTAL} entries")
            out[name] = tuple(
                _fast_entry(e) or _entry(e, f"action.provenance.{name}[{i}]") for i, e in enumerate(spec)
            )
        else:
            total += 1
            out[name] = _fast_entry(spec) or _entry(spec, f"action.provenance.{name}")
    return out


# ---- the values of one decision ---------------------------------------------------------------


_AMBIGUOUS = Entry(("\x00",))


class ProvenanceTable:
    """``labels(x)`` and ``sources(x)`` for one decision's argument values, by object identity.

    A value computed in a condition is a new object, so it has no provenance (closed). A value
    registered twice with different provenance (the same object in two places) gets none.
    """

    __slots__ = ("_agent", "_by_id", "_calls", "_fault", "_lookup", "_shared", "_source_dicts", "inputs")

    def __init__(
        self,
        args: Mapping[str, Any],
        provenance: Mapping[str, Entry | tuple[Entry, ...]],
        whole: Mapping[str, tuple[str, ...]],
        agent_label: str,
        calls: CallLookup | None = None,
    ) -> None:
        self._by_id: dict[int, tuple[Any, Entry, tuple[str, ...]]] = {}
        #: shared values (see _add) that an argument gave provenance: (class, value)
        self._shared: set[tuple[type, Any]] = set()
        self._source_dicts: dict[int, dict[str, Any]] = {}
        self._agent = agent_label
        self._lookup = calls
        #: the facts of each earlier call a source names (None: not settled in this run)
        self._calls: dict[str, Mapping[str, Any] | None] = {}
        #: a store fault while looking up a call: every labels()/sources() is an error (closed)
        self._fault = ""
        #: every label of every argument and element (the ``inputs`` a later call's source reports)
        self.inputs: set[str] = set()
        derived = {"user": "user", "agent": agent_label}
        # entry id -> its labels, for the arguments without whole-argument labels (entries are
        # shared: the commonest, such as one user source, are the same object everywhere)
        seen: dict[int, tuple[str, ...]] = {}
        for name, value in args.items():
            given = whole.get(name, ())
            if given:
                given = tuple(lab for lab in given if lab not in RESERVED_LABELS)
            spec = provenance.get(name)
            if spec is None:
                if given:
                    entry = Entry(given)
                    labs = tuple(sorted(set(given)))
                    self.inputs.update(labs)
                    self._add(value, entry, labs)
                    if value.__class__ is list:
                        for x in value:
                            self._add(x, entry, labs)
                continue
            labelled = seen if not given else {}
            if isinstance(spec, Entry):
                found = labelled.get(id(spec))
                if found is None:
                    found = labelled[id(spec)] = self._labels(spec, given, derived)
                self._add(value, spec, found)
                continue
            if not isinstance(value, list | tuple) or len(value) != len(spec):
                continue  # not the shape the validator checked (coerced?): no provenance, closed
            common: set[str] | None = None
            sources: list[Source] = []
            for x, e in zip(value, spec, strict=True):
                known = labelled.get(id(e))
                if known is None:
                    known = labelled[id(e)] = self._labels(e, given, derived)
                self._add(x, e, known)
                if common is None:
                    common = set(known)
                else:
                    common.intersection_update(known)
                sources.extend(e.sources)
            # a list is only as trusted as its least trusted element
            self._add(value, Entry((), tuple(sources)), tuple(sorted(common or ())))

    def _labels(self, e: Entry, given: tuple[str, ...], derived: Mapping[str, str]) -> tuple[str, ...]:
        out = set(e.labels)
        if given:
            out.update(given)
        for s in e.sources:
            if s.kind == "call":
                out.update(self._call_labels(s))
            else:
                out.add(derived[s.kind])
        self.inputs.update(out)
        return tuple(sorted(out))

    def _facts(self, call: str) -> Mapping[str, Any] | None:
        """The facts an earlier call of the run left when it was settled (None: none)."""
        if call in self._calls:
            return self._calls[call]
        facts = None
        if self._lookup is not None:
            try:
                facts = self._lookup(call)
            except Exception as exc:  # a store fault: nothing read here can be trusted
                self._fault = f"provenance: call {call[:60]}: {exc}"
        self._calls[call] = facts
        return facts

    def _call_labels(self, s: Source) -> tuple[str, ...]:
        """A value from an earlier call's result: that result's labels, plus those ``on result``
        checks gave the field it came from (or a field above it); ``unknown`` when the call was
        not settled in this run (closed: the value proves nothing)."""
        facts = self._facts(s.call)
        if facts is None:
            return ("unknown",)
        out = tuple(facts.get("labels", ()))
        if s.field:
            for f, labs in facts.get("fields", {}).items():
                if s.field == f or s.field.startswith(f + "."):
                    out += tuple(labs)
        return out

    def _add(self, value: Any, entry: Entry, labels: tuple[str, ...]) -> None:
        # only a value that is its own object: singletons and values Python caches (booleans,
        # null, small integers, texts of 0-1 characters) could be computed by a condition, so
        # they carry none. They are remembered, though: labels() of an equal value is then an
        # error, not [], so a rule asking for a label the argument had ("untrusted") fails
        # closed instead of reading its absence.
        t = value.__class__
        if t is str:
            if len(value) <= 1:
                self._shared.add((t, value))
                return
        elif t is int:
            if -5 <= value <= 256:
                self._shared.add((t, value))
                return
        elif t is not float and t is not list and t is not dict and t is not tuple:
            if t is bool or value is None:
                self._shared.add((t, value))
            return
        key = id(value)
        old = self._by_id.get(key)
        if old is not None and (old[1] != entry or old[2] != labels):
            entry, labels = _AMBIGUOUS, ()
        self._by_id[key] = (value, entry, labels)

    def _find(self, value: Any) -> tuple[Entry, tuple[str, ...]] | None:
        if self._fault:
            raise EvalError(self._fault)
        found = self._by_id.get(id(value))
        if found is None or found[0] is not value or found[1] is _AMBIGUOUS:
            return None
        return found[1], found[2]

    def _untold(self, value: Any) -> None:
        """Raise when ``value`` is a shared value some argument gave provenance (see _add)."""
        t = value.__class__
        if self._shared and t in (str, int, bool, type(None)) and (t, value) in self._shared:
            raise EvalError(
                f"the provenance of {value!r} cannot be told apart: booleans, null, small "
                "integers and texts of at most one character are shared values (read a whole "
                "argument's labels with action.arg_labels)"
            )

    def labels(self, value: Any) -> list[str]:
        """The labels of a value (sorted); [] for a value without provenance."""
        found = self._find(value)
        if found is None:
            self._untold(value)
            return []
        return list(found[1])

    def sources(self, value: Any) -> list[dict[str, Any]] | None:
        """The sources of a value; None for a value without any (the caller says ``unknown``)."""
        found = self._find(value)
        if found is None:
            self._untold(value)
        if found is None or not found[0].sources:
            return None
        return [self._source(s) for s in found[0].sources]

    def _source(self, s: Source) -> dict[str, Any]:
        # by identity: a Source's hash is a Python call, and the table's entries keep every
        # source it is asked about alive (equal sources of two objects get equal dicts)
        d = self._source_dicts.get(id(s))
        if d is None:
            facts = self._facts(s.call) if s.kind == "call" else None
            if s.kind != "call":
                labels = [{"user": "user", "agent": self._agent}[s.kind]]
            else:
                labels = sorted(set(self._call_labels(s)))
            d = {
                "kind": s.kind,
                "call": s.call,
                "tool": str(facts.get("tool", "")) if facts is not None else "",
                "field": s.field,
                "labels": labels,
                "inputs": list(facts.get("inputs", ())) if facts is not None else [],
            }
            self._source_dicts[id(s)] = d
        return d

    def describe(self, value: Any) -> Any:
        """The labels and sources of a value (per element for a list), for evidence."""
        if isinstance(value, list | tuple):
            return [self.describe(x) for x in value]
        found = self._find(value)
        if found is None:
            return {"labels": [], "sources": ["unknown"]}
        return {"labels": list(found[1]), "sources": [s.to_dict() for s in found[0].sources]}

    def read(self) -> dict[str, Any]:
        """What this decision's provenance rested on, for evidence and the trace: the earlier
        calls its sources named (tool and result labels, or ``unknown``) and any store fault."""
        out: dict[str, Any] = {
            "calls": {
                c: (
                    {"tool": f.get("tool", ""), "labels": list(f.get("labels", ()))}
                    if f is not None
                    else "unknown"
                )
                for c, f in sorted(self._calls.items())
            }
        }
        if self._fault:
            out["fault"] = self._fault
        return out
