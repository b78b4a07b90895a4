"""charter.cel: charter's own implementation of CEL (parse, check, compile to Python closures, evaluate)."""

from charter.cel.api import Compiled, compile_condition, compile_unchecked, define
from charter.cel.inline import Constant, Definition, Definitions
from charter.cel.limits import Limits
from charter.cel.types import (
    CelCompileError,
    CelError,
    CelProblem,
    CelType,
    ProblemKind,
    UInt,
)
from charter.cel.values import Duration, Optional, Timestamp, TypeValue

__all__ = [
    "CelCompileError",
    "CelError",
    "CelProblem",
    "CelType",
    "Compiled",
    "Constant",
    "Definition",
    "Definitions",
    "Duration",
    "Limits",
    "Optional",
    "ProblemKind",
    "Timestamp",
    "TypeValue",
    "UInt",
    "compile_condition",
    "compile_unchecked",
    "define",
]
