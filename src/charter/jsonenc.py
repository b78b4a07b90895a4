"""Compact JSON encoding through the C encoder, built once (``json.dumps`` builds one per call)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

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
