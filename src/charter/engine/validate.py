"""The one request validator: every way in (Python API, sidecar, ``charter eval``, replay) ends here.

``validate_request`` turns a mapping (or a :class:`charter.Request` model) into a
:class:`ValidRequest` or raises :class:`charter.RequestError` naming the field. It runs in two
tiers that share every rule of this module:

- the **shape tier** (:func:`_common_shape`) validates the request shapes orchestrators send
  before every action with exact-class checks and no intermediate objects; for anything it does
  not recognise it answers "not mine" (``None``), never an error;
- the **model tier** validates everything else with the pydantic model of ``engine/request.py``
  (which also words the errors), then applies the same value rules.

INVARIANT: the shape tier accepts only what the model tier accepts, with an equal result
(tests/unit/test_validate.py compares both on generated requests, hostile values included).

The value rules (docs/security.md, "Request limits"): every number is finite (JSON has no NaN or
Infinity; a NaN in ``args.amount > 10000`` would make the comparison false and let a payment
through a gate); integers fit in 64 bits; strings, containers, nesting and the total number of
values are capped; a cost is a finite amount in ``[0, MAX_AMOUNT]``; every identifier (actor id,
roles, chain, human, target, label names, call id, workflow, tenant, env, approval, idempotency
key, trace id, a signal's source and kind) is an exact ``str`` of 1 to 256 printable characters
without a leading or trailing space (``request.id_ok``; run ids have more rules: ``run_id_ok``).
Whether a cost's unit is declared depends on the policy and is checked by the engine
(:func:`check_cost_units`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from charter.engine.provenance import Entry, check_call_id, check_provenance
from charter.engine.request import (
    MAX_ID,
    MAX_ITEMS,
    MAX_TRACE_ID,
    Request,
    check_id,
    id_ok,
    id_problem,
    id_rule,
    quoted,
)
from charter.enums import ActionKind
from charter.errors import RequestError, SettleError
from charter.jsonenc import compact_encoder
from charter.state.types import MAX_AMOUNT
from charter.text import SURROGATE, text_ok

__all__ = [
    "LIMITS",
    "MAX_AMOUNT",
    "RequestError",
    "RequestLimits",
    "ValidRequest",
    "check_amounts",
    "check_cost_units",
    "check_id",
    "check_run_id",
    "id_ok",
    "id_problem",
    "id_rule",
    "run_id_ok",
    "validate_request",
]


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """Bounds on one request (a request is untrusted input); docs/security.md lists them."""

    #: ids and names: actor id, target, roles, chain entries, context ids, units, labels
    max_id: int = MAX_ID
    #: entries of a list the request names things in: roles, chain, signals, labels, cost units
    max_items: int = MAX_ITEMS
    #: nesting of a JSON value in args, actor attributes or context
    max_depth: int = 32
    #: characters of one string in args, actor attributes or context
    max_string: int = 256 * 1024
    #: JSON values (scalars and containers) in args, actor attributes and context together
    max_values: int = 10_000
    #: characters of every string and key in args, actor attributes and context together (the
    #: sidecar's 1 MiB body limit, held in-process too)
    max_chars: int = 1024 * 1024


LIMITS = RequestLimits()
_MAX_STRING = LIMITS.max_string
#: flat values the shape tier checks inline; more (or any container) get the deep check
_INLINE_VALUES = 64
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1

_KINDS = {k.value: k for k in ActionKind}
_CALL = ActionKind.CALL
_TOP = frozenset({"actor", "action", "context", "cost", "signals", "approval", "idempotency_key", "trace_id"})
_ACTOR = frozenset({"id", "roles", "attributes", "chain", "human"})
_ACTION = frozenset({"kind", "target", "args", "labels", "call_id", "provenance"})
_CTX_IDS = ("workflow", "run", "tenant", "env")
_CTX_FIXED = frozenset(_CTX_IDS)
_SIGNAL = frozenset({"source", "kind", "severity", "score", "note"})
_EMPTY: dict[str, Any] = {}
_new = object.__new__

#: Canonical JSON of a request's digest: sorted keys, no spaces.
_canonical = compact_encoder(sort_keys=True, default=str, check_circular=False)


class ValidRequest:
    """A validated request, flattened for the decide pipeline. Built only by :func:`validate_request`.

    A value: nothing changes it after validation, except that telemetry may give a request
    without a ``trace_id`` the id of its span before anything is recorded.
    """

    __slots__ = (
        "actor_id",
        "approval",
        "args",
        "attributes",
        "call_id",
        "chain",
        "context_extra",
        "cost",
        "env",
        "human",
        "idempotency_key",
        "kind",
        "labels",
        "provenance",
        "roles",
        "run",
        "signals",
        "target",
        "tenant",
        "time",
        "trace_id",
        "workflow",
    )

    actor_id: str
    roles: tuple[str, ...]
    attributes: Mapping[str, Any]
    chain: tuple[str, ...]
    human: str | None
    kind: ActionKind
    target: str
    args: Mapping[str, Any]
    labels: Mapping[str, tuple[str, ...]]
    #: the orchestrator's id of this call (None: not given)
    call_id: str | None
    #: checked ``action.provenance`` (empty: none given; see charter.engine.provenance)
    provenance: Mapping[str, Entry | tuple[Entry, ...]]
    workflow: str | None
    run: str | None
    tenant: str | None
    env: str | None
    time: float | None
    context_extra: Mapping[str, Any]
    cost: Mapping[str, float]
    signals: tuple[Mapping[str, Any], ...]
    approval: str | None
    idempotency_key: str | None
    trace_id: str | None

    def model(self) -> Request:
        """The pydantic form (wire formats)."""
        return Request.model_validate(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready request (the shape of docs/schema/request.schema.json)."""
        ctx: dict[str, Any] = {k: getattr(self, k) for k in _CTX_IDS if getattr(self, k) is not None}
        if self.time is not None:
            from datetime import UTC, datetime

            ctx["time"] = datetime.fromtimestamp(self.time, UTC).isoformat()
        ctx.update(self.context_extra)
        return {
            "actor": {
                "id": self.actor_id,
                "roles": list(self.roles),
                "attributes": dict(self.attributes),
                "chain": list(self.chain),
                "human": self.human,
            },
            "action": {
                "kind": self.kind.value,
                "target": self.target,
                "args": dict(self.args),
                "labels": {k: list(v) for k, v in self.labels.items()},
                **self._provenance_dict(),
            },
            "context": ctx,
            "cost": dict(self.cost),
            "signals": [dict(s) for s in self.signals],
            "approval": self.approval,
            "idempotency_key": self.idempotency_key,
            "trace_id": self.trace_id,
        }

    def _provenance_dict(self) -> dict[str, Any]:
        """``call_id`` and ``provenance`` as given (absent when not given, so older digests hold)."""
        out: dict[str, Any] = {}
        if self.call_id is not None:
            out["call_id"] = self.call_id
        if self.provenance:
            out["provenance"] = {
                k: [e.to_dict() for e in v] if isinstance(v, tuple) else v.to_dict()
                for k, v in self.provenance.items()
            }
        return out

    def digest(self, *, binding: bool = False) -> str:
        """SHA-256 of the request's canonical JSON, without its ``trace_id`` (a retry may come
        from another span). ``binding``: also without what a resubmission legitimately changes
        (``context.time``, ``approval``, ``idempotency_key``): the digest an approval is bound to.

        INVARIANT: equal requests give equal digests; any difference in actor, roles, attributes,
        chain, action, arguments, labels, context, cost or signals gives another digest.
        """
        body = self.to_dict()
        body.pop("trace_id")
        if binding:
            body["context"].pop("time", None)
            body.pop("approval")
            body.pop("idempotency_key")
        return hashlib.sha256(_canonical(body).encode()).hexdigest()


