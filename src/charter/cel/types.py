"""The CEL type model (CelType), runtime value helpers (UInt, CelError) and compile problems."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from charter.errors import Error

_UINT_MAX = 2**64 - 1


class UInt(int):
    """A CEL ``uint`` value (0 .. 2**64-1); a plain ``int`` is a CEL ``int``."""

    def __new__(cls, value: Any = 0) -> UInt:
        v = int(value)
        if not 0 <= v <= _UINT_MAX:
            raise ValueError(f"uint out of range: {v}")
        return super().__new__(cls, v)

    def __repr__(self) -> str:
        return f"UInt({int(self)})"


@dataclass(frozen=True, slots=True)
class CelError:
    """An evaluation error, returned as a value (never raised at the API boundary)."""

    message: str

    def __repr__(self) -> str:
        return f"CelError({self.message!r})"


@dataclass(frozen=True)
class CelType:
    """A static CEL type: a primitive, LIST(elem), MAP(key, val), OBJECT(fields, open) or DYN.

    Also TYPE (the type of type values), OPTIONAL(elem), PARAM(name) (a type parameter in a
    function signature) and OPAQUE(name) (``net.IP``, ``net.CIDR``).
    """

    kind: str
    elem: CelType | None = None
    key: CelType | None = None
    val: CelType | None = None
    fields: Mapping[str, CelType] | None = field(default=None, hash=False, compare=False)
    open: bool = False
    name: str = ""
    #: Fields of an OBJECT that only some requests have: field -> who has it (for the message).
    partial: Mapping[str, str] | None = field(default=None, hash=False, compare=False)

    INT: ClassVar[CelType]
    UINT: ClassVar[CelType]
    DOUBLE: ClassVar[CelType]
    STRING: ClassVar[CelType]
    BYTES: ClassVar[CelType]
    BOOL: ClassVar[CelType]
    NULL: ClassVar[CelType]
    TIMESTAMP: ClassVar[CelType]
    DURATION: ClassVar[CelType]
    DYN: ClassVar[CelType]
    TYPE: ClassVar[CelType]

    # factory helpers for composite types
    @staticmethod
    def LIST(elem: CelType) -> CelType:
        return CelType("list", elem=elem)

    @staticmethod
    def MAP(key: CelType, val: CelType) -> CelType:
        return CelType("map", key=key, val=val)

    @staticmethod
    def OBJECT(
        fields: Mapping[str, CelType], open: bool = False, partial: Mapping[str, str] | None = None
    ) -> CelType:
        return CelType("object", fields=dict(fields), open=open, partial=dict(partial) if partial else None)

    @staticmethod
    def OPTIONAL(elem: CelType) -> CelType:
        return CelType("optional", elem=elem)

    @staticmethod
    def PARAM(name: str) -> CelType:
        return CelType("param", name=name)

    @staticmethod
    def OPAQUE(name: str) -> CelType:
        return CelType("opaque", name=name)

    def __str__(self) -> str:
        if self.kind == "optional":
            return f"optional({self.elem})"
        if self.kind in ("param", "opaque"):
            return self.name
        if self.kind == "list":
            return f"list({self.elem})"
        if self.kind == "map":
            return f"map({self.key}, {self.val})"
        if self.kind == "object":
            return "object"
        return self.kind

    @property
    def is_dyn(self) -> bool:
        return self.kind == "dyn"


CelType.INT = CelType("int")
CelType.UINT = CelType("uint")
CelType.DOUBLE = CelType("double")
CelType.STRING = CelType("string")
CelType.BYTES = CelType("bytes")
CelType.BOOL = CelType("bool")
CelType.NULL = CelType("null_type")
CelType.TIMESTAMP = CelType("timestamp")
CelType.DURATION = CelType("duration")
CelType.DYN = CelType("dyn")
CelType.TYPE = CelType("type")

INT: CelType = CelType.INT
UINT: CelType = CelType.UINT
DOUBLE: CelType = CelType.DOUBLE
STRING: CelType = CelType.STRING
BYTES: CelType = CelType.BYTES
BOOL: CelType = CelType.BOOL
NULL: CelType = CelType.NULL
TIMESTAMP: CelType = CelType.TIMESTAMP
DURATION: CelType = CelType.DURATION
DYN: CelType = CelType.DYN
TYPE: CelType = CelType.TYPE


class ProblemKind(enum.Enum):
    """What kind of compile-time problem a CEL condition has."""

    SYNTAX = "syntax"
    UNKNOWN_NAME = "unknown_name"
    TYPE = "type"
    TOO_COMPLEX = "too_complex"
    UNSUPPORTED = "unsupported"
    NOT_BOOL = "not_bool"
    BAD_CALL = "bad_call"
    """A function applied to arguments none of its overloads takes."""
    BAD_PATTERN = "bad_pattern"
    """A literal regular expression RE2 does not accept."""
    UNGUARDED = "unguarded"
    """A field only some of the possible requests have, read without a has() test."""


@dataclass(frozen=True, slots=True)
class CelProblem:
    """One compile-time problem, with character offsets into the condition text."""

    kind: ProblemKind
    message: str
    start: int
    end: int
    help: str | None = None


class CelCompileError(Error):
    """Raised by compile_condition when the condition cannot be compiled."""

    def __init__(self, problems: list[CelProblem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems
