"""``matches()``: RE2 regular expressions, compiled once per literal pattern, cached otherwise.

CEL's ``matches`` is RE2 syntax and semantics (langdef "Regular expressions"): a match anywhere in
the text, linear time in the text's length. Patterns are compiled with google-re2; a literal
pattern is compiled when the condition is compiled (an invalid one is a compile-time error), other
patterns through a bounded cache.

A call into google-re2 costs about 1.5 µs, most of it crossing into C++. Patterns in a small
subset whose meaning is the same in Python's ``re`` (literals, ASCII classes, anchors, groups and
alternatives, at most one unbounded repetition, of one character; no flags) are also compiled
with ``re``, which answers short texts (up to 256 characters) in a few hundred nanoseconds: with
one repetition of one character its backtracking is at most quadratic in the text, so at most
about 65,000 steps. Longer texts, and texts ending in a newline where the pattern has ``$`` (which
``re`` also matches before a final newline), go to RE2. tests/cel/test_regex.py runs both on the
same patterns and texts.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import re2
from re2 import _re2

from charter.cel.values import EvalError
from charter.errors import Error

_OPTIONS = re2.Options()
_OPTIONS.never_capture = True
_OPTIONS.log_errors = False
_UNANCHORED = _re2.RE2.Anchor.UNANCHORED

Matcher = Callable[[str], bool]


class RegexError(Error, ValueError):
    """A pattern RE2 does not accept."""


def compile_re2(pattern: str) -> Matcher:
    """The RE2 matcher of ``pattern`` (the general path); RegexError if RE2 refuses it."""
    compiled = _re2.RE2(pattern.encode("utf-8", "surrogatepass"), _OPTIONS)
    if not compiled.ok():
        raise RegexError(compiled.error().decode("utf-8", "replace"))
    match = compiled.Match

    def matches(text: str) -> bool:
        data = text.encode("utf-8", "surrogatepass")
        return match(_UNANCHORED, data, 0, len(data))[0][0] >= 0  # (-1, -1): no match

    return matches


#: Longest text the Python ``re`` path answers.
SHORT_TEXT = 256


def compile_pattern(pattern: str) -> Matcher:
    """A function telling whether a text contains a match of ``pattern``; RegexError if invalid."""
    general = compile_re2(pattern)
    python = python_equivalent(pattern)
    if python is None:
        return general
    search = python.search
    dollar = "$" in pattern

    def matches(text: str) -> bool:
        if len(text) > SHORT_TEXT or (dollar and text.endswith("\n")):
            return general(text)
        return search(text) is not None

    return matches


_SINGLE = frozenset({"LITERAL", "NOT_LITERAL", "ANY", "IN"})
_SET_ITEMS = frozenset({"LITERAL", "RANGE", "NEGATE", "CATEGORY"})
_CATEGORIES = frozenset({"CATEGORY_DIGIT", "CATEGORY_NOT_DIGIT", "CATEGORY_WORD", "CATEGORY_NOT_WORD"})
_ANCHORS = frozenset({"AT_BEGINNING", "AT_END", "AT_BOUNDARY", "AT_BEGINNING_STRING"})
_SMALL_REPEAT = 16


def python_equivalent(pattern: str) -> re.Pattern[str] | None:
    """``pattern`` compiled with Python's ``re`` when it is in the subset where both mean the same
    and backtracking stays small (see the module docstring), else None."""
    if any(x in pattern for x in ("[:", "[[", "{,", "(?")) or len(pattern) > 64:
        return None
    try:
        from re import _parser

        parsed = _parser.parse(pattern, re.ASCII)
    except Exception:
        return None
    if parsed.state.flags & ~(re.ASCII | re.UNICODE):
        return None
    budget = {"unbounded": 0, "bounded": 1}
    if not _safe(parsed, budget, inside_repeat=False):
        return None
    if budget["unbounded"] > 1 or budget["bounded"] > 256:
        return None
    try:
        return re.compile(pattern, re.ASCII)
    except re.error:
        return None


def _safe(items: Any, budget: dict[str, int], inside_repeat: bool) -> bool:
    for op, arg in items:
        name = str(op)
        if name in _SINGLE:
            if name == "IN" and not all(
                str(o) in _SET_ITEMS and (str(o) != "CATEGORY" or str(a) in _CATEGORIES) for o, a in arg
            ):
                return False
        elif name == "AT":
            if str(arg) not in _ANCHORS:
                return False
        elif name in ("MAX_REPEAT", "MIN_REPEAT"):
            _low, high, body = arg
            if inside_repeat or len(body) != 1 or str(body[0][0]) not in _SINGLE:
                return False
            if not _safe(body, budget, inside_repeat=True):
                return False
            if high == _parser_maxrepeat() or high > _SMALL_REPEAT:
                budget["unbounded"] += 1
            else:
                budget["bounded"] *= high + 1
        elif name == "SUBPATTERN":
            _group, add_flags, del_flags, body = arg
            if add_flags or del_flags or not _safe(body, budget, inside_repeat):
                return False
        elif name == "BRANCH":
            _, branches = arg
            if not all(_safe(b, budget, inside_repeat) for b in branches):
                return False
        else:
            return False
    return True


def _parser_maxrepeat() -> int:
    from re import _constants

    return int(_constants.MAXREPEAT)


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