# ---- value rules (both tiers) ---------------------------------------------------------------------


def value_problem(value: Any, where: str, limits: RequestLimits = LIMITS) -> tuple[str, str] | None:
    """The first problem of a JSON value from a request: ``(field, message)``, or None.

    Iterative (a hostile nesting cannot exhaust the interpreter's stack); counts every value.
    """
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    count = 0
    chars = 0
    while stack:
        v, path, depth = stack.pop()
        count += 1
        if count > limits.max_values:
            return path, f"more than {limits.max_values:,} values in a request"
        c = v.__class__
        if c is str:
            if len(v) > limits.max_string:
                return path, f"a string longer than {limits.max_string:,} characters"
            if not text_ok(v):
                return path, "a string with a lone surrogate (not Unicode text: no UTF-8 holds it)"
            chars += len(v)
            if chars > limits.max_chars:
                return path, f"more than {limits.max_chars:,} characters of text in a request"
        elif c is bool or v is None:
            continue
        elif c is int:
            if not _INT_MIN <= v <= _INT_MAX:
                return path, "an integer outside the 64-bit range"
        elif c is float:
            if v - v != 0.0:
                return path, "not a finite number (NaN and Infinity are not JSON numbers)"
        elif c is dict or c is list or c is tuple:
            if depth >= limits.max_depth:
                return path, f"nested deeper than {limits.max_depth} levels"
            if c is dict:
                for k, x in v.items():
                    if k.__class__ is not str:
                        return path, f"a key that is not a string ({type(k).__name__})"
                    if len(k) > limits.max_string:
                        return path, f"a key longer than {limits.max_string:,} characters"
                    if not text_ok(k):
                        return path, "a key with a lone surrogate (not Unicode text: no UTF-8 holds it)"
                    chars += len(k)
                    if chars > limits.max_chars:
                        return path, f"more than {limits.max_chars:,} characters of text in a request"
                    stack.append((x, f"{path}.{k}", depth + 1))
            else:
                for i, x in enumerate(v):
                    stack.append((x, f"{path}[{i}]", depth + 1))
        else:
            return path, f"a {type(v).__name__}, not a JSON value"
    return None


