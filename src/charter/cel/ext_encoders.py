"""cel-go's encoders extension (ext/encoders): base64.encode and base64.decode."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from charter.cel.limits import text_cost
from charter.cel.signatures import Function, fn
from charter.cel.stdlib import no_overload
from charter.cel.values import EvalError


def encode(data: Any) -> str:
    """``base64.encode(bytes)``: standard base64 with padding."""
    if type(data) is not bytes:
        raise no_overload("base64.encode", data)
    return base64.b64encode(data).decode("ascii")


def decode(text: Any) -> bytes:
    """``base64.decode(string)``: standard base64, padding optional."""
    if type(text) is not str:
        raise no_overload("base64.decode", text)
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise EvalError("base64.decode(): invalid base64 text") from None


def _cost(v: Any) -> int:
    return text_cost(len(v)) if type(v) in (str, bytes) else 0


FUNCTIONS: list[Function] = [
    fn("base64.encode", encode, "(bytes) -> string", cost=_cost, doc="bytes as base64 text",
       examples=["base64.encode(b'hello') == 'aGVsbG8='"]),
    fn("base64.decode", decode, "(string) -> bytes", cost=_cost, doc="base64 text as bytes",
       examples=["base64.decode('aGVsbG8') == b'hello'"]),
]  # fmt: skip
