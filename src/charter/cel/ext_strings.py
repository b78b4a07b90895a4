"""cel-go's string extension (ext/strings): charAt, indexOf, lastIndexOf, lowerAscii, upperAscii,
replace, split, substring, trim, join, format, reverse and strings.quote.

Positions count Unicode code points, as in cel-go; a position outside the text is an error.
"""

from __future__ import annotations

import math
from typing import Any

from charter.cel.limits import elements_cost, text_cost
from charter.cel.signatures import Function, fn
from charter.cel.stdlib import format_double, no_overload
from charter.cel.types import UInt
from charter.cel.values import Duration, EvalError, Timestamp, TypeValue, kind_name

# Go's unicode.IsSpace: what trim() removes.
_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)


def _out_of_range(i: int) -> EvalError:
    return EvalError(f"index out of range: {i}")


def _str(name: str, s: Any, *more: Any) -> None:
    if type(s) is not str:
        raise no_overload(name, s, *more)


def char_at(s: Any, i: Any) -> str:
    """``s.charAt(i)``: the character at code point ``i`` ('' at the end)."""
    if type(s) is not str or type(i) is not int:
        raise no_overload("charAt", s, i)
    if not 0 <= i <= len(s):
        raise _out_of_range(i)
    return s[i : i + 1]


def index_of(s: Any, sub: Any, start: Any = 0) -> int:
    """``s.indexOf(sub[, start])``: the first position of ``sub`` at or after ``start``, or -1."""
    if type(s) is not str or type(sub) is not str or type(start) is not int:
        raise no_overload("indexOf", s, sub, start)
    if not 0 <= start <= len(s):
        raise _out_of_range(start)
    return s.find(sub, start)


def last_index_of(s: Any, sub: Any, *end: Any) -> int:
    """``s.lastIndexOf(sub[, end])``: the last position of ``sub`` starting at or before ``end``."""
    if type(s) is not str or type(sub) is not str or len(end) > 1 or any(type(e) is not int for e in end):
        raise no_overload("lastIndexOf", s, sub, *end)
    stop = end[0] if end else len(s)
    if not 0 <= stop <= len(s):
        raise _out_of_range(stop)
    return s.rfind(sub, 0, stop + len(sub))


def lower_ascii(s: Any) -> str:
    """``s.lowerAscii()``: ASCII letters in lower case, others unchanged."""
    _str("lowerAscii", s)
    return s.translate(_LOWER) if not s.isascii() else s.lower()


def upper_ascii(s: Any) -> str:
    """``s.upperAscii()``: ASCII letters in upper case, others unchanged."""
    _str("upperAscii", s)
    return s.translate(_UPPER) if not s.isascii() else s.upper()


_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
_UPPER = {c: c - 32 for c in range(ord("a"), ord("z") + 1)}


def replace(s: Any, old: Any, new: Any, n: Any = -1) -> str:
    """``s.replace(old, new[, n])``: at most ``n`` replacements (all when n < 0)."""
    if type(s) is not str or type(old) is not str or type(new) is not str or type(n) is not int:
        raise no_overload("replace", s, old, new, n)
    return s.replace(old, new, n if n >= 0 else -1)


def split(s: Any, sep: Any, n: Any = -1) -> list[str]:
    """``s.split(sep[, n])``: Go's strings.SplitN (n < 0: all parts; n == 0: none)."""
    if type(s) is not str or type(sep) is not str or type(n) is not int:
        raise no_overload("split", s, sep, n)
    if n == 0:
        return []
    if sep == "":
        parts = list(s)
        if 0 < n < len(parts):
            parts = [*parts[: n - 1], "".join(parts[n - 1 :])]
        return parts
    return s.split(sep, n - 1 if n > 0 else -1)


def substring(s: Any, start: Any, *end: Any) -> str:
    """``s.substring(start[, end])``: code points ``start`` to ``end`` (exclusive)."""
    if type(s) is not str or type(start) is not int or len(end) > 1 or any(type(e) is not int for e in end):
        raise no_overload("substring", s, start, *end)
    stop = end[0] if end else len(s)
    if not 0 <= start <= len(s):
        raise _out_of_range(start)
    if not 0 <= stop <= len(s):
        raise _out_of_range(stop)
    if start > stop:
        raise EvalError(f"invalid substring range. start: {start}, end: {stop}")
    return s[start:stop]