def _values_problem(req: ValidRequest) -> tuple[str, str] | None:
    """Args, attributes and context extras checked as one budget of values."""
    found = value_problem(
        {"action.args": req.args, "actor.attributes": req.attributes, "context": req.context_extra}, ""
    )
    if found is None:
        return None
    field, msg = found
    return field.lstrip("."), msg


def check_amounts(
    amounts: Any, where: str, error: type[RequestError] = RequestError, bare: bool = False
) -> dict[str, float]:
    """A cost (``{unit: amount}``): finite numbers in ``[0, MAX_AMOUNT]``, units short strings
    (``bare``: one amount without a unit, keyed by "")."""
    if not isinstance(amounts, Mapping):
        raise error(f"{where} must be a mapping of unit to amount, e.g. {{'USD': 12.5}}", where)
    if len(amounts) > LIMITS.max_items:
        raise error(f"{where} names more than {LIMITS.max_items} units", where)
    out: dict[str, float] = {}
    for unit, amount in amounts.items():
        field = where if bare else f"{where}.{unit}"
        if not bare and (not isinstance(unit, str) or not 0 < len(unit) <= LIMITS.max_id):
            raise error(f"{where}: a unit is a name of 1 to {LIMITS.max_id} characters", where)
        if amount.__class__ is bool or not isinstance(amount, int | float):
            raise error(f"{field}: an amount is a number, not {type(amount).__name__}", field)
        if isinstance(amount, float) and amount - amount != 0.0:
            raise error(f"{field}: an amount must be a finite number (not NaN or Infinity)", field)
        if amount < 0:
            raise error(f"{field}: an amount cannot be negative ({amount:g})", field)
        if amount > MAX_AMOUNT:
            raise error(f"{field}: an amount is at most {MAX_AMOUNT:,} ({amount:g} given)", field)
        out[unit] = float(amount)
    return out


def check_cost_units(
    cost: Mapping[str, float],
    units: frozenset[str],
    where: str = "cost",
    error: type[RequestError] = RequestError,
) -> None:
    """Every unit of a cost is declared by the policy (an undeclared unit would escape its budgets)."""
    for unit in cost:
        if unit not in units:
            declared = ", ".join(sorted(units)) or "none"
            raise error(
                f"{where}.{unit}: unit '{unit}' is not declared by the policy (declared: {declared})",
                f"{where}.{unit}",
            )


#: run ids that would be path segments of their own ("." and ".." in /v1/runs/{run})
_DOT_IDS = frozenset({".", ".."})
#: the rule, worded for errors (docs/security.md, "Request limits")
RUN_ID_RULE = (
    f"a run id is 1 to {MAX_ID} printable characters: no control or format characters, no '/', "
    "no leading or trailing space, not '.' or '..'"
)


