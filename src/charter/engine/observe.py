"""Observers: what an engine tells coverage, telemetry and explainers as it decides (like OPA's QueryTracer).

An engine is given its observers when it is built (``Engine(policy, observers=[...])``) or later
with :meth:`charter.Engine.observe`; it calls them, in order, from the thread deciding. Nothing is
patched: an engine without observers pays one falsy check per decision. An observer that raises
makes ``decide`` raise (never an allow); a budget it had reserved is released.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from charter.engine.decision import Decision
    from charter.engine.evaluate import Verdict
    from charter.engine.policy import Condition, Rule
    from charter.engine.settle import Settlement
    from charter.engine.validate import ValidRequest
    from charter.engine.view import View


class Observer:
    """The events of deciding and settling; subclass and override what you need (each a no-op here).

    Thread safety is the observer's: an engine decides on many threads at once.
    """

    def decision_started(self, request: ValidRequest) -> Any:
        """A validated request is about to be decided; the value returned is given back to
        :meth:`decision_finished` (a span, a timer...). May set ``request.trace_id`` when it is None."""
        return None

    def rules_evaluated(self, view: View, candidates: Sequence[Rule], verdict: Verdict) -> None:
        """The rules the index selected for this request were evaluated into ``verdict``."""

    def conditions_evaluated(self, owner: Any, conditions: Sequence[Condition], view: View) -> None:
        """A boundary's or check's conditions (``owner``: a budget, rate, tripwire or result check)
        are being evaluated for this request."""

    def decision_finished(self, token: Any, request: ValidRequest, decision: Decision) -> None:
        """The decision is made (and recorded, when the engine keeps a trace)."""

    def decision_failed(self, token: Any, request: ValidRequest, error: BaseException) -> None:
        """Deciding raised (a bug: every expected failure is a decision that fails closed)."""

    def settled(self, settlement: Settlement) -> None:
        """A decision was settled (the checks after the action have run)."""


class Observers(Observer):
    """Several observers as one, each called in turn."""

    __slots__ = ("items",)

    def __init__(self, items: Sequence[Observer] = ()):
        self.items: tuple[Observer, ...] = tuple(items)

    def __bool__(self) -> bool:
        return bool(self.items)

    def add(self, observer: Observer) -> Observers:
        """These observers and one more (a new object: engines swap it in whole)."""
        return Observers((*self.items, observer))

    def decision_started(self, request: ValidRequest) -> Any:
        return [o.decision_started(request) for o in self.items]

    def rules_evaluated(self, view: View, candidates: Sequence[Rule], verdict: Verdict) -> None:
        for o in self.items:
            o.rules_evaluated(view, candidates, verdict)

    def conditions_evaluated(self, owner: Any, conditions: Sequence[Condition], view: View) -> None:
        for o in self.items:
            o.conditions_evaluated(owner, conditions, view)

    def decision_finished(self, token: Any, request: ValidRequest, decision: Decision) -> None:
        for o, t in zip(self.items, token, strict=True):
            o.decision_finished(t, request, decision)

    def decision_failed(self, token: Any, request: ValidRequest, error: BaseException) -> None:
        for o, t in zip(self.items, token, strict=True):
            o.decision_failed(t, request, error)

    def settled(self, settlement: Settlement) -> None:
        for o in self.items:
            o.settled(settlement)
