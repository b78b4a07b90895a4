"""charter: a declarative policy-as-code boundary engine for orchestrated AI agents."""

from charter.api import Policy, check, load, loads
from charter.diagnostics import CharterError, Diagnostic
from charter.engine.decision import Decision
from charter.engine.engine import Engine, Settlement
from charter.engine.request import Request
from charter.enums import Outcome
from charter.errors import Error, RequestError, RunImportError, SettleError, UnknownDecision, UnknownRun

__version__ = "0.1.0"

__all__ = [
    "CharterError",
    "Decision",
    "Diagnostic",
    "Engine",
    "Error",
    "Outcome",
    "Policy",
    "Request",
    "RequestError",
    "RunImportError",
    "SettleError",
    "Settlement",
    "UnknownDecision",
    "UnknownRun",
    "__version__",
    "check",
    "load",
    "loads",
]