def trim(s: Any) -> str:
    """``s.trim()``: without leading and trailing white space."""
    _str("trim", s)
    return s.strip(_SPACE)


def join(items: Any, sep: Any = "") -> str:
    """``list.join([sep])``: the texts joined with ``sep``."""
    if (type(items) is not list and type(items) is not tuple) or type(sep) is not str:
        raise no_overload("join", items, sep)
    if any(type(x) is not str for x in items):
        raise EvalError("join() needs a list of texts")
    return sep.join(items)


def reverse(s: Any) -> str:
    """``s.reverse()``: the code points in reverse order."""
    _str("reverse", s)
    return s[::-1]


_QUOTE = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
          "\\": "\\\\", '"': '\\"'}  # fmt: skip


def quote(s: Any) -> str:
    """``strings.quote(s)``: a double-quoted CEL text literal of ``s``."""
    _str("strings.quote", s)
    out = []
    for ch in s:
        esc = _QUOTE.get(ch)
        if esc is not None:
            out.append(esc)
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            out.append("\ufffd")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


# -- format ----------------------------------------------------------------------------------------


def _plain_text(v: Any, top: bool = True) -> str:
    t = type(v)
    if t is str:
        return v
    if t is bytes:
        return v.decode("utf-8", "replace")
    if t is bool:
        return "true" if v else "false"
    if t is int or t is UInt:
        return str(int(v))
    if t is float:
        if v != v:
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return format_double(v)
    if v is None:
        return "null"
    if t is list or t is tuple:
        return "[" + ", ".join(_plain_text(x, False) for x in v) + "]"
    if t is dict:
        items = sorted((_plain_text(k, False), _plain_text(x, False)) for k, x in v.items())
        return "{" + ", ".join(f"{k}: {x}" for k, x in items) + "}"
    if t is Timestamp or t is Duration or t is TypeValue:
        return str(v)
    text = getattr(v, "cel_text", None)
    if text is not None:
        return str(text())
    raise EvalError("error during formatting: string clause can only be used on strings, bools, bytes, "
                    "ints, doubles, maps, lists, types, durations, and timestamps")  # fmt: skip


def _special(v: float) -> str | None:
    if v != v:
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return None


def _clause(verb: str, precision: int | None, v: Any) -> str:
    t = type(v)
    if verb == "s":
        return _plain_text(v)
    if verb == "d":
        if t is int or t is UInt:
            return str(int(v))
        if t is float and _special(v) is not None:
            return str(_special(v))
        raise EvalError("error during formatting: decimal clause can only be used on integers, was given "
                        + kind_name(v))  # fmt: skip
    if verb in "fe":
        if t is int or t is UInt:
            v = float(v)
        elif t is not float:
            what = "fixed-point" if verb == "f" else "scientific"
            raise EvalError(f"error during formatting: {what} clause can only be used on doubles, was "
                            f"given {kind_name(v)}")  # fmt: skip
        special = _special(v)
        if special is not None:
            return special
        return f"{v:.{6 if precision is None else precision}{verb}}"
    if verb == "b":
        if t is bool:
            return "1" if v else "0"
        if t is int or t is UInt:
            return format(int(v), "b")
        raise EvalError("error during formatting: only integers and bools can be formatted as binary, "
                        f"was given {kind_name(v)}")  # fmt: skip
    if verb == "o":
        if t is int or t is UInt:
            return format(int(v), "o")
        raise EvalError(f"error during formatting: octal clause can only be used on integers, was given "
                        f"{kind_name(v)}")  # fmt: skip
    if verb in "xX":
        if t is int or t is UInt:
            text = format(int(v), "x")
        elif t is str:
            text = v.encode("utf-8", "surrogatepass").hex()
        elif t is bytes:
            text = v.hex()
        else:
            raise EvalError("error during formatting: only integers, byte buffers, and strings can be "
                            f"formatted as hex, was given {kind_name(v)}")  # fmt: skip
        return text.upper() if verb == "X" else text
    raise EvalError(f'could not parse formatting clause: unrecognized formatting clause "{verb}"')


