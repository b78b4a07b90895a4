"""Run grants at run time: declaring them (begin_run), narrowing them, and ``granted("KIND")``.

A trusted caller declares what a run may do before it reads anything (``Engine.begin_run``); the
policy's grant kinds type and bound every grant, and all are stored or none (GrantError). During
the run, ``granted("KIND")`` is true when an instance of KIND covers the request and has uses
left; an allowed decision consumes one use of the lowest covering instance of each kind it relied
on, in the same atomic store step that records the action (docs/semantics.md, "Run grants").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from charter.cel import CelError
from charter.diagnostics import did_you_mean
from charter.engine.index import target_matches
from charter.engine.policy import CompiledPolicy, GrantKind
from charter.engine.view import Activation
from charter.errors import Error
from charter.state.types import GrantRecord, GrantUseOp

__all__ = [
    "MAX_GRANTS",
    "MAX_STRING",
    "MAX_VALUES",
    "Grant",
    "GrantError",
    "GrantProblem",
    "GrantTable",
    "Run",
    "check_grants",
    "convert_param",
]

#: Most grants one run may hold.
MAX_GRANTS = 64
#: Most values of one set or list param.
MAX_VALUES = 256
#: Longest text of a param value (and of a kind), in characters (a run id: see
#: charter.engine.validate.check_run_id; an actor or a label: the identifier rule, check_id).
MAX_STRING = 1024


@dataclass(frozen=True, slots=True)
class GrantProblem:
    """One reason a grant was refused: a stable code, its name, the grant's index and a message."""

    code: str
    name: str
    message: str
    index: int | None = None
    help: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the sidecar's 422 body)."""
        out: dict[str, Any] = {"code": self.code, "name": self.name, "message": self.message}
        if self.index is not None:
            out["index"] = self.index
        if self.help:
            out["help"] = self.help
        return out


class GrantError(Error, ValueError):
    """Grants the policy refuses, or a run already started: nothing was stored.

    ``problems``: one per problem (G101 unknown-grant-kind, G102 missing-param, G103 bad-param,
    G104 outside-bound, G105 run-started); ``refused``: the indexes of the grants at fault, so a
    caller can begin the run without them.
    """

    def __init__(self, problems: Sequence[GrantProblem]):
        self.problems = tuple(problems)
        self.refused = tuple(sorted({p.index for p in self.problems if p.index is not None}))
        super().__init__("; ".join(f"{p.code} {p.message}" for p in self.problems))

    @property
    def run_started(self) -> bool:
        """The run already had grants or a recorded step (HTTP 409 rather than 422)."""
        return any(p.code == "G105" for p in self.problems)


@dataclass(frozen=True, slots=True)
class Grant:
    """One grant instance of a run: ``g1``..``gN``, its kind, uses left (None: no limit), params."""

    id: str
    kind: str
    uses_left: int | None
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"id": self.id, "kind": self.kind, "uses_left": self.uses_left, "params": dict(self.params)}

    @staticmethod
    def of(rec: GrantRecord) -> Grant:
        """The public view of a stored instance."""
        return Grant(rec.id, rec.kind, rec.uses_left, dict(rec.params))


@dataclass(frozen=True, slots=True)
class Run:
    """A run as ``begin_run`` / ``narrow_run`` leave it."""

    run: str
    actor: str
    grants: tuple[Grant, ...]
    revision: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the sidecar's 201 body)."""
        return {
            "run": self.run,
            "actor": self.actor,
            "grants": [g.to_dict() for g in self.grants],
            "revision": self.revision,
        }


def _scalar(value: Any, scalar: str) -> tuple[bool, Any]:
    if scalar == "any":
        if isinstance(value, (bool, str)):
            return _scalar(value, "bool" if isinstance(value, bool) else "string")
        if isinstance(value, int):
            return _scalar(value, "int")
        if isinstance(value, float):
            return _scalar(value, "double")
        return False, None
    if scalar == "string":
        return (True, value) if isinstance(value, str) and len(value) <= MAX_STRING else (False, None)
    if scalar == "bool":
        return (True, value) if isinstance(value, bool) else (False, None)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False, None
    if scalar == "int":
        if isinstance(value, float):
            if not value.is_integer():
                return False, None
            value = int(value)
        return (True, value) if -(2**53) <= value <= 2**53 else (False, None)
    number = float(value)
    return (True, number) if math.isfinite(number) else (False, None)


