"""The engine's internal request: validated fast for common shapes, by pydantic for everything else."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from charter.engine.request import MAX_ID, MAX_ITEMS, Request
from charter.enums import ActionKind

_KINDS = {k.value: k for k in ActionKind}
_CALL = ActionKind.CALL
_TOP = frozenset({"actor", "action", "context", "cost", "signals", "approval", "idempotency_key", "trace_id"})
_ACTOR = frozenset({"id", "roles", "attributes", "chain", "human"})
_ACTION = frozenset({"kind", "target", "args", "labels"})
_CTX_FIXED = ("workflow", "run", "tenant", "env")
_SIGNAL = frozenset({"source", "kind", "severity", "score", "note"})
_EMPTY: dict[str, Any] = {}


class RequestError(ValueError):
    """A malformed request; the message names the offending field."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class Req:
    """A validated request, flattened for the hot path. Built by :func:`parse_request`."""

    __slots__ = (
        "_model",
        "actor_id",
        "approval",
        "args",
        "attributes",
        "chain",
        "context_extra",
        "cost",
        "env",
        "human",
        "idempotency_key",
        "kind",
        "labels",
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

    _model: Request | None

    def model(self) -> Request:
        """The pydantic form (for traces and wire formats)."""
        if self._model is None:
            self._model = Request.model_validate(self.to_dict())
        return self._model

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready request (the shape of docs/schema/request.schema.json)."""
        ctx: dict[str, Any] = {k: getattr(self, k) for k in _CTX_FIXED if getattr(self, k) is not None}
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
            },
            "context": ctx,
            "cost": dict(self.cost),
            "signals": [dict(s) for s in self.signals],
            "approval": self.approval,
            "idempotency_key": self.idempotency_key,
            "trace_id": self.trace_id,
        }


def _short(v: Any) -> bool:
    return type(v) is str and 0 < len(v) <= MAX_ID


def _opt_short(v: Any) -> bool:
    return v is None or (type(v) is str and len(v) <= MAX_ID)


def _str_tuple(v: Any) -> tuple[str, ...] | None:
    if type(v) not in (list, tuple) or len(v) > MAX_ITEMS:
        return None
    for x in v:
        if type(x) is not str or len(x) > MAX_ID:
            return None
    return tuple(v)


def _fast(d: Mapping[str, Any]) -> Req | None:
    """Validate the common request shapes without pydantic; None means 'use the full validator'.

    INVARIANT: accepts only inputs pydantic accepts too, with the same result; anything unusual
    (other types, str subclasses, datetimes, extra keys) goes to pydantic, which also words the
    errors. Written for the interpreter: exact-class checks, subscripts in one try block, and
    the common small shapes inline (this runs before every agent action).
    """
    try:
        if d.__class__ is not dict or not _TOP.issuperset(d):
            return None
        actor = d["actor"]
        action = d["action"]
        if (
            actor.__class__ is not dict
            or action.__class__ is not dict
            or not _ACTOR.issuperset(actor)
            or not _ACTION.issuperset(action)
        ):
            return None
        aid = actor["id"]
        target = action["target"]
    except (KeyError, TypeError):
        return None
    if aid.__class__ is not str or not aid or len(aid) > MAX_ID:
        return None
    if target.__class__ is not str or not target or len(target) > MAX_ID:
        return None
    r = _new(Req)
    r.actor_id = aid
    r.target = target
    if len(actor) == 1:
        r.roles = r.chain = ()
        r.attributes = _EMPTY
        r.human = None
    else:
        get = actor.get
        roles = get("roles", ())
        if roles == ():
            r.roles = ()
        elif roles.__class__ is list and len(roles) == 1:
            # the usual shape: one role
            role = roles[0]
            if role.__class__ is not str or len(role) > MAX_ID:
                return None
            r.roles = (role,)
        else:
            roles = _str_tuple(roles)
            if roles is None:
                return None
            r.roles = roles
        chain = get("chain", ())
        if chain:
            chain = _str_tuple(chain)
            if chain is None:
                return None
            r.chain = chain
        elif chain.__class__ is list or chain.__class__ is tuple:
            r.chain = ()
        else:
            return None
        attrs = get("attributes", _EMPTY)
        human = get("human")
        if attrs.__class__ is not dict or (
            human is not None and (human.__class__ is not str or len(human) > MAX_ID)
        ):
            return None
        r.attributes = attrs
        r.human = human
    if len(action) == 1:  # the target alone
        r.kind = _CALL
        r.args = r.labels = _EMPTY
    else:
        get = action.get
        kind = get("kind", _CALL)
        if kind is _CALL:
            r.kind = _CALL
        else:
            kind = _KINDS.get(kind) if kind.__class__ is str else None
            if kind is None:
                return None
            r.kind = kind
        args = get("args", _EMPTY)
        if args.__class__ is not dict:
            return None
        r.args = args
        labels = get("labels", _EMPTY)
        if labels.__class__ is not dict:
            return None
        if labels:
            fixed = {}
            for k, v in labels.items():
                t = _str_tuple(v)
                if t is None or k.__class__ is not str:
                    return None
                fixed[k] = t
            r.labels = fixed
        else:
            r.labels = _EMPTY
    r.approval = r.idempotency_key = r.trace_id = r._model = r.time = None
    r.cost = r.context_extra = _EMPTY
    r.signals = ()
    ctx = d.get("context", _EMPTY)
    if ctx.__class__ is not dict:
        return None
    if ctx:
        extra = None
        for k, v in ctx.items():
            if k in _CTX_FIXED:
                if v is not None and (v.__class__ is not str or len(v) > MAX_ID):
                    return None
            elif k == "time":
                return None  # datetimes: let pydantic parse them
            else:
                if extra is None:
                    extra = {}
                extra[k] = v
        get = ctx.get
        r.workflow, r.run, r.tenant, r.env = get("workflow"), get("run"), get("tenant"), get("env")
        if extra:
            r.context_extra = extra
    else:
        r.workflow = r.run = r.tenant = r.env = None
    n = len(d)
    if n == 2 or (n == 3 and "context" in d):
        return r
    cost = d.get("cost", _EMPTY)
    if cost.__class__ is not dict:
        return None
    if cost:
        for k, v in cost.items():
            if k.__class__ is not str or v.__class__ not in (int, float) or not (0 <= v < math.inf):
                return None
        # as pydantic does for float fields: whole numbers become floats (CEL: 10.0 * 1.5 works)
        r.cost = {k: float(v) for k, v in cost.items()}
    sigs = d.get("signals", ())
    if sigs:
        sigs_ok = _signals(sigs)
        if sigs_ok is None:
            return None
        r.signals = sigs_ok
    elif sigs.__class__ is not list and sigs.__class__ is not tuple:
        return None
    for name in ("approval", "idempotency_key"):
        if not _opt_short(d.get(name)):
            return None
    tid = d.get("trace_id")
    if tid is not None and (tid.__class__ is not str or len(tid) > 128):
        return None
    r.approval, r.idempotency_key, r.trace_id = d.get("approval"), d.get("idempotency_key"), tid
    return r


_new = object.__new__


def _signals(sigs: Any) -> tuple[dict[str, Any], ...] | None:
    if type(sigs) not in (list, tuple) or len(sigs) > MAX_ITEMS:
        return None
    out = []
    for s in sigs:
        if type(s) is not dict or not _SIGNAL.issuperset(s):
            return None
        src, knd = s.get("source"), s.get("kind")
        sev, score, note = s.get("severity", "medium"), s.get("score", 0.0), s.get("note", "")
        if type(src) is not str or type(knd) is not str or type(sev) is not str or type(note) is not str:
            return None
        if (
            type(score) not in (int, float)
            or len(src) > MAX_ID
            or len(knd) > MAX_ID
            or len(sev) > 32
            or len(note) > 4096
        ):
            return None
        out.append({"source": src, "kind": knd, "severity": sev, "score": float(score), "note": note})
    return tuple(out)


def from_model(m: Request) -> Req:
    """The internal form of a validated pydantic request."""
    r = Req.__new__(Req)
    a, act, ctx = m.actor, m.action, m.context
    r.actor_id, r.roles, r.attributes, r.chain, r.human = a.id, a.roles, a.attributes, a.chain, a.human
    r.kind, r.target, r.args, r.labels = act.kind, act.target, act.args, act.labels
    r.workflow, r.run, r.tenant, r.env = ctx.workflow, ctx.run, ctx.tenant, ctx.env
    r.time = ctx.time.timestamp() if ctx.time is not None else None
    r.context_extra = dict(ctx.model_extra or {})
    r.cost = m.cost
    r.signals = tuple(s.model_dump() for s in m.signals)
    r.approval, r.idempotency_key, r.trace_id = m.approval, m.idempotency_key, m.trace_id
    r._model = m
    return r


def parse_request(request: Request | Req | Mapping[str, Any]) -> Req:
    """Validate a request given as a mapping or a model; errors name the field."""
    if isinstance(request, Req):
        return request
    if isinstance(request, Request):
        return from_model(request)
    if not isinstance(request, Mapping):
        raise RequestError(f"a request must be a mapping, not {type(request).__name__}")
    fast = _fast(request)
    if fast is not None:
        return fast
    return validated(request)


def validated(request: Mapping[str, Any]) -> Req:
    """Validate a mapping with the pydantic model (the errors name the field)."""
    try:
        return from_model(Request.model_validate(request))
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(x) for x in first["loc"]) or "(request)"
        more = len(exc.errors()) - 1
        msg = f"request field '{loc}': {first['msg']}"
        if more:
            msg += f" (and {more} more problem{'s' if more > 1 else ''})"
        raise RequestError(msg, loc) from None
