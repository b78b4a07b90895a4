"""``matches()``: RE2 regular expressions, compiled once per literal pattern, cached otherwise.

CEL's ``matches`` is RE2 syntax and semantics (langdef "Regular expressions"): a match anywhere in
the text, linear time in the text's length. Patterns are compiled with google-re2; a literal
pattern is compiled when the condition is compiled (an invalid one is a compile-time error), other
patterns through a bounded cache.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import re2
from re2 import _re2

from charter.cel.values import EvalError

_OPTIONS = re2.Options()
_OPTIONS.never_capture = True
_OPTIONS.log_errors = False
_UNANCHORED = _re2.RE2.Anchor.UNANCHORED

Matcher = Callable[[str], bool]


class RegexError(ValueError):
    """A pattern RE2 does not accept."""


def compile_pattern(pattern: str) -> Matcher:
    """A function telling whether a text contains a match of ``pattern``; RegexError if invalid."""
    compiled = _re2.RE2(pattern.encode("utf-8", "surrogatepass"), _OPTIONS)
    if not compiled.ok():
        raise RegexError(compiled.error().decode("utf-8", "replace"))
    match = compiled.Match

    def matches(text: str) -> bool:
        data = text.encode("utf-8", "surrogatepass")
        return match(_UNANCHORED, data, 0, len(data))[0][0] >= 0  # (-1, -1): no match

    return matches


_CACHE: OrderedDict[str, Matcher] = OrderedDict()
_CACHE_SIZE = 256
_LOCK = threading.Lock()


def cached_pattern(pattern: str, max_length: int) -> Matcher:
    """The matcher of a pattern computed at run time (bounded LRU cache); EvalError if invalid."""
    with _LOCK:
        found = _CACHE.get(pattern)
        if found is not None:
            _CACHE.move_to_end(pattern)
            return found
    if len(pattern) > max_length:
        raise EvalError(f"the pattern is too long (the limit is {max_length} characters)")
    try:
        found = compile_pattern(pattern)
    except RegexError as ex:
        raise EvalError(f"invalid regular expression: {ex}") from None
    with _LOCK:
        _CACHE[pattern] = found
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return found