def convert_param(value: Any, scalar: str, many: bool) -> tuple[bool, Any]:
    """(ok, the value as conditions see it) for one param value: typed like a request argument,
    finite, texts at most MAX_STRING characters, sets and lists at most MAX_VALUES values (a
    set keeps the first of equal values)."""
    if not many:
        return _scalar(value, scalar)
    if not isinstance(value, (list, tuple)) or len(value) > MAX_VALUES:
        return False, None
    out: list[Any] = []
    for v in value:
        ok, c = _scalar(v, scalar)
        if not ok:
            return False, None
        if c not in out:
            out.append(c)
    return True, out


def _problem(code: str, message: str, index: int | None, help: str = "") -> GrantProblem:
    names = {
        "G101": "unknown-grant-kind",
        "G102": "missing-param",
        "G103": "bad-param",
        "G104": "outside-bound",
        "G105": "run-started",
    }
    return GrantProblem(code, names[code], message, index, help)


def _check_one(
    kind: GrantKind, raw: Mapping[str, Any], index: int, problems: list[GrantProblem]
) -> tuple[dict[str, Any], int | None] | None:
    """The params and use limit of one grant, or None (its problems added)."""
    before = len(problems)
    declared = {p.name: p for p in kind.params}
    params: dict[str, Any] = {}
    for name in raw:
        if name == "kind":
            continue
        if name not in declared:
            hint = did_you_mean(str(name), declared) or (
                "params: " + ", ".join(sorted(declared)) if declared else f"'{kind.name}' takes no params"
            )
            problems.append(
                _problem("G103", f"grant {index} ({kind.name}): no param '{str(name)[:64]}'", index, hint)
            )
    for p in kind.params:
        if p.name not in raw:
            if p.required:
                problems.append(
                    _problem(
                        "G102",
                        f"grant {index} ({kind.name}): param '{p.name}' is required",
                        index,
                        f"give {p.name}: {p.type}",
                    )
                )
            else:
                params[p.name] = list(p.default) if isinstance(p.default, list) else p.default
            continue
        ok, value = convert_param(raw[p.name], p.scalar, p.many)
        if not ok:
            problems.append(
                _problem(
                    "G103",
                    f"grant {index} ({kind.name}): param '{p.name}' is not of type {p.type}",
                    index,
                    f"a {p.type}: finite numbers, texts of at most {MAX_STRING} characters, "
                    f"at most {MAX_VALUES} values",
                )
            )
            continue
        params[p.name] = value
    if len(problems) > before:
        return None
    act = {"grant": params}
    for b in kind.bounds:
        if b.fn(act) is not True:
            problems.append(
                _problem(
                    "G104",
                    f"grant {index} ({kind.name}) is outside the bound at line {b.line}: {b.text}",
                    index,
                    "the policy bounds what a grant of this kind may allow",
                )
            )
    limit: int | None = None
    if kind.uses is not None:
        got = kind.uses(act)
        if isinstance(got, bool) or not isinstance(got, int) or not 0 <= got <= 1_000_000_000:
            problems.append(
                _problem("G103", f"grant {index} ({kind.name}): uses gives {got!r}, not a count", index)
            )
        else:
            limit = got
    if len(problems) > before:
        return None
    return params, limit


def check_grants(
    policy: CompiledPolicy, grants: Sequence[Any]
) -> tuple[list[tuple[str, dict[str, Any], int | None]], list[GrantProblem]]:
    """Check every grant against the policy's kinds: (kind, params, use limit) each, and the problems."""
    problems: list[GrantProblem] = []
    out: list[tuple[str, dict[str, Any], int | None]] = []
    if not isinstance(grants, (list, tuple)):
        return [], [_problem("G103", "grants must be a list", None)]
    if len(grants) > MAX_GRANTS:
        extra = range(MAX_GRANTS, len(grants))
        return [], [_problem("G103", f"at most {MAX_GRANTS} grants per run", i) for i in extra][:1]
    kinds = policy.grant_kinds
    for i, raw in enumerate(grants):
        if not isinstance(raw, Mapping) or not isinstance(raw.get("kind"), str):
            problems.append(
                _problem("G101", f"grant {i} names no kind", i, 'e.g. {"kind": "send-mail", ...}')
            )
            continue
        kind = kinds.get(raw["kind"])
        if kind is None:
            name = raw["kind"][:64]
            hint = did_you_mean(name, kinds) or (
                "grant kinds: " + ", ".join(sorted(kinds)) if kinds else "the policy declares no grant kinds"
            )
            problems.append(_problem("G101", f"grant {i}: unknown grant kind '{name}'", i, hint))
            continue
        found = _check_one(kind, raw, i, problems)
        if found is not None:
            out.append((kind.name, found[0], found[1]))
    return out, problems


