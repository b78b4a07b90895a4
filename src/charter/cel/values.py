"""Conversion between charter's plain Python runtime values and cel-python's celtypes values."""

from __future__ import annotations

import datetime
from typing import Any

import celpy.celtypes as ct
from celpy.evaluation import CELEvalError

from charter.cel.types import CelError, UInt


def to_cel(v: Any) -> Any:
    """Deep-convert a plain value to celtypes; unconvertible parts become error values."""
    if v is None:
        return None
    t = type(v)
    try:
        if t is bool:
            return ct.BoolType(v)
        if t is int:
            return ct.IntType(v)
        if t is UInt:
            return ct.UintType(int(v))
        if t is float:
            return ct.DoubleType(v)
        if t is str:
            return ct.StringType(v)
        if t is bytes:
            return ct.BytesType(v)
        if t is list or t is tuple:
            return ct.ListType([to_cel(x) for x in v])
        if t is dict:
            return ct.MapType({to_cel(k): to_cel(x) for k, x in v.items()})
        if isinstance(v, datetime.datetime):
            return ct.TimestampType(v)
        if isinstance(v, datetime.timedelta):
            return ct.DurationType(v)
        if isinstance(v, CelError):
            return CELEvalError(v.message)
    except (ValueError, TypeError, OverflowError) as ex:
        return CELEvalError(f"value out of range: {ex}")
    return CELEvalError(f"unsupported value of Python type {t.__name__}")


def error_message(ex: BaseException) -> str:
    """A short message for an evaluation error."""
    if isinstance(ex, CELEvalError):
        return str(ex.args[0]) if ex.args else "error"
    return f"{type(ex).__name__}: {ex}" if str(ex) else type(ex).__name__


def from_cel(v: Any) -> Any:
    """Deep-convert a celtypes result back to plain Python (errors become CelError)."""
    if v is None:
        return None
    if isinstance(v, CELEvalError):
        return CelError(error_message(v))
    if isinstance(v, bool):
        return v
    if isinstance(v, ct.BoolType):
        return bool(v)
    if isinstance(v, ct.UintType):
        return UInt(int(v))
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return float(v)
    if isinstance(v, str):
        return str(v)
    if isinstance(v, bytes):
        return bytes(v)
    if isinstance(v, ct.TimestampType):
        return datetime.datetime.combine(v.date(), v.timetz())
    if isinstance(v, datetime.datetime):
        return v
    if isinstance(v, datetime.timedelta):
        return datetime.timedelta(days=v.days, seconds=v.seconds, microseconds=v.microseconds)
    if isinstance(v, list):
        return [from_cel(x) for x in v]
    if isinstance(v, dict):
        return {from_cel(k): from_cel(x) for k, x in v.items()}
    return CelError(f"unsupported result of type {type(v).__name__}")
