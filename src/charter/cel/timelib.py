"""Timestamps and durations (langdef "Timestamps and durations", "Time functions"): parse, format, accessors.

Timestamps parse RFC 3339 with up to nine fraction digits and range over years 0001-9999;
durations parse Go's duration syntax (``1h30m``, ``1.5s``, ``-2ms``, ``300ns``) and hold int64
nanoseconds, as cel-go does. Accessors take an optional time zone: an IANA name
(``America/New_York``) or a fixed offset (``+05:30``, ``-02:00``, ``02:00``).
"""

from __future__ import annotations

import datetime
import re
import zoneinfo
from functools import lru_cache
from typing import Any

from charter.cel.stdlib import duration_of, no_overload
from charter.cel.values import Duration, EvalError, Timestamp

_NS = 1_000_000_000
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))\Z"
)
_DUR_PART = re.compile(r"(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1000, "µs": 1000, "μs": 1000, "ms": 10**6, "s": _NS, "m": 60 * _NS,
            "h": 3600 * _NS}  # fmt: skip
_OFFSET = re.compile(r"([+-]?)(\d{2}):(\d{2})\Z")


def parse_timestamp(text: str) -> Timestamp:
    """``timestamp(string)``: RFC 3339, range 0001-01-01 to 9999-12-31."""
    m = _RFC3339.match(text)
    if m is None:
        raise EvalError(f"cannot parse '{text}' as a timestamp (RFC 3339, e.g. 2025-01-31T12:00:00Z)")
    year, month, day, hour, minute, sec = (int(m.group(i)) for i in range(1, 7))
    if year == 0:
        raise EvalError("timestamp out of range")
    try:
        d = datetime.datetime(year, month, day, hour, minute, min(sec, 59), tzinfo=datetime.UTC)
    except ValueError as ex:
        raise EvalError(f"invalid timestamp '{text}': {ex}") from None
    nanos = int((m.group(7) or "").ljust(9, "0"))
    offset = 0
    if m.group(9):
        offset = (int(m.group(10)) * 3600 + int(m.group(11)) * 60) * (1 if m.group(9) == "+" else -1)
    base = Timestamp.from_datetime(d)
    return Timestamp(base.seconds + (sec - min(sec, 59)) - offset, nanos)


def parse_duration(text: str) -> Duration:
    """``duration(string)``: Go's syntax, a sign then numbers with units (``1h30m``, ``-1.5s``)."""
    s = text
    sign = 1
    if s[:1] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return Duration(0)
    if not s:
        raise EvalError(f"cannot parse '{text}' as a duration")
    total = 0
    pos = 0
    while pos < len(s):
        m = _DUR_PART.match(s, pos)
        if m is None or (not m.group(1) and not m.group(2)):
            raise EvalError(f"cannot parse '{text}' as a duration (e.g. 1h30m, 1.5s, 300ms)")
        unit = _UNIT_NS[m.group(3)]
        whole = int(m.group(1) or "0") * unit
        frac = m.group(2) or ""
        if frac:
            whole += int(frac) * unit // 10 ** len(frac)
        total += whole
        pos = m.end()
    return duration_of(sign * total)


def to_timestamp(v: Any) -> Timestamp:
    """``timestamp(v)`` of a string, an int (seconds since the epoch) or a timestamp."""
    t = type(v)
    if t is Timestamp:
        return v
    if t is str:
        return parse_timestamp(v)
    if t is int:
        return Timestamp(v)
    raise no_overload("timestamp", v)


def to_duration(v: Any) -> Duration:
    """``duration(v)`` of a string or a duration."""
    t = type(v)
    if t is Duration:
        return v
    if t is str:
        return parse_duration(v)
    raise no_overload("duration", v)


@lru_cache(maxsize=256)
def _zone(name: str) -> datetime.tzinfo:
    m = _OFFSET.match(name)
    if m is not None:
        minutes = int(m.group(2)) * 60 + int(m.group(3))
        return datetime.timezone(datetime.timedelta(minutes=-minutes if m.group(1) == "-" else minutes))
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise EvalError(f"unknown time zone '{name}'") from None


def _local(ts: Timestamp, tz: Any) -> datetime.datetime:
    d = ts.to_datetime()
    if tz is None:
        return d
    if type(tz) is not str:
        raise no_overload("timestamp accessor", ts, tz)
    try:
        return d.astimezone(_zone(tz))
    except OverflowError:
        raise EvalError("timestamp out of range in that time zone") from None


def _accessor(name: str, target: Any, tz: Any) -> int:
    if type(target) is Duration:
        if tz is not None:
            raise no_overload(name, target, tz)
        n = target.nanos
        q = {"getHours": 3600 * _NS, "getMinutes": 60 * _NS, "getSeconds": _NS}.get(name)
        if q is not None:
            return int(n / q)
        if name == "getMilliseconds":
            return int((abs(n) % _NS) // 10**6) * (-1 if n < 0 else 1)
        raise no_overload(name, target)
    if type(target) is not Timestamp:
        raise no_overload(name, target)
    d = _local(target, tz)
    if name == "getFullYear":
        return d.year
    if name == "getMonth":
        return d.month - 1
    if name == "getDate":
        return d.day
    if name == "getDayOfMonth":
        return d.day - 1
    if name == "getDayOfWeek":
        return (d.weekday() + 1) % 7
    if name == "getDayOfYear":
        return d.timetuple().tm_yday - 1
    if name == "getHours":
        return d.hour
    if name == "getMinutes":
        return d.minute
    if name == "getSeconds":
        return d.second
    if name == "getMilliseconds":
        return target.nanos // 10**6
    raise no_overload(name, target)


ACCESSORS = ("getFullYear", "getMonth", "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear",
             "getHours", "getMinutes", "getSeconds", "getMilliseconds")  # fmt: skip


def accessor(name: str) -> Any:
    """The implementation of the accessor method ``name`` (receiver, optional time zone)."""

    def impl(target: Any, tz: Any = None) -> int:
        return _accessor(name, target, tz)

    impl.__name__ = name
    return impl