def started_problem() -> GrantProblem:
    """G105: the run already has grants or a recorded step."""
    return _problem(
        "G105",
        "the run has started (it has grants or a recorded step): grants are declared before the "
        "run does anything, and nothing widens a started run",
        None,
        "begin a new run, or narrow this one",
    )


class GrantTable:
    """What ``granted("KIND")`` reads for one decision: the run's instances and the policy's kinds.

    Records every instance it consulted (``consulted``, for the decision's ``grants``), the
    covering instances of each kind answered true (``relied``, whose use an allowed decision
    consumes) and the failures of ``covers`` conditions (a failing ``covers`` does not cover).
    """

    __slots__ = ("answers", "consulted", "failures", "kinds", "records", "relied", "run", "view")

    def __init__(self, policy: CompiledPolicy, view: Any, records: tuple[GrantRecord, ...]):
        self.kinds = policy.grant_kinds
        self.view = view
        self.records = records
        self.run = view.req.run or ""
        self.answers: dict[str, bool] = {}
        self.consulted: list[dict[str, Any]] = []
        self.relied: dict[str, tuple[str, ...]] = {}
        self.failures: list[tuple[str, str]] = []

    def _actor_ok(self, g: GrantRecord) -> bool:
        view = self.view
        return not g.actor or g.actor == view.actor_id or g.actor in view.ancestors

    def granted(self, kind: str, act: Mapping[str, Any]) -> bool:
        """Whether an instance of ``kind`` covers the request and has uses left."""
        found = self.answers.get(kind)
        if found is not None:
            return found
        decl = self.kinds.get(kind)
        covering: list[str] = []
        if decl is not None:
            view = self.view
            meets = target_matches(decl.selector, view.kind, view.target, view.target_roles)
            for g in self.records:
                if g.kind != kind:
                    continue
                left = g.uses_left
                ok = meets and left != 0 and self._actor_ok(g) and self._covers(decl, g, act)
                self.consulted.append({"id": g.id, "kind": g.kind, "covers": ok, "uses_left": left})
                if ok:
                    covering.append(g.id)
        if covering:
            self.relied[kind] = tuple(covering)
        answer = bool(covering)
        self.answers[kind] = answer
        return answer

    def _covers(self, decl: GrantKind, g: GrantRecord, act: Mapping[str, Any]) -> bool:
        if not decl.covers:
            return True
        scope = _with_grant(act, g.params)
        for check in decl.covers:
            got = check.fn(scope)
            if got is True:
                continue
            if isinstance(got, CelError):
                self.failures.append((f"grant {g.id} covers", got.message))
            return False
        return True

    def use_op(self) -> GrantUseOp | None:
        """The store op consuming one use per kind relied on (None: none relied on)."""
        if not self.relied:
            return None
        return GrantUseOp(f"run:{self.run}", tuple(self.relied[k] for k in sorted(self.relied)))


def _with_grant(act: Mapping[str, Any], params: Mapping[str, Any]) -> Mapping[str, Any]:
    """The activation with ``grant`` bound to an instance's params (the request's roots shared)."""
    # (Activation is imported at module level: an import statement here ran once per instance)
    if act.__class__ is Activation:
        scope = Activation(act)
        scope.view = act.view
        budget = getattr(act, "_budget", None)
        if budget is not None:
            scope._budget = budget
        scope["grant"] = params
        return scope
    out = dict(act)
    out["grant"] = params
    return out