def run_id_ok(run: str) -> bool:
    """Whether a text is a valid run id (the shape tier calls this; :func:`check_run_id` words it).

    Why the rule: a run id is a path segment of the sidecar's run routes (``/v1/runs/{run}``:
    a '/' or a dot segment could never be addressed there), a key in every store and a field of
    trace lines and CLI output (a control or bidi-format character would forge or hide text), and
    an id that differs from another only by surrounding spaces, or is blank, is a client bug.
    ``str.isprintable`` refuses Unicode categories C* and Z* except the ASCII space, so after it
    the only whitespace left is ' '.
    """
    return id_ok(run) and "/" not in run and run not in _DOT_IDS  # an identifier, and a path segment


def check_run_id(run: Any, where: str = "run", error: type[RequestError] = RequestError) -> str:
    """A run id from any entry (``context.run``, ``begin_run``, ``narrow_run``, ``import_run``,
    ``export_run``, the sidecar's ``/v1/runs/{run}``), or ``error`` naming ``where``."""
    if run.__class__ is not str:
        raise error(f"{where}: a run id is a text, not {type(run).__name__}", where)
    if not run_id_ok(run):
        raise error(f"{where}: {RUN_ID_RULE} (got {quoted(run)})", where)
    return run


def check_settlement(
    actual: Any, outcome: Any, labels: Any, units: frozenset[str]
) -> tuple[dict[str, float] | float | None, str, tuple[str, ...]]:
    """A settlement's actual cost, result and labels, validated (raises SettleError, changing nothing).

    The actual cost follows a request cost's rules: finite amounts in ``[0, MAX_AMOUNT]`` in units
    the policy declares; a bare number is an amount in the decision's unit.
    """
    if actual is None:
        amounts: dict[str, float] | float | None = None
    elif isinstance(actual, Mapping):
        amounts = check_amounts(actual, "actual_cost", SettleError)
        check_cost_units(amounts, units, "actual_cost", SettleError)
    else:
        amounts = check_amounts({"": actual}, "actual_cost", SettleError, bare=True)[""]
    if not isinstance(outcome, str) or not 0 < len(outcome) <= MAX_ID:
        raise SettleError(f"outcome must be a result name of 1 to {MAX_ID} characters", "outcome")
    if isinstance(labels, str) or not isinstance(labels, list | tuple) or len(labels) > MAX_ITEMS:
        raise SettleError(f"labels must be a list of at most {MAX_ITEMS} label names", "labels")
    for lab in labels:
        check_id(lab, "labels", SettleError)  # label names, as action.labels has them
    return amounts, outcome, tuple(labels)


# ---- the one entry point --------------------------------------------------------------------------


def validate_request(request: Any) -> ValidRequest:
    """Validate a request given as a mapping, a :class:`charter.Request` or a ValidRequest."""
    if request.__class__ is dict:
        found = _common_shape(request)
        if found is not None:
            return found
    elif isinstance(request, ValidRequest):
        return request
    elif isinstance(request, Request):
        request = request.model_dump(mode="python", exclude_none=False)
    elif not isinstance(request, Mapping):
        raise RequestError(f"a request must be a mapping, not {type(request).__name__}", "(request)")
    return _by_model(request)


