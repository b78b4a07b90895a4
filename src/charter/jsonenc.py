"""Compact JSON encoding through the C encoder, built once; and the strict decoder of wire bodies."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from charter.errors import Error

_C: Any = getattr(json.encoder, "c_make_encoder", None)  # None off CPython
_STR: Any = json.encoder.encode_basestring


def compact_encoder(
    *,
    sort_keys: bool = False,
    default: Callable[[Any], Any] | None = None,
    check_circular: bool = False,
    ensure_ascii: bool = False,
) -> Callable[[Any], str]:
    """A function giving exactly ``json.JSONEncoder(separators=(",", ":"), ensure_ascii=...,
    sort_keys=..., default=..., check_circular=...).encode(o)``, without its Python layers.

    With ``check_circular`` the C encoder is made per call (its reference markers are per
    encoding, so a shared one would not be thread-safe); without, once.
    """
    enc = json.JSONEncoder(
        separators=(",", ":"),
        ensure_ascii=ensure_ascii,
        sort_keys=sort_keys,
        default=default,
        check_circular=check_circular,
    )
    if _C is None:
        return enc.encode
    dflt = enc.default
    estr = json.encoder.encode_basestring_ascii if ensure_ascii else _STR

    if check_circular:

        def encode(o: Any) -> str:
            if isinstance(o, str):
                return str(estr(o))
            return "".join(_C({}, dflt, estr, None, ":", ",", sort_keys, False, True)(o, 0))

        return encode
    once = _C(None, dflt, estr, None, ":", ",", sort_keys, False, True)

    def encode_plain(o: Any) -> str:
        return str(estr(o)) if isinstance(o, str) else "".join(once(o, 0))

    return encode_plain


class StrictJsonError(Error, ValueError):
    """A wire body that is not exactly one JSON text in UTF-8 (the message says what is wrong)."""


def repeated_key(pairs: list[tuple[str, Any]], out: dict[str, Any]) -> str | None:
    """The first key given twice among a JSON object's ``pairs`` (``out``: ``dict(pairs)``, which
    keeps the last silently), or None. Shared by every reader that refuses one."""
    if len(out) == len(pairs):
        return None
    seen: set[str] = set()
    for k, _ in pairs:
        if k in seen:
            return k
        seen.add(k)
    return None


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    k = repeated_key(pairs, out)
    if k is not None:
        raise StrictJsonError(f"the key {k!r} twice in one object")
    return out


_DECODE = json.JSONDecoder(object_pairs_hook=_unique).decode
#: a ``\\uD800``-``\\uDFFF`` escape: the only way a lone surrogate gets into strict UTF-8 JSON
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
#: a parsed value back to text, keeping surrogates as they are (so encoding finds a lone one)
_TEXT = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode


def strict_loads(raw: bytes | bytearray) -> Any:
    """``raw`` as JSON, or StrictJsonError: UTF-8 only (no BOM), no key twice in one object, no lone
    surrogate; what ``json.loads`` refuses (bad syntax, over 4,300 digits, deep nesting) too.

    Why: ``json.loads`` on bytes also reads UTF-16 and UTF-32 (a filter in front that reads UTF-8
    sees other text than the engine), lets the last of two equal keys win silently (a proxy that
    reads the first sees another actor or amount than the engine decides), and keeps a ``\\ud800``
    escape as a lone surrogate, which no UTF-8 writer (the trace, a response, a store) can encode.
    """
    try:
        data = _DECODE(bytes(raw).decode("utf-8"))
    except StrictJsonError:
        raise
    except UnicodeDecodeError:
        raise StrictJsonError("not UTF-8") from None
    except (ValueError, RecursionError):
        raise StrictJsonError("not JSON") from None
    if _SURROGATE_ESCAPE.search(raw) is not None and lone_surrogate(data):  # only then look
        raise StrictJsonError("a lone surrogate escape (not Unicode text)")
    return data


def lone_surrogate(value: Any) -> bool:
    """True when a string (or key) in the JSON value ``value`` holds a lone surrogate (U+D800 to
    U+DFFF): text no UTF-8 writer (a trace, an upstream request, a response) can encode."""
    try:
        _TEXT(value).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
