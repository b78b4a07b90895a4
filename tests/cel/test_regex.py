"""matches(): the Python ``re`` specialisation gives exactly what RE2 gives (the general path),
on generated patterns and texts; invalid patterns are errors; long texts cost and stay linear."""

from __future__ import annotations

import random
import time

import pytest

from charter.cel import CelCompileError, CelError, CelType, compile_condition
from charter.cel.regex import RegexError, compile_pattern, compile_re2, python_equivalent

ATOMS = ["a", "b", "é", ".", "[a-c]", "[^b]", "\\d", "\\w", "\\W", "\\D", "[0-9]", "-", "\\.", "x"]
ANCHORS = ["^", "$", "\\b", "\\B", ""]


def _pattern(r: random.Random) -> str:
    parts = []
    for _ in range(r.randint(1, 5)):
        k = r.random()
        atom = r.choice(ATOMS)
        if k < 0.25:
            atom += r.choice(["*", "+", "?", "{2}", "{1,3}", "*?", "+?"])
        elif k < 0.35:
            atom = f"({atom}|{r.choice(ATOMS)})"
        elif k < 0.45:
            atom = r.choice(ANCHORS)
        parts.append(atom)
    return "".join(parts)


def _text(r: random.Random) -> str:
    alphabet = "ab é-.x0\n_Z"
    n = r.choice([0, 1, 3, 8, 30, 300])
    return "".join(r.choice(alphabet) for _ in range(n))


def test_python_path_agrees_with_re2() -> None:
    r = random.Random(1717)
    specialised = 0
    for _ in range(3000):
        pattern = _pattern(r)
        try:
            general = compile_re2(pattern)
        except RegexError:
            continue
        fast = compile_pattern(pattern)
        specialised += python_equivalent(pattern) is not None
        for _ in range(8):
            text = _text(r)
            assert fast(text) == general(text), (pattern, text)
    assert specialised > 1000  # the subset is not empty


@pytest.mark.parametrize(
    ("pattern", "special"),
    [("^[A-Z0-9-]+$", True), ("\\bsend\\b", True), ("(a+)+$", False), ("[[:alpha:]]", False),
     ("(?i)acme", False), ("\\s", False), ("a.*b.*c", False), ("a{,3}", False)],
)  # fmt: skip
def test_the_subset(pattern: str, special: bool) -> None:
    assert (python_equivalent(pattern) is not None) is special


def test_dollar_before_a_final_newline_follows_re2() -> None:
    m = compile_pattern("a$")
    assert m("a") is True and m("a\n") is False  # Python's $ would match before the newline


def test_invalid_literal_pattern_is_a_compile_error() -> None:
    with pytest.raises(CelCompileError) as ei:
        compile_condition("s.matches('(')", {"s": CelType.STRING})
    assert "invalid regular expression" in ei.value.problems[0].message


def test_invalid_runtime_pattern_is_an_evaluation_error() -> None:
    c = compile_condition("s.matches(p)", {"s": CelType.STRING, "p": CelType.STRING})
    assert isinstance(c.evaluate({"s": "x", "p": "("}), CelError)
    assert c.evaluate({"s": "x", "p": "x"}) is True


def test_catastrophic_patterns_stay_linear() -> None:
    c = compile_condition("s.matches('^(a+)+$') || s.matches('(a|aa)*c')", {"s": CelType.STRING})
    text = "a" * 100_000 + "b"
    t0 = time.thread_time()
    assert c.evaluate({"s": text}) is False
    assert time.thread_time() - t0 < 0.05
