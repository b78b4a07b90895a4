"""Run policy tests: one engine, clock and in-memory store per test or scenario; check expectations."""

from __future__ import annotations

import fnmatch
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from charter.approvals import HumanError
from charter.engine.decision import Decision
from charter.engine.engine import Engine, Settlement
from charter.engine.policy import CompiledPolicy
from charter.errors import RequestError
from charter.hits import hit_line
from charter.testing.coverage import Coverage
from charter.testing.loader import Case, Step, TestFile

_DECIDE_EXPECT = {"outcome", "rules", "reasons", "obligations", "default_deny", "shadow", "boundaries"}
_SETTLE_EXPECT = {"outcome", "checks", "labels", "committed", "stops"}
_HUMAN_EXPECT = {"status", "error", "resumed", "record"}
_REQUEST_KEYS = {
    "actor",
    "action",
    "call",
    "delegate",
    "args",
    "labels",
    "context",
    "cost",
    "signals",
    "approval",
    "idempotency_key",
    "time",
}


class Clock:
    """A clock the steps move by hand."""

    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


@dataclass(slots=True)
class CaseResult:
    """The result of one test or scenario."""

    file: str
    name: str
    scenario: bool
    status: str  # passed | failed | error
    messages: list[str] = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0

    @property
    def ok(self) -> bool:
        """True when the case passed."""
        return self.status == "passed"


@dataclass(slots=True)
class FileResult:
    """The results of one test file."""

    path: str
    policy: str
    cases: list[CaseResult] = field(default_factory=list)


class StepFailure(Exception):
    """An expectation that did not hold (the message says which)."""


@dataclass(slots=True)
class _State:
    engine: Engine
    clock: Clock
    last: Decision | None = None
    last_approval: str | None = None
    last_escalation: str | None = None
    last_human: str | None = None
    decisions: dict[str, Decision] = field(default_factory=dict)


# ---- matching --------------------------------------------------------------------------------------
def subset(expected: Any, actual: Any, where: str = "") -> list[str]:
    """Differences where ``expected`` is not contained in ``actual`` (dict keys and list items subset)."""
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return [f"{where or 'value'}: expected a mapping, got {actual!r}"]
        out: list[str] = []
        for k, v in expected.items():
            if k not in actual:
                out.append(f"{where}{k}: missing (have {sorted(map(str, actual))})")
            else:
                out.extend(subset(v, actual[k], f"{where}{k}."))
        return out
    if isinstance(expected, list):
        if not isinstance(actual, (list, tuple)):
            return [f"{where.rstrip('.') or 'value'}: expected a list, got {actual!r}"]
        out = []
        for i, item in enumerate(expected):
            if not any(not subset(item, a) for a in actual):
                out.append(f"{where.rstrip('.')}[{i}]: no item matches {item!r} in {list(actual)!r}")
        return out
    if isinstance(expected, float) or isinstance(actual, float):
        try:
            if abs(float(expected) - float(actual)) <= 1e-9 * max(1.0, abs(float(expected))):
                return []
        except (TypeError, ValueError):
            pass
    if expected == actual or (isinstance(expected, str) and str(actual) == expected):
        return []
    return [f"{where.rstrip('.') or 'value'}: expected {expected!r}, got {actual!r}"]


def _ids_match(expected: Any, actual: list[str], what: str) -> list[str]:
    exp = [str(e) for e in (expected if isinstance(expected, list) else [expected])]
    missing = [e for e in exp if not any(fnmatch.fnmatchcase(a, e) for a in actual)]
    extra = [a for a in actual if not any(fnmatch.fnmatchcase(a, e) for e in exp)]
    if missing or extra:
        return [f"{what}: expected {exp}, got {actual}"]
    return []


def _unknown(expect: Mapping[str, Any], allowed: set[str], step: str) -> list[str]:
    return [
        f"unknown expectation {k!r} for a {step} step (use {', '.join(sorted(allowed))})"
        for k in expect
        if k not in allowed
    ]


def check_decision(d: Decision, expect: Mapping[str, Any]) -> list[str]:
    """Messages for each expectation on a decision that does not hold."""
    out = _unknown(expect, _DECIDE_EXPECT, "decide")
    if "outcome" in expect and d.outcome.value != str(expect["outcome"]):
        why = "; ".join(hit_line(h) for h in d.rules) or ("default deny" if d.default_deny else "")
        out.append(f"outcome: expected {expect['outcome']}, got {d.outcome.value} ({why})")
    if "rules" in expect:
        out.extend(_ids_match(expect["rules"] or [], [h.id for h in d.rules], "rules"))
    if "shadow" in expect:
        out.extend(_ids_match(expect["shadow"] or [], [h.id for h in d.shadow], "shadow"))
    if "reasons" in expect:
        for text in expect["reasons"] if isinstance(expect["reasons"], list) else [expect["reasons"]]:
            if not any(str(text) in r for r in d.reasons):
                out.append(f"reasons: no reason contains {text!r} (reasons: {d.reasons})")
    if "default_deny" in expect and bool(expect["default_deny"]) != d.default_deny:
        out.append(f"default_deny: expected {expect['default_deny']}, got {d.default_deny}")
    if "obligations" in expect:
        out.extend(subset(expect["obligations"], d.obligations, "obligations."))
    if "boundaries" in expect:
        out.extend(subset(expect["boundaries"], [b.to_dict() for b in d.boundaries], "boundaries."))
    return out


