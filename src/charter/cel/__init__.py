"""charter.cel: CEL conditions compiled to fast, exact Python (the only user of cel-python)."""

from charter.cel.api import Compiled, compile_condition
from charter.cel.limits import Limits
from charter.cel.reference import reference_evaluate
from charter.cel.types import (
    CelCompileError,
    CelError,
    CelProblem,
    CelType,
    ProblemKind,
    UInt,
)

__all__ = [
    "CelCompileError",
    "CelError",
    "CelProblem",
    "CelType",
    "Compiled",
    "Limits",
    "ProblemKind",
    "UInt",
    "compile_condition",
    "reference_evaluate",
]