def _by_model(request: Mapping[str, Any]) -> ValidRequest:
    """The model tier: pydantic words the shape errors; the value rules follow."""
    try:
        m = Request.model_validate(request)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(x) for x in first["loc"]) or "(request)"
        more = len(exc.errors()) - 1
        # a rule of this package (the identifier rule) is worded as it is, without pydantic's prefix
        said = first["ctx"]["error"] if first["type"] == "value_error" else first["msg"]
        msg = f"request field '{loc}': {said}"
        if more:
            msg += f" (and {more} more problem{'s' if more > 1 else ''})"
        raise RequestError(msg, loc) from None
    except RecursionError:
        raise RequestError(f"request nested deeper than {LIMITS.max_depth} levels", "(request)") from None
    r = _new(ValidRequest)
    a, act, ctx = m.actor, m.action, m.context
    r.actor_id, r.roles, r.attributes, r.chain, r.human = a.id, a.roles, a.attributes, a.chain, a.human
    r.kind, r.target, r.args, r.labels = act.kind, act.target, act.args, act.labels
    r.call_id = check_call_id(act.call_id)
    r.provenance = check_provenance(act.provenance, act.args)
    r.workflow, r.run, r.tenant, r.env = ctx.workflow, ctx.run, ctx.tenant, ctx.env
    if r.run is not None:
        check_run_id(r.run, "context.run")
    r.time = ctx.time.timestamp() if ctx.time is not None else None
    r.context_extra = dict(ctx.model_extra or {})
    r.cost = check_amounts(m.cost, "cost")
    r.signals = tuple(s.model_dump() for s in m.signals)
    r.approval, r.idempotency_key, r.trace_id = m.approval, m.idempotency_key, m.trace_id
    if r.time is not None and r.time - r.time != 0.0:
        raise RequestError("request field 'context.time': not a finite time", "context.time")
    problem = _values_problem(r)
    if problem is not None:
        field, msg = problem
        raise RequestError(f"request field '{field}': {msg}", field)
    return r


def _ids(v: Any) -> tuple[str, ...] | None:
    """A list of identifiers (roles, chain, labels) as a tuple, or None."""
    c = v.__class__
    if (c is not list and c is not tuple) or len(v) > MAX_ITEMS:
        return None
    for x in v:
        if x.__class__ is not str or (x not in _IDS and not _new_id(x)):
            return None
    return tuple(v)


def _scalars_ok(d: dict[str, Any]) -> int:
    """-1: a key that is not a string, or a number that breaks a value rule; 0: every key a
    string and every value a valid JSON scalar; 1: a container, more values than are checked
    inline, or more text than a quarter of the request's (the deep check, :func:`value_problem`,
    decides).

    INVARIANT: accepts only what :func:`value_problem` accepts (test_validate.py compares). A
    string or a key longer than LIMITS.max_string is over the text bound too, so the deep check
    words it; the three mappings (args, attributes, context) checked here hold less than
    LIMITS.max_chars together.
    """
    if len(d) > 64:
        return 1
    chars = 0
    for k, v in d.items():
        c = v.__class__
        if c is str:
            if not v.isascii() and SURROGATE.search(v) is not None:
                return -1
            chars += len(v)
        elif c is int:
            if not -9223372036854775808 <= v <= 9223372036854775807:
                return -1
        elif c is float:
            if v - v != 0.0:  # NaN or an infinity
                return -1
        elif c is not bool and v is not None:
            return 1
        if k.__class__ is not str or not (k.isascii() or SURROGATE.search(k) is None):
            return -1
        chars += len(k)
    return 1 if chars > 262144 else 0


_NO: Any = object()
#: identifiers (exact ``str``) the shape tier has found valid: a cache, never a record (bounded,
#: emptied when full). Why: the identifier rule (request.id_ok) costs ~1,000 instructions per id
#: checked inline (``str.isprintable`` walks every character; a ``str`` subscript for each end
#: costs ~350), a set lookup ~100, and orchestrators send the same few ids (agents, tools, roles,
#: envs) again and again. Only an exact ``str`` is looked up: a subclass could redefine equality.
_IDS: set[str] = set()
#: (at most ~4 MiB of ids of 256 characters; a caller that sends new ids all the time only makes
#: the shape tier check each one, as it would without the cache)
_IDS_MAX = 4096


def _new_id(v: str) -> bool:
    """Whether ``v`` (an exact ``str``) is a valid identifier; a valid one is remembered in _IDS."""
    if not id_ok(v):
        return False
    if len(_IDS) >= _IDS_MAX:
        _IDS.clear()
    _IDS.add(v)
    return True


assert (
    MAX_ID == 256 and MAX_TRACE_ID == 128 and LIMITS.max_string == 262144 and LIMITS.max_chars > 3 * 262144
), "the shape tier spells these limits out"