def check_settlement(st: Settlement, expect: Mapping[str, Any]) -> list[str]:
    """Messages for each expectation on a settlement that does not hold."""
    out = _unknown(expect, _SETTLE_EXPECT, "settle")
    if "outcome" in expect:
        got = st.outcome.value if st.outcome else None
        if got != expect["outcome"]:
            out.append(f"outcome: expected {expect['outcome']}, got {got}")
    if "checks" in expect:
        out.extend(_ids_match(expect["checks"] or [], [c.id for c in st.checks], "checks"))
    if "labels" in expect:
        out.extend(subset(list(expect["labels"] or []), list(st.labels), "labels"))
    if "committed" in expect and bool(expect["committed"]) != st.committed:
        out.append(f"committed: expected {expect['committed']}, got {st.committed}")
    if "stops" in expect:
        out.extend(subset(expect["stops"], st.to_dict()["stops"], "stops."))
    return out


# ---- steps -----------------------------------------------------------------------------------------
def build_request(raw: Any, defaults: Mapping[str, Any], state: _State) -> dict[str, Any]:
    """A full request from the shorthand (``actor: id``, ``call: tool``, ``delegate: agent``)."""
    if not isinstance(raw, Mapping):
        raise StepFailure(f"a request is a mapping, not {type(raw).__name__}")
    unknown = set(raw) - _REQUEST_KEYS
    if unknown:
        raise StepFailure(f"unknown request key {sorted(unknown)[0]!r}")
    merged: dict[str, Any] = {}
    for src in (defaults, raw):
        for k, v in src.items():
            if isinstance(v, Mapping) and isinstance(merged.get(k), Mapping):
                merged[k] = {**merged[k], **v}
            else:
                merged[k] = v
    req: dict[str, Any] = {}
    actor = merged.get("actor")
    req["actor"] = {"id": actor} if isinstance(actor, str) else dict(actor or {})
    action = dict(merged.get("action") or {})
    if "call" in merged:
        action.update(kind="call", target=merged["call"])
    if "delegate" in merged:
        action.update(kind="delegate", target=merged["delegate"])
    for key in ("args", "labels"):
        if key in merged:
            action[key] = merged[key]
    req["action"] = action
    for key in ("context", "cost", "signals", "idempotency_key"):
        if key in merged:
            req[key] = merged[key]
    if "time" in merged:
        req.setdefault("context", {})["time"] = merged["time"]
    approval = merged.get("approval")
    if approval in ("last", "last-approval"):
        approval = state.last_approval
    elif approval == "last-escalation":
        approval = state.last_escalation
    if approval is not None:
        req["approval"] = approval
    return req


def _human_id(args: Mapping[str, Any], state: _State, kind: str) -> str:
    given = args.get("id")
    if given and given != "last":
        return str(given)
    got = state.last_approval if kind == "approval" else state.last_escalation
    if got is None:
        raise StepFailure(f"no earlier decision opened an {kind}")
    return got


def _decide(step: Step, case: Case, state: _State) -> list[str]:
    req = build_request(step.args, case.defaults, state)
    d = state.engine.decide(req)
    state.last = d
    state.decisions[d.id] = d
    if d.obligations.get("approval_id"):
        state.last_approval = d.obligations["approval_id"]
    esc = d.obligations.get("escalation")
    if isinstance(esc, Mapping) and esc.get("id"):
        state.last_escalation = esc["id"]
    return check_decision(d, step.expect)


def _settle(step: Step, state: _State) -> list[str]:
    args = step.args if isinstance(step.args, Mapping) else {}
    did = args.get("decision", "last")
    if did == "last":
        if state.last is None:
            raise StepFailure("settle: no earlier decision")
        did = state.last.id
    st = state.engine.settle(
        did,
        actual_cost=args.get("cost"),
        outcome=str(args.get("outcome", "success")),
        labels=tuple(args.get("labels") or ()),
    )
    return check_settlement(st, step.expect)


