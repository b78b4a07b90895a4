"""Guard Python tools: decide before, run, settle the actual cost after (sync and async)."""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from charter.engine.decision import Decision
from charter.enums import Outcome
from charter.errors import Error
from charter.hits import reason_text, reasons_text

__all__ = [
    "ApprovalHandle",
    "ApprovalRequired",
    "Denied",
    "Escalated",
    "Guard",
    "GuardError",
    "Guarded",
    "Halted",
    "guard",
    "guarded",
]

F = TypeVar("F", bound=Callable[..., Any])
Cost = Mapping[str, float] | float | None


class GuardError(Error):
    """The action was not allowed; ``decision`` says why (None when a human answer ended it)."""

    def __init__(self, decision: Decision | None, message: str | None = None):
        reasons = reasons_text(decision.rules, decision.default_deny) if decision is not None else ""
        out = decision.outcome.value if decision is not None else "deny"
        if message is None:
            message = f"{out}: {reasons}" if reasons else out
        super().__init__(message)
        self.decision = decision

    @property
    def reasons(self) -> list[str]:
        """The human-readable reasons of the rules that decided."""
        return [reason_text(h) for h in self.decision.rules] if self.decision is not None else []


class Denied(GuardError):
    """The engine denied the action (or a human denied it, or the approval expired)."""


class Halted(GuardError):
    """The engine halted the action: a stop or a tripwire covers it."""


class Escalated(GuardError):
    """The action was escalated; ``escalation_id`` is the escalation to answer."""

    @property
    def escalation_id(self) -> str | None:
        esc = (self.decision.obligations.get("escalation") or {}) if self.decision is not None else {}
        return esc.get("id")


class ApprovalRequired(GuardError):
    """The action needs human approval; ``approval`` waits for it and resumes the action."""

    def __init__(self, decision: Decision, approval: ApprovalHandle):
        super().__init__(decision)
        self.approval = approval

    @property
    def approval_id(self) -> str:
        return self.approval.id


_TERMINAL = {
    "denied": "was denied",
    "expired": "expired",
    "redeemed": "was already used",
    "mismatch": "was given for a different action",
}


class ApprovalHandle:
    """A pending approval: ``wait()`` polls the engine, ``resume()`` resubmits with the approval id."""

    def __init__(
        self,
        backend: Any,
        approval_id: str,
        decision: Decision,
        rerun: Callable[[str], Any],
        arerun: Callable[[str], Awaitable[Any]] | None = None,
    ):
        self.backend = backend
        self.id = approval_id
        self.decision = decision
        self._rerun = rerun
        self._arerun = arerun

    def __repr__(self) -> str:
        return f"ApprovalHandle({self.id!r})"

    def status(self) -> str:
        """pending, approved, denied, expired or redeemed."""
        return str(self.backend.approvals.get(self.id)["status"])

    def _check(self, status: str) -> bool:
        if status == "approved":
            return True
        if status in _TERMINAL:
            raise Denied(None, f"approval {self.id} {_TERMINAL[status]}")
        return False

    def wait(self, timeout: float = 300.0, poll: float = 1.0) -> ApprovalHandle:
        """Block until approved (returns self); Denied if denied/expired; TimeoutError if still pending."""
        deadline = time.monotonic() + timeout
        while not self._check(self.status()):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"approval {self.id} still pending after {timeout:g} s")
            time.sleep(poll)
        return self

    async def wait_async(self, timeout: float = 300.0, poll: float = 1.0) -> ApprovalHandle:
        """Async :meth:`wait`."""
        deadline = time.monotonic() + timeout
        while not self._check(await asyncio.to_thread(self.status)):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"approval {self.id} still pending after {timeout:g} s")
            await asyncio.sleep(poll)
        return self

    def resume(self) -> Any:
        """Resubmit with the approval id: a guarded function runs again (its result is returned);
        a guarded block gets a new :class:`Guarded` carrying the approval (use it in ``with``)."""
        return self._rerun(self.id)

    async def resume_async(self) -> Any:
        """Async :meth:`resume`: awaits the rerun of an ``async def`` tool."""
        out = self._arerun(self.id) if self._arerun is not None else self._rerun(self.id)
        return await out if inspect.isawaitable(out) else out


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    return str(value)