def _common_shape(d: dict[str, Any]) -> ValidRequest | None:
    """The shape tier: the common request shapes, or None ("not mine": the model tier decides).

    Written for the interpreter (this runs before every agent action): exact-class checks,
    limits as literal constants, subscripts in one try block, the common small shapes inline.
    """
    # Unknown keys: the top level's are refused in _rest, the actor's and the action's where
    # their keys are not counted (the common shapes are proved free of them by their length)
    try:
        actor = d["actor"]
        action = d["action"]
        if actor.__class__ is not dict or action.__class__ is not dict:
            return None
        aid = actor["id"]
        target = action["target"]
    except (KeyError, TypeError):
        return None
    # the identifier rule: an id seen valid is one set lookup (_IDS), a new one is checked once
    if (
        aid.__class__ is not str
        or target.__class__ is not str
        or (aid not in _IDS and not _new_id(aid))
        or (target not in _IDS and not _new_id(target))
    ):
        return None
    r = _new(ValidRequest)
    r.call_id, r.provenance = None, _EMPTY
    r.actor_id = aid
    r.target = target
    deep = False  # a container (or many values) in args, attributes or context: the deep check
    if len(actor) == 1:
        r.roles = r.chain = ()
        r.attributes = _EMPTY
        r.human = None
    else:
        get = actor.get
        roles = get("roles", _NO)
        if roles.__class__ is list and len(roles) == 1:  # the usual shape: one role
            role = roles[0]
            if role.__class__ is not str or (role not in _IDS and not _new_id(role)):
                return None
            r.roles = (role,)
        elif roles is _NO:
            r.roles = ()
        else:
            roles = _ids(roles)
            if roles is None:
                return None
            r.roles = roles
        attrs = get("attributes", _EMPTY)
        # (identity tests: a list compared with () costs two failed rich comparisons)
        if len(actor) == 1 + (roles is not _NO) + (attrs is not _EMPTY):  # no chain, no human: the usual
            r.chain = ()
            r.human = None
        else:
            if not _ACTOR.issuperset(actor):
                return None
            chain = get("chain", ())
            if chain:
                chain = _ids(chain)
                if chain is None:
                    return None
                r.chain = chain
            elif chain.__class__ is list or chain.__class__ is tuple:
                r.chain = ()
            else:
                return None
            human = get("human")
            if human is not None and (
                human.__class__ is not str or (human not in _IDS and not _new_id(human))
            ):
                return None
            r.human = human
        if attrs.__class__ is not dict:
            return None
        if attrs:
            ok = _scalars_ok(attrs)
            if ok:
                if ok < 0:
                    return None
                deep = True
        r.attributes = attrs
    if len(action) == 1:  # the target alone
        r.kind = _CALL
        r.args = r.labels = _EMPTY
    else:
        get = action.get
        kind = get("kind", _CALL)
        args = get("args", _EMPTY)
        if len(action) == 1 + (kind is not _CALL) + (args is not _EMPTY):
            labels = call_id = prov = _NO  # kind and args alone: the usual (three lookups less)
        else:
            labels = get("labels", _NO)
            call_id = get("call_id", _NO)
            prov = get("provenance", _NO)
            if len(action) != 1 + (kind is not _CALL) + (args is not _EMPTY) + (labels is not _NO) + (
                call_id is not _NO
            ) + (prov is not _NO) and not _ACTION.issuperset(action):
                return None
        if kind is not _CALL:
            kind = _KINDS.get(kind) if kind.__class__ is str else None
            if kind is None:
                return None
        r.kind = kind
        if args.__class__ is not dict:
            return None
        if args:
            ok = _scalars_ok(args)
            if ok:
                if ok < 0:
                    return None
                deep = True
        r.args = args
        if call_id is not _NO or prov is not _NO:
            # the one provenance checker (as the model tier calls it); a problem is the model
            # tier's to word
            try:
                r.call_id = check_call_id(None if call_id is _NO else call_id)
                if prov is not _NO and prov is not None:
                    r.provenance = check_provenance(prov, args)
            except RequestError:
                return None
        if labels is _NO:
            r.labels = _EMPTY
        elif labels.__class__ is not dict:
            return None
        elif labels:
            if len(labels) > 256:
                return None
            fixed = {}
            for k, v in labels.items():
                t = _ids(v)
                if t is None or k.__class__ is not str or len(k) > 262144:
                    return None
                fixed[k] = t
            r.labels = fixed
        else:
            r.labels = _EMPTY
    ctx = d.get("context", _NO)
    if ctx is _NO:
        r.workflow = r.run = r.tenant = r.env = None
        r.context_extra = _EMPTY
    elif ctx.__class__ is not dict:
        return None
    else:
        r.workflow = r.run = r.tenant = r.env = None
        extra = None
        for k, v in ctx.items():
            if k in _CTX_FIXED:
                if v is not None:
                    if v.__class__ is not str:
                        return None
                    # (a store per name, not setattr: fewer instructions)
                    if k == "run":
                        # a run id is new for each run (not cached); its rule implies the id rule
                        if not run_id_ok(v):
                            return None  # the model tier words it
                        r.run = v
                    elif v not in _IDS and not _new_id(v):
                        return None
                    elif k == "env":
                        r.env = v
                    elif k == "workflow":
                        r.workflow = v
                    else:
                        r.tenant = v
            elif k == "time" or k.__class__ is not str:
                return None  # datetimes: the model tier parses them
            else:
                if extra is None:
                    extra = {}
                extra[k] = v
        if extra:
            ok = _scalars_ok(extra)
            if ok:
                if ok < 0:
                    return None
                deep = True
            r.context_extra = extra
        else:
            r.context_extra = _EMPTY
    if deep and _values_problem(r) is not None:
        return None
    n = len(d)
    if n == 2 or (n == 3 and ctx is not _NO):
        r.approval = r.idempotency_key = r.trace_id = r.time = None
        r.cost = _EMPTY
        r.signals = ()
        return r
    return _rest(d, r)


