"""CEL's runtime values beyond plain Python: timestamps, durations, types, optionals, and errors.

Plain Python values stand for most CEL values: ``bool``, ``int`` (CEL ``int``), :class:`UInt`,
``float`` (``double``), ``str``, ``bytes``, ``None`` (``null``), ``list`` and ``dict``. What Python
has no exact match for is defined here: :class:`Timestamp` and :class:`Duration` with nanosecond
precision and the spec's ranges (langdef "Timestamps and durations"), :class:`TypeValue` (the
value of ``type(x)`` and of type names such as ``int``) and :class:`Optional` (cel-go optionals).
"""

from __future__ import annotations

import datetime
from typing import Any

from charter.cel.types import UInt
from charter.errors import Error

INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
UINT_MAX = 2**64 - 1

#: Seconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z since the Unix epoch.
TS_MIN = -62135596800
TS_MAX = 253402300799
#: The largest duration, in seconds (about 10,000 years, as cel-go and google.protobuf.Duration).
DUR_MAX_S = 315576000000
_NS = 1_000_000_000
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


class EvalError(Error):
    """A CEL evaluation error (langdef "Runtime errors"): absorbed by && / || and macros, else final."""

    __slots__ = ()

    @property
    def message(self) -> str:
        """The error's text."""
        return str(self.args[0]) if self.args else "error"


class CostExceeded(Error):
    """The evaluation's cost budget is spent; never absorbed: the whole evaluation fails."""


def _fraction(nanos: int) -> str:
    """Nanoseconds as protobuf's JSON mapping writes a fraction: 3, 6 or 9 digits."""
    frac = f"{nanos:09d}"
    return frac[:3] if frac.endswith("000000") else frac[:6] if frac.endswith("000") else frac


class Timestamp:
    """A point in time: whole seconds since the Unix epoch (UTC) and nanoseconds."""

    __slots__ = ("nanos", "seconds")

    def __init__(self, seconds: int, nanos: int = 0) -> None:
        seconds += nanos // _NS
        nanos %= _NS
        if not TS_MIN <= seconds <= TS_MAX:
            raise EvalError("timestamp out of range")
        self.seconds = seconds
        self.nanos = nanos

    @classmethod
    def from_datetime(cls, d: datetime.datetime) -> Timestamp:
        """The timestamp of an aware datetime (a naive one is taken as UTC)."""
        if d.tzinfo is None:
            d = d.replace(tzinfo=datetime.UTC)
        delta = d - _EPOCH
        return cls(delta.days * 86400 + delta.seconds, delta.microseconds * 1000)

    def to_datetime(self) -> datetime.datetime:
        """The UTC datetime (microsecond precision: Python's datetime has no nanoseconds)."""
        return _EPOCH + datetime.timedelta(seconds=self.seconds, microseconds=self.nanos // 1000)

    def total_nanos(self) -> int:
        """Nanoseconds since the epoch."""
        return self.seconds * _NS + self.nanos

    def _key(self) -> tuple[int, int]:
        return (self.seconds, self.nanos)

    def __eq__(self, other: object) -> bool:
        return type(other) is Timestamp and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(("ts", self.seconds, self.nanos))

    def __lt__(self, other: Timestamp) -> bool:
        return self._key() < other._key()

    def __le__(self, other: Timestamp) -> bool:
        return self._key() <= other._key()

    def __gt__(self, other: Timestamp) -> bool:
        return self._key() > other._key()

    def __ge__(self, other: Timestamp) -> bool:
        return self._key() >= other._key()

    def __str__(self) -> str:
        d = _EPOCH + datetime.timedelta(seconds=self.seconds)
        text = f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}"
        if self.nanos:
            text += "." + _fraction(self.nanos)
        return text + "Z"

    def __repr__(self) -> str:
        return f"Timestamp({self})"


