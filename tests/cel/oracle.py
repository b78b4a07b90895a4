"""The differential oracle: Google's C++ CEL runtime (cel-expr-python), an independent implementation.

Expressions are compiled with checking disabled (every variable is ``dyn``), with the strings,
math, encoders, optional and bindings extensions, and evaluated on the same activation as
charter.cel; results come back as plain Python values with the runtime's own type name.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from charter.cel import CelError, UInt

cel = pytest.importorskip("cel_expr_python.cel")
from cel_expr_python.ext import ext_bindings, ext_encoders, ext_math, ext_optional, ext_strings  # noqa: E402

VARIABLES = ("x", "y", "s", "b", "n", "l", "m", "t")
_ENV = cel.NewEnv(
    variables={v: cel.Type.DYN for v in VARIABLES},
    extensions=[
        ext_strings.ExtStrings(),
        ext_math.ExtMath(),
        ext_encoders.ExtEncoders(),
        ext_optional.ExtOptional(),
        ext_bindings.ExtBindings(),
    ],
)


class Unsupported(Exception):
    """The oracle cannot compile or return this expression (not a disagreement)."""


def _plain(v: Any) -> Any:
    if isinstance(v, bytearray):
        return bytes(v)
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {_plain(k): _plain(x) for k, x in v.items()}
    return v


#: Two-variable comprehensions: this build of the oracle does not have them.
_TWO_VARIABLES = re.compile(r"\.(all|exists|existsOne|transformList|transformMap)\(\w+, \w+,")
#: Functions of the list and set extensions: this build of the oracle does not have them.
_LISTS = ("reverse()", "slice(", "flatten(", "distinct()", "sort()", "first()", "last()", "lists.range",
          "sets.")  # fmt: skip


def evaluate(text: str, act: dict[str, Any]) -> Any:
    """The oracle's value of ``text`` (a CelError for an evaluation error)."""
    if _TWO_VARIABLES.search(text):
        raise Unsupported("two-variable comprehension")
    try:
        program = _ENV.compile(text, disable_check=True)
    except Exception as ex:  # the oracle's parser or macro expander refused it
        raise Unsupported(str(ex)) from None
    try:
        result = program.eval(data=act)
    except RuntimeError as ex:  # some evaluation errors are raised rather than returned
        return CelError(str(ex))
    kind = result.type().name()
    if kind == "ERROR":
        message = str(result.plain_value())
        if "No matching overloads" in message and any(f in message for f in _LISTS):
            raise Unsupported(message)
        return CelError(message)
    try:
        v = result.plain_value()
    except TypeError as ex:  # optional values and other opaque results
        raise Unsupported(str(ex)) from None
    if kind == "UINT":
        return UInt(v)
    if kind in ("TIMESTAMP", "DURATION", "TYPE") or kind.startswith("OPAQUE"):
        raise Unsupported(kind)
    return _plain(v)


def same_unordered(mine: Any, theirs: Any) -> bool:
    """Lists equal up to order (CEL leaves the iteration order of maps unspecified)."""
    if not (isinstance(mine, list) and isinstance(theirs, list)) or len(mine) != len(theirs):
        return False
    rest = list(theirs)
    for x in mine:
        for i, y in enumerate(rest):
            if same(x, y, False):
                del rest[i]
                break
        else:
            return False
    return True


def same(mine: Any, theirs: Any, top: bool = True) -> bool:
    """Equal values; inside lists and maps the oracle reports uints as ints."""
    if isinstance(mine, CelError) or isinstance(theirs, CelError):
        return isinstance(mine, CelError) and isinstance(theirs, CelError)
    if not top and type(mine) is UInt and type(theirs) is int:
        return int(mine) == theirs
    if type(mine) is not type(theirs):
        return False
    if isinstance(mine, str) and mine in ("+Inf", "-Inf", "NaN"):
        # string() of an infinite double: cel-go writes +Inf, Google's C++ runtime inf
        return mine.lstrip("+").lower() == theirs.lower()
    if isinstance(mine, float):
        return (math.isnan(mine) and math.isnan(theirs)) or mine == theirs
    if isinstance(mine, list):
        return len(mine) == len(theirs) and all(same(a, b, False) for a, b in zip(mine, theirs, strict=True))
    if isinstance(mine, dict):
        if len(mine) != len(theirs):
            return False
        return all(k in theirs and same(v, theirs[k], False) for k, v in mine.items())
    return bool(mine == theirs)
