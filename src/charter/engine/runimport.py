"""Importing and exporting a run's history (issue 18 step 7; docs/semantics.md 8.3).

An orchestrator that resumes a run, or moves it to replicas with another store, seeds it with
the calls that already happened. Imported events are facts, not decisions: each is appended in
order as an allowed, settled call (steps, marks, labels by the one rule of 8.1, history detail
as the current policy keeps it); no rule is evaluated, no approval asked, nothing charged.

All or nothing: every event is checked before anything is written, and a malformed import is a
:class:`RunImportError` (400 over HTTP). Events whose call id the run already has are skipped,
so an import can be retried. An event's time is bounded by the engine's clock: no older than the
run's retention (the store would drop it at once: a silent loss of history) and no more than
:data:`MAX_SKEW_S` ahead (a future entry would sit inside every time window).

An export names the run's fields the policy marks ``secret`` (arguments and result fields) in
``redacted`` instead of giving their values: an importer's ``where`` over one fails closed.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from charter.engine.history import DETAIL_CALLS, decision_detail, settlement_detail
from charter.engine.policy import CompiledPolicy
from charter.engine.runlabels import entered_labels, label_marks
from charter.engine.settle import keep_call_facts, label_checks, store_call_lookup
from charter.engine.stateful import RUN_TTL_S, mark_matches
from charter.engine.validate import check_run_id, id_ok, id_problem, id_rule, validate_request
from charter.engine.view import build_view
from charter.enums import ActionKind
from charter.errors import RequestError, RunImportError, UnknownRun
from charter.state import Batch, EventOp, StateStore

__all__ = [
    "MAX_IMPORT_BYTES",
    "MAX_IMPORT_EVENTS",
    "MAX_SKEW_S",
    "RunImport",
    "RunImportError",
    "UnknownRun",
    "export_run",
    "import_run",
]

#: events in one import
MAX_IMPORT_EVENTS = 10_000
#: bytes of JSON of one import's events
MAX_IMPORT_BYTES = 1 << 20
#: how far an event's ``at`` may be ahead of the engine's clock (replicas' clock skew), seconds
MAX_SKEW_S = 300.0
#: how far back the run is read to skip call ids it already has (and to export)
_SCAN = 100_000

_KEYS = frozenset(
    {"call_id", "kind", "target", "args", "provenance", "result", "labels", "outcome", "at", "redacted"}
)


@dataclass(frozen=True, slots=True)
class RunImport:
    """What an import did: how many events were appended, how many were already in the run."""

    run: str
    imported: int
    skipped: int
    digest: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"run": self.run, "imported": self.imported, "skipped": self.skipped, "sha256": self.digest}


def _path_text(x: Any) -> bool:
    return isinstance(x, str) and 0 < len(x) <= 256


def _fail(msg: str, i: int | None = None) -> RunImportError:
    return RunImportError(msg, i)


def _checked(
    policy: CompiledPolicy, run: str, actor: str, events: Sequence[Any], after: float, now: float
) -> list[tuple[dict[str, Any], Any]]:
    """Every event checked (with its validated request) before anything is written."""
    out = []
    seen: set[str] = set()
    last = after
    # an entry older than the run's retention would be dropped by the store at once (the import
    # would report it imported and the run would not have it); one from the future would sit in
    # every `within` window for as long as it is ahead
    oldest, newest = now - RUN_TTL_S, now + MAX_SKEW_S
    for i, ev in enumerate(events):
        if not isinstance(ev, Mapping):
            raise _fail("an event is an object", i)
        extra = set(ev) - _KEYS
        if extra:
            raise _fail(f"unknown key {sorted(extra)[0]!r} (an event has {', '.join(sorted(_KEYS))})", i)
        call_id = ev.get("call_id")
        if not isinstance(call_id, str) or not call_id or len(call_id) > 256:
            raise _fail("call_id: a text of 1 to 256 characters", i)
        if call_id in seen:
            raise _fail(f"call_id {call_id!r} appears twice in the import", i)
        seen.add(call_id)
        kind = ev.get("kind", "call")
        if kind not in ("call", "delegate"):
            raise _fail("kind: 'call' or 'delegate'", i)
        target = ev.get("target")
        if not isinstance(target, str) or not target:
            raise _fail("target: a text", i)
        if kind == "call" and target not in policy.tools:
            raise _fail(f"target {target!r} is not a tool the policy declares", i)
        at = ev.get("at")
        if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
            raise _fail("at: a finite time in epoch seconds", i)
        if not oldest <= at <= newest:
            raise _fail(
                f"at: {at:.15g} is not a time this run can hold: from {oldest:.0f} (the run's "
                f"retention, {RUN_TTL_S / 86400:g} days before this engine's clock) to {newest:.0f} "
                f"({MAX_SKEW_S:g} s after it); import a run's recent calls, with their real times",
                i,
            )
        if at < last:
            raise _fail("events must be in time order and not before the run's last entry", i)
        last = float(at)
        labels = ev.get("labels", [])
        if not isinstance(labels, list) or not all(x.__class__ is str and id_ok(x) for x in labels):
            raise _fail(f"labels: a list of label names ({id_rule()})", i)
        result = ev.get("result")
        if result is not None and not isinstance(result, Mapping):
            raise _fail("result: an object (field name -> value)", i)
        outcome = ev.get("outcome", "success")
        if not isinstance(outcome, str) or not outcome or len(outcome) > 64:
            raise _fail("outcome: a text of 1 to 64 characters", i)
        redacted = ev.get("redacted", [])
        if not isinstance(redacted, list) or not all(_path_text(x) for x in redacted):
            raise _fail("redacted: a list of field paths (as export_run gives them)", i)
        action: dict[str, Any] = {
            "kind": kind,
            "target": target,
            "args": ev.get("args") or {},
            "call_id": call_id,
        }
        if ev.get("provenance") is not None:
            action["provenance"] = ev["provenance"]
        try:
            req = validate_request({"actor": {"id": actor}, "action": action, "context": {"run": run}})
        except RequestError as exc:
            raise _fail(str(exc), i) from None
        out.append((dict(ev), req))
    return out


def import_run(
    policy: CompiledPolicy,
    store: StateStore,
    run: str,
    actor: str,
    events: Sequence[Any],
    charge: bool = False,
    now: float | None = None,
) -> RunImport:
    """Append ``events`` to ``run`` as allowed, settled calls (see the module's docstring);
    ``now``: the engine's clock (default: the system's)."""
    try:
        check_run_id(run)
    except RequestError as exc:
        raise _fail(str(exc)) from None
    problem = id_problem(actor)  # the one rule for ids, as actor.id has it
    if problem is not None:
        raise _fail(f"actor: {problem}")
    if charge:
        raise _fail("charge=True (counting budgets and rates for imported calls) is not supported yet")
    if not isinstance(events, list | tuple):
        raise _fail("events: a list")
    if len(events) > MAX_IMPORT_EVENTS:
        raise _fail(f"at most {MAX_IMPORT_EVENTS} events in one import")
    try:
        blob = json.dumps(list(events), sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise _fail(f"events are not JSON: {exc}") from None
    if len(blob.encode("utf-8", "surrogatepass")) > MAX_IMPORT_BYTES:
        raise _fail(f"events take more than {MAX_IMPORT_BYTES} bytes of JSON")
    digest = hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()
    key = f"run:{run}"
    have = store.history(key, _SCAN)
    known = {str(e.get("call") or e.get("decision")) for e in have}
    after = max((float(e.get("at", 0.0)) for e in have), default=-math.inf)
    todo = [
        (ev, req)
        for ev, req in _checked(policy, run, actor, events, -math.inf, time.time() if now is None else now)
        if ev["call_id"] not in known
    ]
    if todo and float(todo[0][0]["at"]) < after:
        raise _fail("events must be in time order and not before the run's last entry")
    for ev, req in todo:
        at = float(ev["at"])
        view = build_view(policy, req, at)
        if req.provenance:
            view.calls = store_call_lookup(store, run)  # values from earlier calls of the run
        given = frozenset(ev.get("labels", ()))
        # the policy's `on result` checks label an imported result as they would a settled one
        # (labels only: an imported call raises no stop or escalation)
        whole, fields = label_checks(policy, view, str(ev.get("outcome", "success")), tuple(sorted(given)))
        checked = frozenset(whole).union(*fields.values())
        labels = entered_labels(view) | given | checked
        marks = frozenset(m.id for m in policy.marks if mark_matches(m, view)) | label_marks(labels)
        doc: dict[str, Any] = {
            "decision": ev["call_id"],
            "agent": actor,
            "kind": view.kind.value,
            "target": view.target,
            "at": at,
            "imported": True,
        }
        if policy.history_detail:
            doc.update(decision_detail(view, labels))
        store.apply(Batch(now=at, event=EventOp(key, doc, labels, marks, RUN_TTL_S)))
        if policy.history_detail and view.kind is ActionKind.CALL:
            detail, _ = settlement_detail(view.tool, ev.get("result"), ev.get("outcome", "success"), labels)
            store.put_result(key, ev["call_id"], detail, now=at, ttl_s=RUN_TTL_S)
        # what later values from this call's result are worth (as for a settled call)
        keep_call_facts(store, view, run, ev["call_id"], set(given | whole), fields, at)
    return RunImport(run, len(todo), len(events) - len(todo), digest)


def export_run(store: StateStore, run: str, policy: CompiledPolicy | None = None) -> dict[str, Any]:
    """The run's state and history in the shape ``import_run`` takes (what the store keeps: the
    last entries in detail when the policy keeps history detail).

    Raises RequestError for a malformed run id and :class:`UnknownRun` when the store has nothing
    of the run. With ``policy``, the arguments and result fields its tools mark ``secret`` are
    left out and named in the event's ``redacted`` (the trace never holds them either; an importer
    whose ``where`` reads one gets an evaluation error, closed, rather than a stand-in value).
    """
    check_run_id(run)
    key = f"run:{run}"
    state = store.run_state(key)
    if not (state.steps or state.labels or state.grants or state.marks):
        raise UnknownRun(run)
    tools = policy.tools if policy is not None else {}
    events = []
    for e in store.history_detail(key, DETAIL_CALLS):
        st = e.get("settlement") or {}
        target = e.get("target", "")
        tool = tools.get(target) if e.get("kind", "call") == "call" else None
        args = dict(e.get("args") or {})
        hidden = [f"args.{a}" for a in sorted(tool.secret_args & args.keys())] if tool is not None else []
        for a in tool.secret_args if tool is not None else ():
            args.pop(a, None)
        out: dict[str, Any] = {
            "call_id": str(e.get("call") or e.get("decision")),
            "kind": e.get("kind", "call"),
            "target": target,
            "at": e.get("at", 0.0),
            "args": args,
            "labels": sorted({*e.get("labels", ()), *st.get("labels", ())}),
        }
        if st:
            out["outcome"] = st.get("outcome", "success")
            result = dict(st.get("result") or {})
            if tool is not None:
                hidden += [f"result.{f}" for f in sorted(tool.secret_results & result.keys())]
                for f in tool.secret_results:
                    result.pop(f, None)
            out["result"] = result
        if hidden:
            out["redacted"] = hidden
        events.append(out)
    return {"run": run, "steps": state.steps, "labels": sorted(state.labels), "events": events}