def _rest(d: dict[str, Any], r: ValidRequest) -> ValidRequest | None:
    """The shape tier for the less common top-level fields: cost, signals, approval, key, trace id."""
    if not _TOP.issuperset(d):
        return None
    r.time = None
    cost = d.get("cost", _EMPTY)
    if cost.__class__ is not dict:
        return None
    if cost:
        if len(cost) > MAX_ITEMS:
            return None
        for k, v in cost.items():
            c = v.__class__
            if (
                k.__class__ is not str
                or not 0 < len(k) <= MAX_ID
                or (c is not int and c is not float)
                or not 0 <= v <= MAX_AMOUNT
            ):
                return None
        # as the model does for float fields: whole numbers become floats (CEL: 10.0 * 1.5 works)
        r.cost = {k: float(v) for k, v in cost.items()}
    else:
        r.cost = _EMPTY
    sigs = d.get("signals", ())
    if sigs:
        found = _signals(sigs)
        if found is None:
            return None
        r.signals = found
    elif sigs.__class__ is list or sigs.__class__ is tuple:
        r.signals = ()
    else:
        return None
    approval, key, tid = d.get("approval"), d.get("idempotency_key"), d.get("trace_id")
    for v in (approval, key):  # (new for each request: not cached)
        if v is not None and (v.__class__ is not str or not id_ok(v)):
            return None
    if tid is not None and (tid.__class__ is not str or not id_ok(tid, MAX_TRACE_ID)):
        return None
    r.approval, r.idempotency_key, r.trace_id = approval, key, tid
    return r


def _signals(sigs: Any) -> tuple[dict[str, Any], ...] | None:
    if sigs.__class__ not in (list, tuple) or len(sigs) > MAX_ITEMS:
        return None
    out = []
    for s in sigs:
        if s.__class__ is not dict or not _SIGNAL.issuperset(s):
            return None
        src, knd = s.get("source"), s.get("kind")
        sev, score, note = s.get("severity", "medium"), s.get("score", 0.0), s.get("note", "")
        if src.__class__ is not str or knd.__class__ is not str:
            return None
        if sev.__class__ is not str or note.__class__ is not str:
            return None
        c = score.__class__
        if (c is not int and c is not float) or score - score != 0:
            return None
        if len(sev) > 32 or len(note) > 4096 or not (text_ok(sev) and text_ok(note)):
            return None
        if (src not in _IDS and not _new_id(src)) or (knd not in _IDS and not _new_id(knd)):
            return None
        out.append({"source": src, "kind": knd, "severity": sev, "score": float(score), "note": note})
    return tuple(out)