class Duration:
    """A signed length of time in nanoseconds, within ±315,576,000,000 seconds."""

    __slots__ = ("nanos",)

    def __init__(self, nanos: int) -> None:
        if not -DUR_MAX_S * _NS - (_NS - 1) <= nanos <= DUR_MAX_S * _NS + (_NS - 1):
            raise EvalError("duration out of range")
        self.nanos = nanos

    @classmethod
    def from_timedelta(cls, d: datetime.timedelta) -> Duration:
        """The duration of a timedelta."""
        return cls(((d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds) * 1000)

    def to_timedelta(self) -> datetime.timedelta:
        """The timedelta (microsecond precision)."""
        return datetime.timedelta(microseconds=int(self.nanos / 1000))

    def __eq__(self, other: object) -> bool:
        return type(other) is Duration and self.nanos == other.nanos

    def __hash__(self) -> int:
        return hash(("dur", self.nanos))

    def __lt__(self, other: Duration) -> bool:
        return self.nanos < other.nanos

    def __le__(self, other: Duration) -> bool:
        return self.nanos <= other.nanos

    def __gt__(self, other: Duration) -> bool:
        return self.nanos > other.nanos

    def __ge__(self, other: Duration) -> bool:
        return self.nanos >= other.nanos

    def __str__(self) -> str:
        sign = "-" if self.nanos < 0 else ""
        s, ns = divmod(abs(self.nanos), _NS)
        if not ns:
            return f"{sign}{s}s"
        return f"{sign}{s}.{_fraction(ns)}s"

    def __repr__(self) -> str:
        return f"Duration({self})"


class TypeValue:
    """A CEL type as a value: what ``type(x)`` gives and what type names such as ``int`` denote."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        return type(other) is TypeValue and self.name == other.name

    def __hash__(self) -> int:
        return hash(("type", self.name))

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"TypeValue({self.name!r})"


class Optional:
    """An optional value (cel-go ``optional_type``): ``optional.of(v)`` or ``optional.none()``."""

    __slots__ = ("present", "value")

    def __init__(self, value: Any = None, present: bool = True) -> None:
        self.value = value
        self.present = present

    def __eq__(self, other: object) -> bool:
        if type(other) is not Optional or self.present != other.present:
            return False
        from charter.cel.stdlib import equals

        return not self.present or equals(self.value, other.value)

    def __hash__(self) -> int:
        return hash(("optional", self.present))

    def __repr__(self) -> str:
        return f"optional.of({self.value!r})" if self.present else "optional.none()"


NONE = Optional(None, False)

#: Type names (langdef "Types"; google.protobuf names for timestamps and durations).
T_INT = TypeValue("int")
T_UINT = TypeValue("uint")
T_DOUBLE = TypeValue("double")
T_BOOL = TypeValue("bool")
T_STRING = TypeValue("string")
T_BYTES = TypeValue("bytes")
T_LIST = TypeValue("list")
T_MAP = TypeValue("map")
T_NULL = TypeValue("null_type")
T_TYPE = TypeValue("type")
T_TIMESTAMP = TypeValue("google.protobuf.Timestamp")
T_DURATION = TypeValue("google.protobuf.Duration")
T_OPTIONAL = TypeValue("optional_type")

TYPE_NAMES: dict[str, TypeValue] = {
    t.name: t
    for t in (T_INT, T_UINT, T_DOUBLE, T_BOOL, T_STRING, T_BYTES, T_LIST, T_MAP, T_NULL, T_TYPE,
              T_TIMESTAMP, T_DURATION, T_OPTIONAL, TypeValue("net.IP"), TypeValue("net.CIDR"),
              TypeValue("kubernetes.URL"))
}  # fmt: skip

_TYPE_OF: dict[type, TypeValue] = {
    bool: T_BOOL,
    int: T_INT,
    UInt: T_UINT,
    float: T_DOUBLE,
    str: T_STRING,
    bytes: T_BYTES,
    list: T_LIST,
    tuple: T_LIST,
    dict: T_MAP,
    type(None): T_NULL,
    TypeValue: T_TYPE,
    Timestamp: T_TIMESTAMP,
    Duration: T_DURATION,
    Optional: T_OPTIONAL,
}


def type_of(v: Any) -> TypeValue:
    """The CEL type of a runtime value."""
    found = _TYPE_OF.get(type(v))
    if found is not None:
        return found
    name = getattr(v, "cel_type_name", None)
    if name is not None:
        return TypeValue(name)
    raise EvalError(f"unsupported value of Python type {type(v).__name__}")


def kind_name(v: Any) -> str:
    """The CEL type name of a value, for messages (the Python type's for a foreign value)."""
    try:
        return type_of(v).name
    except EvalError:
        return type(v).__name__


#: Python types that are CEL values as they are (anything else is normalised on reading; an
#: ``int`` is too, to check it is within int64).
PLAIN = frozenset({bool, UInt, float, str, bytes, list, dict, type(None), Timestamp, Duration,
                   TypeValue, Optional})  # fmt: skip


def normalise(v: Any) -> Any:
    """A value from the activation as a CEL value (datetimes, tuples ...); errors for others."""
    t = type(v)
    if t is int:
        if INT_MIN <= v <= INT_MAX:
            return v
        raise EvalError(f"the number {v} is out of range (int64)")
    if t in PLAIN or hasattr(v, "cel_type_name"):
        return v
    if t is tuple:
        return list(v)
    if isinstance(v, datetime.datetime):
        return Timestamp.from_datetime(v)
    if isinstance(v, datetime.timedelta):
        return Duration.from_timedelta(v)
    if isinstance(v, bool):
        return bool(v)
    if isinstance(v, int):
        return normalise(int(v))
    if isinstance(v, float):
        return float(v)
    if isinstance(v, str):
        return str(v)
    if isinstance(v, dict):
        return dict(v)
    if isinstance(v, (list, tuple)):
        return list(v)
    error = getattr(v, "cel_error", None)
    if error is not None:  # a value that must not be read, e.g. a history value kept cut
        raise EvalError(str(error))
    raise EvalError(f"unsupported value of Python type {t.__name__}")


def to_python(v: Any) -> Any:
    """A result for callers: CEL values as they are, lists and maps copied, tuples as lists."""
    t = type(v)
    if t is list or t is tuple:
        return [to_python(x) for x in v]
    if t is dict:
        return {to_python(k): to_python(x) for k, x in v.items()}
    return v
