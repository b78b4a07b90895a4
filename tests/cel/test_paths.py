"""path.clean / path.base / path.dir: Go's path package test tables (golang/go src/path/path_test.go,
``cleantests``, ``basetests``, ``dirtests``), the security use, a property test against Python's
posixpath.normpath, and the fast path against the evaluator."""

from __future__ import annotations

import posixpath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.cel import CelError, CelType, compile_condition
from charter.cel.limits import FREE_TEXT, Budget
from charter.cel.paths import base, clean, dir_

# golang/go src/path/path_test.go: var cleantests
CLEAN_TESTS = [
    # Already clean
    ("", "."), ("abc", "abc"), ("abc/def", "abc/def"), ("a/b/c", "a/b/c"), (".", "."), ("..", ".."),
    ("../..", "../.."), ("../../abc", "../../abc"), ("/abc", "/abc"), ("/", "/"),
    # Remove trailing slash
    ("abc/", "abc"), ("abc/def/", "abc/def"), ("a/b/c/", "a/b/c"), ("./", "."), ("../", ".."),
    ("../../", "../.."), ("/abc/", "/abc"),
    # Remove doubled slash
    ("abc//def//ghi", "abc/def/ghi"), ("//abc", "/abc"), ("///abc", "/abc"), ("//abc//", "/abc"),
    ("abc//", "abc"),
    # Remove . elements
    ("abc/./def", "abc/def"), ("/./abc/def", "/abc/def"), ("abc/.", "abc"),
    # Remove .. elements
    ("abc/def/ghi/../jkl", "abc/def/jkl"), ("abc/def/../ghi/../jkl", "abc/jkl"), ("abc/def/..", "abc"),
    ("abc/def/../..", "."), ("/abc/def/../..", "/"), ("abc/def/../../..", ".."), ("/abc/def/../../..", "/"),
    ("abc/def/../../../ghi/jkl/../../../mno", "../../mno"),
    # Combinations
    ("abc/./../def", "def"), ("abc//./../def", "def"), ("abc/../../././../def", "../../def"),
]  # fmt: skip

# golang/go src/path/path_test.go: var basetests
BASE_TESTS = [("", "."), (".", "."), ("/.", "."), ("/", "/"), ("////", "/"), ("x/", "x"), ("abc", "abc"),
              ("abc/def", "def"), ("a/b/.x", ".x"), ("a/b/c.", "c."), ("a/b/c.x", "c.x")]  # fmt: skip

# golang/go src/path/path_test.go: var dirtests
DIR_TESTS = [("", "."), (".", "."), ("/.", "/"), ("/", "/"), ("////", "/"), ("/foo", "/"), ("x/", "x"),
             ("abc", "."), ("abc/def", "abc"), ("abc////def", "abc"), ("a/b/.x", "a/b"), ("a/b/c.", "a/b"),
             ("a/b/c.x", "a/b")]  # fmt: skip

ENV = {"p": CelType.STRING}


def _cel(fn: str, text: str) -> object:
    return compile_condition(f"{fn}(p)", ENV, expect_bool=False).evaluate({"p": text})


@pytest.mark.parametrize(("path", "result"), CLEAN_TESTS)
def test_go_cleantests(path: str, result: str) -> None:
    # TestClean checks both Clean(path) == result and that result is a fixed point
    assert clean(path) == result and clean(result) == result
    assert _cel("path.clean", path) == result


@pytest.mark.parametrize(("path", "result"), BASE_TESTS)
def test_go_basetests(path: str, result: str) -> None:
    assert base(path) == result and _cel("path.base", path) == result


@pytest.mark.parametrize(("path", "result"), DIR_TESTS)
def test_go_dirtests(path: str, result: str) -> None:
    assert dir_(path) == result and _cel("path.dir", path) == result


def test_a_write_only_under_src() -> None:
    """The check the docs show: a '..' inside the path cannot climb out of src/, and a leading
    '..' (which Clean keeps) is refused by the same prefix test."""
    c = compile_condition("path.clean(p).startsWith('src/')", ENV)
    assert c.evaluate({"p": "src/charter/x.py"}) is True
    assert c.evaluate({"p": "./src//a/./b.py"}) is True
    for escape in ("src/../.git/config", "src/a/../../.git/config", "../src/x", "src/..", "/src/x",
                   "src", "src/./../src2/x"):  # fmt: skip
        assert c.evaluate({"p": escape}) is False, escape
    assert compile_condition("path.clean('../x') == '../x'", {}).evaluate({}) is True


def test_misuse_is_a_compile_error_and_a_non_text_an_error() -> None:
    from charter.cel import CelCompileError

    with pytest.raises(CelCompileError):
        compile_condition("path.clean(1) == '1'", {})
    dyn = compile_condition("path.clean(x) == '.'", {"x": CelType.DYN})
    assert isinstance(dyn.evaluate({"x": 5}), CelError)


def test_long_paths_are_charged() -> None:
    c = compile_condition("path.clean(p) != ''", ENV)
    long = "a/" * (FREE_TEXT * 8)
    assert c.evaluate({"p": long}) is True

    class Act(dict[str, object]):
        cel_budget: Budget

    act = Act({"p": long})
    act.cel_budget = Budget(10_000_000)
    assert c.evaluate(act) is True and act.cel_budget.cost >= len(long) >> 6


_PATHS = st.lists(
    st.sampled_from(["", ".", "..", "a", "b", "src", ".git", "é", "x.y", "..."]), max_size=8
).map("/".join) | st.text(alphabet="/.ab", max_size=20)


@settings(max_examples=400, deadline=None)
@given(_PATHS)
def test_clean_is_normpath_and_a_fixed_point(p: str) -> None:
    """posixpath.normpath is Clean except that POSIX keeps a leading '//' (and for '')."""
    got = clean(p)
    assert clean(got) == got
    if not p.startswith("//") or p.startswith("///"):
        assert got == (posixpath.normpath(p) if p else ".")
    assert dir_(p) == clean(p[: p.rfind("/") + 1]) and "/" not in base(p).strip("/")


@settings(max_examples=300, deadline=None)
@given(_PATHS, st.sampled_from(["src/", "../", "/", "a"]))
def test_fast_path_agrees_with_the_evaluator(p: str, prefix: str) -> None:
    for text in (f"path.clean(p).startsWith('{prefix}')", f"path.dir(p) == '{prefix}'",
                 f"path.base(p).endsWith('{prefix}')"):  # fmt: skip
        c = compile_condition(text, ENV)
        assert c.fn is not c.evaluate, text  # takes the fast path
        assert c.fn({"p": p}) == c.evaluate({"p": p}), (text, p)