class Guarded:
    """One guarded action: ``with`` / ``async with`` decides on entry, settles on exit.

    Set ``g.cost`` inside the block to settle with the actual cost (else the estimate stands);
    an exception in the block settles with outcome ``failure``.
    """

    def __init__(self, backend: Any, request: dict[str, Any], cost: Cost = None):
        self.backend = backend
        self.request = request
        self.cost: Cost = cost
        self.decision: Decision | None = None
        self.settlement: Any = None

    def with_approval(self, approval_id: str) -> Guarded:
        """The same action resubmitted with an approval (or escalation) id."""
        return Guarded(self.backend, {**self.request, "approval": approval_id}, self.cost)

    # ---- the steps ------------------------------------------------------------------------
    def check(
        self,
        decision: Decision,
        rerun: Callable[[str], Any] | None = None,
        arerun: Callable[[str], Awaitable[Any]] | None = None,
    ) -> Decision:
        """Raise the typed exception for anything but allow."""
        self.decision = decision
        o = decision.outcome
        if o is Outcome.ALLOW:
            return decision
        if o is Outcome.REQUIRE_APPROVAL and decision.obligations.get("approval_id"):
            handle = ApprovalHandle(
                self.backend,
                str(decision.obligations["approval_id"]),
                decision,
                rerun or self.with_approval,
                arerun,
            )
            raise ApprovalRequired(decision, handle)
        if o is Outcome.ESCALATE:
            raise Escalated(decision)
        if o is Outcome.HALT:
            raise Halted(decision)
        raise Denied(decision)

    def _settles(self) -> bool:
        d = self.decision
        return d is not None and bool(d.hold_id or (self.request.get("context") or {}).get("run"))

    def settle(self, failed: bool = False) -> Any:
        """Settle the allowed action (no-op when the engine keeps nothing to settle)."""
        if not self._settles() or self.decision is None:
            return None
        cost = dict(self.cost) if isinstance(self.cost, Mapping) else self.cost
        self.settlement = self.backend.settle(
            self.decision.id, actual_cost=cost, outcome="failure" if failed else "success"
        )
        return self.settlement

    # ---- context managers --------------------------------------------------------------------
    def __enter__(self) -> Guarded:
        self.check(self.backend.decide(self.request))
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.settle(failed=exc_type is not None)

    async def __aenter__(self) -> Guarded:
        self.check(await _adecide(self.backend, self.request))
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        await asyncio.to_thread(self.settle, exc_type is not None)


async def _adecide(backend: Any, request: Mapping[str, Any]) -> Decision:
    adecide = getattr(backend, "adecide", None)
    if adecide is not None:
        return await adecide(request)
    return await asyncio.to_thread(backend.decide, request)


def build_request(
    actor: str | Mapping[str, Any],
    target: str,
    args: Mapping[str, Any] | None = None,
    estimate: Mapping[str, float] | None = None,
    context: Mapping[str, Any] | None = None,
    kind: str = "call",
    **extra: Any,
) -> dict[str, Any]:
    """A decision request for one tool call."""
    req: dict[str, Any] = {
        "actor": {"id": actor} if isinstance(actor, str) else dict(actor),
        "action": {"kind": kind, "target": target, "args": _jsonable(dict(args or {}))},
    }
    if context:
        req["context"] = dict(context)
    if estimate:
        req["cost"] = dict(estimate)
    req.update({k: v for k, v in extra.items() if v is not None})
    return req


def guarded(
    backend: Any,
    actor: str | Mapping[str, Any],
    target: str,
    args: Mapping[str, Any] | None = None,
    *,
    estimate: Mapping[str, float] | None = None,
    context: Mapping[str, Any] | None = None,
    approval: str | None = None,
    **extra: Any,
) -> Guarded:
    """A context manager guarding one action (``with`` or ``async with``)."""
    return Guarded(backend, build_request(actor, target, args, estimate, context, approval=approval, **extra))


