"""The root of charter's runtime errors and the errors callers of the engine catch; imports nothing internal.

Every exception charter raises on purpose derives from :class:`Error`, so ``except charter.Error``
catches them all. An error that callers already catch as a builtin also derives from that builtin
(``RequestError`` is a ``ValueError``, ``UnknownDecision`` a ``KeyError``), so existing ``except``
clauses keep working. The rest of the hierarchy lives beside the code that raises it:

- ``charter.CharterError`` (diagnostics): a policy that does not compile, with its diagnostics.
- ``charter.state.StoreError``: a state store failure (the engine fails closed on it).
- ``charter.trace.TraceError``: a trace log that cannot be opened or written.
- ``charter.approvals.HumanError``: a human answer that is refused (not an approver, expired …).
- ``charter.engine.evaluate.ConditionError``: a condition that gave no boolean (recorded, fail closed).
"""

from __future__ import annotations

__all__ = ["Error", "RequestError", "SettleError", "UnknownDecision", "UnknownRun"]


class Error(Exception):
    """The root of every error charter raises on purpose (``except charter.Error`` catches them all)."""


class RequestError(Error, ValueError):
    """A malformed request: the message says what is wrong, ``field`` names where (``action.args.amount``).

    Raised before anything is decided or stored: a request that fails validation changes no state.
    """

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class SettleError(RequestError):
    """A settlement that cannot be applied as given (an actual cost that is negative, not finite,
    out of range or in a unit the policy does not declare). Nothing was committed; the decision can
    still be settled with a valid settlement."""


class RunImportError(Error):
    """A malformed import of a run's history (``Engine.import_run``): nothing was written.
    ``index`` is the offending event (None: the import as a whole). 400 over HTTP."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message if index is None else f"events[{index}]: {message}")
        self.index = index


class UnknownDecision(Error, KeyError):
    """``settle`` of a decision this engine (and the store it shares) does not know, or that was
    already settled. Also a ``KeyError`` for callers that caught one before; the sidecar catches this
    class only, so a real ``KeyError`` bug never reads as "unknown decision"."""

    def __init__(self, decision_id: str):
        super().__init__(f"unknown or already settled decision {decision_id!r}")
        self.decision_id = decision_id

    def __str__(self) -> str:
        return str(self.args[0])  # KeyError's own __str__ would quote the message


class UnknownRun(Error, LookupError):
    """``export_run`` of a run the store has nothing of (no step, grant or label: never begun, a
    mistyped id, expired, or kept by another store). 404 over HTTP. An empty export would let a
    resumed run start without its history, so the rules that read it would stop firing."""

    def __init__(self, run: str):
        super().__init__(
            f"no run {run!r} in this store (no recorded step, grant or label): check the id, and "
            "export from the store the run was decided on"
        )
        self.run = run

    def __str__(self) -> str:
        return str(self.args[0])