def _human(step: Step, state: _State) -> list[str]:
    args: Mapping[str, Any] = step.args if isinstance(step.args, Mapping) else {}
    e = state.engine
    who = str(args.get("as", args.get("who", "")))
    note = str(args.get("note", ""))
    out = _unknown(step.expect, _HUMAN_EXPECT, step.kind)
    try:
        if step.kind == "approve":
            doc: Any = e.approvals.approve(_human_id(args, state, "approval"), who, note)
        elif step.kind == "deny":
            doc = e.approvals.deny(_human_id(args, state, "approval"), who, note)
        elif step.kind == "answer":
            verdict = str(args.get("verdict", args.get("answer", "allow")))
            doc = e.escalations.answer(_human_id(args, state, "escalation"), who, verdict, note)
        elif step.kind == "stop":
            rec = e.stops.stop(
                str(args.get("scope", "global")),
                str(args.get("value", "*")),
                str(args.get("reason", "")),
                who,
            )
            doc = {"status": "stopped", "scope": rec.scope, "value": rec.value}
        elif step.kind == "resume":
            doc = e.stops.resume(str(args.get("scope", "global")), str(args.get("value", "*")), who, note)
            doc["status"] = "resumed" if doc["resumed"] else "waiting"
        else:  # status
            if "escalation" in args:
                doc = e.escalations.get(_human_id({"id": args["escalation"]}, state, "escalation"))
            else:
                doc = e.approvals.get(_human_id({"id": args.get("approval", "last")}, state, "approval"))
    except HumanError as exc:
        if "error" in step.expect:
            if str(step.expect["error"]) not in str(exc):
                out.append(f"error: expected a message containing {step.expect['error']!r}, got {exc}")
            return out
        raise StepFailure(f"{step.kind} refused: {exc}") from None
    if "error" in step.expect:
        out.append(
            f"error: expected the {step.kind} to be refused ({step.expect['error']!r}), it was accepted"
        )
    if "status" in step.expect and doc.get("status") != step.expect["status"]:
        out.append(f"status: expected {step.expect['status']}, got {doc.get('status')}")
    if "resumed" in step.expect and bool(doc.get("resumed")) != bool(step.expect["resumed"]):
        out.append(f"resumed: expected {step.expect['resumed']}, got {doc.get('resumed')}")
    if "record" in step.expect:
        out.extend(subset(step.expect["record"], doc, "record."))
    return out


def _numbered(value: Any, i: int) -> Any:
    """``{i}`` in the strings of a repeated step becomes the repetition number (from 1)."""
    if isinstance(value, str):
        return value.replace("{i}", str(i + 1))
    if isinstance(value, Mapping):
        return {k: _numbered(v, i) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbered(v, i) for v in value]
    return value


def _describe(step: Step, defaults: Mapping[str, Any]) -> str:
    if step.kind == "decide" and isinstance(step.args, Mapping):
        a = {**defaults, **step.args}
        actor = a.get("actor")
        actor = actor.get("id") if isinstance(actor, Mapping) else actor
        target = a.get("call") or a.get("delegate") or (a.get("action") or {}).get("target")
        return f"decide {actor} -> {target}"
    return step.kind


def run_case(policy: CompiledPolicy, case: Case, file: str, cov: Coverage | None = None) -> CaseResult:
    """Run one test or scenario on a fresh engine with an in-memory store."""
    t0 = time.perf_counter()
    result = CaseResult(file, case.name, case.scenario, "passed")
    clock = Clock(case.start)
    state = _State(Engine(policy, clock=clock, observers=[cov] if cov is not None else ()), clock)
    actions: dict[str, Callable[[Step], list[str]]] = {
        "decide": lambda s: _decide(s, case, state),
        "settle": lambda s: _settle(s, state),
    }
    for step in case.steps:
        result.steps += 1
        what = _describe(step, case.defaults)
        label = f"step {step.index + 1} ({what})" if case.scenario else what
        try:
            problems: list[str] = []
            for i in range(step.repeat):
                if step.kind == "advance":
                    clock.t += float(step.args)
                else:
                    one = (
                        step
                        if step.repeat == 1
                        else Step(step.kind, _numbered(step.args, i), step.expect, step.index)
                    )
                    problems = actions.get(step.kind, lambda s: _human(s, state))(one)
                if problems:
                    break
        except StepFailure as exc:
            result.status = "failed"
            result.messages.append(f"{label}: {exc}")
            break
        except (RequestError, KeyError, ValueError, TypeError) as exc:
            result.status = "error"
            result.messages.append(f"{label}: {type(exc).__name__}: {exc}")
            break
        if problems:
            result.status = "failed"
            result.messages.extend(f"{label}: {p}" for p in problems)
            break
    result.seconds = time.perf_counter() - t0
    return result


def run_file(
    tf: TestFile,
    policy: CompiledPolicy,
    cov: Coverage | None = None,
    select: re.Pattern[str] | None = None,
    on_case: Callable[[CaseResult], None] | None = None,
) -> FileResult:
    """Run the cases of one file (those whose name matches ``select``)."""
    fr = FileResult(str(tf.path), str(tf.policy))
    for case in tf.cases:
        if select is not None and not select.search(case.name):
            continue
        res = run_case(policy, case, str(tf.path), cov)
        fr.cases.append(res)
        if on_case is not None:
            on_case(res)
    return fr