class Guard:
    """Binds a backend (an :class:`charter.Engine` or a :class:`charter.client.Client`) to an actor."""

    def __init__(
        self, backend: Any, actor: str | Mapping[str, Any], *, context: Mapping[str, Any] | None = None
    ):
        self.backend = backend
        self.actor = actor
        self.context = dict(context or {})

    def action(
        self,
        target: str,
        args: Mapping[str, Any] | None = None,
        *,
        estimate: Mapping[str, float] | None = None,
        approval: str | None = None,
        **extra: Any,
    ) -> Guarded:
        """A context manager for one action of this actor."""
        return guarded(
            self.backend,
            self.actor,
            target,
            args,
            estimate=estimate,
            context=self.context,
            approval=approval,
            **extra,
        )

    def __call__(
        self,
        fn: F | None = None,
        *,
        target: str | None = None,
        estimate: Mapping[str, float] | None = None,
        cost: Callable[[Any], Cost] | None = None,
        args: Callable[..., Mapping[str, Any]] | None = None,
    ) -> Any:
        """Decorate a tool: ``@g`` or ``@g(target="web.search", estimate={"USD": 0.02}, cost=...)``."""
        if fn is None:
            return lambda f: self(f, target=target, estimate=estimate, cost=cost, args=args)
        return _wrap(self, fn, target or fn.__name__, estimate, cost, args)


def _wrap(
    g: Guard,
    fn: Callable[..., Any],
    target: str,
    estimate: Mapping[str, float] | None,
    cost: Callable[[Any], Cost] | None,
    args_of: Callable[..., Mapping[str, Any]] | None,
) -> Any:
    sig = inspect.signature(fn)

    def call_args(a: tuple[Any, ...], kw: dict[str, Any]) -> Mapping[str, Any]:
        if args_of is not None:
            return args_of(*a, **kw)
        bound = sig.bind(*a, **kw)
        bound.apply_defaults()
        return {k: v for k, v in bound.arguments.items() if k not in ("self", "cls")}

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def arun(*a: Any, _charter_approval: str | None = None, **kw: Any) -> Any:
            ctx = g.action(target, call_args(a, kw), estimate=estimate, approval=_charter_approval)
            again = lambda aid: arun(*a, _charter_approval=aid, **kw)  # noqa: E731
            ctx.check(await _adecide(g.backend, ctx.request), again, again)
            try:
                result = await fn(*a, **kw)
            except BaseException:
                await asyncio.to_thread(ctx.settle, True)
                raise
            if cost is not None:
                ctx.cost = cost(result)
            await asyncio.to_thread(ctx.settle, False)
            return result

        return arun

    @functools.wraps(fn)
    def run(*a: Any, _charter_approval: str | None = None, **kw: Any) -> Any:
        ctx = g.action(target, call_args(a, kw), estimate=estimate, approval=_charter_approval)
        ctx.check(g.backend.decide(ctx.request), lambda aid: run(*a, _charter_approval=aid, **kw))
        try:
            result = fn(*a, **kw)
        except BaseException:
            ctx.settle(failed=True)
            raise
        if cost is not None:
            ctx.cost = cost(result)
        ctx.settle()
        return result

    return run


def guard(
    backend: Any,
    actor: str | Mapping[str, Any],
    *,
    target: str | None = None,
    estimate: Mapping[str, float] | None = None,
    cost: Callable[[Any], Cost] | None = None,
    context: Mapping[str, Any] | None = None,
    args: Callable[..., Mapping[str, Any]] | None = None,
) -> Callable[[F], F]:
    """Decorator: ``@guard(engine, "research-agent", target="web.search", cost=lambda r: r.usd)``."""
    return Guard(backend, actor, context=context)(target=target, estimate=estimate, cost=cost, args=args)