def format_text(fmt: Any, args: Any) -> str:
    """``fmt.format(args)``: %s %d %f %e %b %o %x %X and %% clauses, with ``%.Nf`` precision."""
    if type(fmt) is not str or (type(args) is not list and type(args) is not tuple):
        raise no_overload("format", fmt, args)
    out: list[str] = []
    i = 0
    n = len(fmt)
    arg = 0
    while i < n:
        ch = fmt[i]
        if ch != "%":
            j = fmt.find("%", i)
            j = n if j < 0 else j
            out.append(fmt[i:j])
            i = j
            continue
        i += 1
        if i >= n:
            raise EvalError("could not parse formatting clause: unexpected end of text")
        if fmt[i] == "%":
            out.append("%")
            i += 1
            continue
        precision = None
        if fmt[i] == ".":
            j = i + 1
            while j < n and fmt[j].isdigit():
                j += 1
            if j == i + 1 or j >= n:
                raise EvalError("could not parse formatting clause: bad precision")
            precision = int(fmt[i + 1 : j])
            i = j
        verb = fmt[i]
        i += 1
        if verb not in "sdfebxXo":
            raise EvalError(f'could not parse formatting clause: unrecognized formatting clause "{verb}"')
        if arg >= len(args):
            raise EvalError(f"index {arg} out of range")
        out.append(_clause(verb, precision, args[arg]))
        arg += 1
    return "".join(out)


def _cost(*args: Any) -> int:
    total = 0
    for a in args:
        if type(a) is str or type(a) is bytes:
            total += text_cost(len(a))
        elif type(a) is list or type(a) is tuple:
            total += elements_cost(len(a)) + text_cost(sum(len(x) for x in a if type(x) is str))
    return total


FUNCTIONS: list[Function] = [
    fn("charAt", char_at, "(string, int) -> string", member=True, cost=_cost,
       doc="the character at a position", examples=["'hello'.charAt(1) == 'e'"]),
    fn("indexOf", index_of, "(string, string) -> int", "(string, string, int) -> int", member=True,
       cost=_cost, doc="the first position of a text, or -1",
       examples=["'hello'.indexOf('l') == 2", "'hello'.indexOf('l', 3) == 3"]),
    fn("lastIndexOf", last_index_of, "(string, string) -> int", "(string, string, int) -> int",
       member=True, cost=_cost, doc="the last position of a text, or -1",
       examples=["'hello'.lastIndexOf('l') == 3"]),
    fn("lowerAscii", lower_ascii, "(string) -> string", member=True, cost=_cost,
       doc="ASCII letters in lower case", examples=["'Example.COM'.lowerAscii() == 'example.com'"]),
    fn("upperAscii", upper_ascii, "(string) -> string", member=True, cost=_cost,
       doc="ASCII letters in upper case", examples=["'eu-west'.upperAscii() == 'EU-WEST'"]),
    fn("replace", replace, "(string, string, string) -> string",
       "(string, string, string, int) -> string", member=True, cost=_cost,
       doc="the text with a part replaced (all, or the first n)",
       examples=["'a-b-c'.replace('-', '.') == 'a.b.c'", "'a-b-c'.replace('-', '', 1) == 'ab-c'"]),
    fn("split", split, "(string, string) -> list(string)", "(string, string, int) -> list(string)",
       member=True, cost=_cost, doc="the parts between separators (at most n parts)",
       examples=["'a,b,c'.split(',') == ['a', 'b', 'c']", "'a,b,c'.split(',', 2) == ['a', 'b,c']"]),
    fn("substring", substring, "(string, int) -> string", "(string, int, int) -> string",
       member=True, cost=_cost, doc="the characters from one position to another",
       examples=["'tacocat'.substring(4) == 'cat'", "'tacocat'.substring(0, 4) == 'taco'"]),
    fn("trim", trim, "(string) -> string", member=True, cost=_cost,
       doc="without leading and trailing white space", examples=["'  hi  '.trim() == 'hi'"]),
    fn("join", join, "(list(string)) -> string", "(list(string), string) -> string", member=True,
       cost=_cost, doc="the texts of a list joined (with a separator)",
       examples=["['a', 'b'].join() == 'ab'", "['a', 'b'].join('/') == 'a/b'"]),
    fn("format", format_text, "(string, list(dyn)) -> string", member=True, cost=_cost,
       doc="the text with %s %d %f %e %x %X %o %b clauses filled from a list",
       examples=["'%s has %d items'.format(['cart', 3]) == 'cart has 3 items'",
                 "'%.2f'.format([3.14159]) == '3.14'"]),
    fn("strings.quote", quote, "(string) -> string", cost=_cost,
       doc="the text as a quoted CEL literal", examples=["strings.quote('a\"b') == '\"a\\\\\"b\"'"]),
]  # fmt: skip