def grant_table(policy: CompiledPolicy, view: Any) -> GrantTable | None:
    """The table ``granted()`` reads for this view (None: no run, or no grants)."""
    run = view.run
    grants = getattr(run, "grants", ()) if run is not None else ()
    if not grants or not policy.grant_kinds:
        return None
    return GrantTable(policy, view, grants)


def _check_run_id(run: Any, actor: Any, labels: Any) -> None:
    from charter.engine.validate import check_id, check_run_id
    from charter.errors import RequestError

    check_run_id(run)  # the one rule for run ids, as context.run has it
    if actor.__class__ is not str or actor:  # "": grants for any actor of the run
        check_id(actor, "actor")  # the one rule for ids, as actor.id has it
    if not isinstance(labels, (list, tuple, frozenset, set)) or len(labels) > MAX_VALUES:
        raise RequestError(f"labels must be a list of at most {MAX_VALUES} label names", "labels")
    for label in labels:
        check_id(label, "labels")  # label names, as action.labels has them


def run_begin(engine: Any, run: str, actor: str, grants: Sequence[Any], labels: Sequence[str]) -> Run:
    """``Engine.begin_run``: check every grant, store all or none, trace ``run-begin``."""
    from charter.engine.stateful import RUN_TTL_S

    _check_run_id(run, actor, labels)
    checked, problems = check_grants(engine.policy, grants)
    if problems:
        raise GrantError(problems)
    now = engine.clock()
    records = tuple(
        GrantRecord(f"g{i}", i, kind, params, limit, 0, actor, now)
        for i, (kind, params, limit) in enumerate(checked, start=1)
    )
    key = f"run:{run}"
    if not engine.store.begin_grants(key, records, frozenset(labels), now=now, ttl_s=RUN_TTL_S):
        raise GrantError([started_problem()])
    out = Run(run, actor, tuple(Grant.of(r) for r in records), engine.policy.revision)
    if engine.trace is not None:
        payload = {**out.to_dict(), "labels": sorted(labels), "at": now}
        try:
            engine.trace.record_event("run-begin", payload)
        except Exception:
            # a run whose grants cannot be traced keeps none (fail closed)
            engine.store.narrow_grants(key, [r.id for r in records], {}, now=now)
            raise
    return out


def run_narrow(engine: Any, run: str, revoke: Sequence[str], uses: Mapping[str, int]) -> Run:
    """``Engine.narrow_run``: revoke grants or lower their uses (never widen), trace ``run-narrow``."""
    from charter.errors import RequestError

    _check_run_id(run, "", ())
    if not isinstance(revoke, (list, tuple, set, frozenset)) or len(revoke) > MAX_GRANTS:
        raise RequestError(f"revoke must be a list of at most {MAX_GRANTS} grant ids", "revoke")
    if not all(isinstance(r, str) for r in revoke):
        raise RequestError("revoke lists grant ids such as g1", "revoke")
    if not isinstance(uses, Mapping) or len(uses) > MAX_GRANTS:
        raise RequestError(f"uses maps at most {MAX_GRANTS} grant ids to counts", "uses")
    for gid, n in uses.items():
        if not isinstance(gid, str) or isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise RequestError("uses maps grant ids to whole numbers >= 0", "uses")
    # A mistyped or unknown id would otherwise be a silent no-op that leaves the real grant live:
    # refuse it, writing nothing. Ids never appear after the run's grants are stored, so this
    # read cannot let anything widen; at worst it refuses an id a concurrent narrow just removed.
    known = {g.id for g in engine.store.run_state(f"run:{run}").grants}
    unknown = sorted({*revoke, *uses} - known)
    if unknown:
        raise RequestError(
            f"run {run!r} has no grant {', '.join(map(repr, unknown))} (unknown, or already revoked); "
            "nothing was changed",
            "revoke" if set(unknown) & set(revoke) else "uses",
        )
    now = engine.clock()
    left = engine.store.narrow_grants(f"run:{run}", list(revoke), dict(uses), now=now)
    actor = left[0].actor if left else ""
    out = Run(run, actor, tuple(Grant.of(r) for r in left), engine.policy.revision)
    if engine.trace is not None:
        payload = {**out.to_dict(), "revoke": sorted(revoke), "uses": dict(uses), "at": now}
        engine.trace.record_event("run-narrow", payload)
    return out
