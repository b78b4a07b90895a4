"""Attacks on the proved analysis: what it does not encode must never read as "no change", a broken
encoding must surface as a mismatch (not as a wrong answer), and the question text is bounded."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("z3")

from charter.analysis import cel as enc_cel
from charter.analysis.diff import prove_diff
from charter.analysis.query import reach
from charter.analysis.solve import Answer, Stats
from charter.api import check
from charter.cli.main import cli
from charter.engine.policy import CompiledPolicy

BASE = """policy p

units USD
roles r

tool t {
  arg amount: double
  arg n: int
  arg s: string
}

permit all {
  action call t
  reason "any call of t"
}

forbid f {
  action call t
  when COND
  reason "f"
}
"""


def _policy(tmp_path: Path, name: str, cond: str) -> CompiledPolicy:
    path = tmp_path / f"{name}.charter"
    path.write_text(BASE.replace("COND", cond))
    res = check([str(path)])
    assert res.policy is not None, res.errors
    return res.policy


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('args.s.lowerAscii() == "a"', 'args.s.lowerAscii() == "b"'),
        ("math.abs(args.n) > 3", "math.abs(args.n) > 4"),
        ('args.s.split(",").size() > 2', 'args.s.split(",").size() > 3'),
        ('args.s.matches("(?i)ab")', 'args.s.matches("(?i)ac")'),
    ],
)
def test_a_change_in_what_is_not_encoded_is_never_proved_unchanged(
    tmp_path: Path, old: str, new: str
) -> None:
    result = prove_diff(_policy(tmp_path, "old", old), _policy(tmp_path, "new", new))
    assert result.answer is not Answer.PROVED
    for c in result.changes:
        assert c.witness.reproduced  # a counterexample is printed only when the engine agrees
    for u in result.unknowns:
        assert u.reasons


def test_the_same_unencoded_condition_on_both_sides_is_proved_unchanged(tmp_path: Path) -> None:
    cond = 'args.s.lowerAscii() == "a"'
    result = prove_diff(_policy(tmp_path, "old", cond), _policy(tmp_path, "new", cond))
    assert result.answer is Answer.PROVED


def test_a_wrong_encoding_is_reported_as_a_mismatch_not_as_an_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sabotage '>' in the encoder: the counterexample does not replay, so the answer is unknown."""
    real = enc_cel.Encoder._binary

    def broken(self: enc_cel.Encoder, op: str, a: enc_cel.V, right: object, sc: dict) -> enc_cel.V:  # type: ignore[type-arg]
        return real(self, "<" if op == ">" else op, a, right, sc)  # type: ignore[arg-type]

    monkeypatch.setattr(enc_cel.Encoder, "_binary", broken)
    Stats.mismatches = []
    old = _policy(tmp_path, "old", "args.amount > 100.0")
    new = _policy(tmp_path, "new", "args.amount > 200.0")
    result = prove_diff(old, new)
    assert Stats.mismatches, result.to_dict()
    assert any("encoding mismatch" in r for u in result.unknowns for r in u.reasons)
    assert all(c.witness.reproduced for c in result.changes)
    Stats.mismatches = []


def test_overflowing_and_negative_values_follow_cel(tmp_path: Path) -> None:
    """n * 2 overflows int64 for huge n: an error, so the forbid fails closed (deny)."""
    old = _policy(tmp_path, "old", "args.n * 2 < 0")
    new = _policy(tmp_path, "new", "args.n < 0")
    result = prove_diff(old, new)
    assert result.changes
    for c in result.changes:
        assert c.witness.reproduced
        n = c.witness.concrete.request["action"].get("args", {}).get("n")
        assert n is None or isinstance(n, int)


@pytest.mark.parametrize(
    "question",
    [
        "can a call t where " + "(" * 400 + "true" + ")" * 400,
        "can a call t where args.amount > 1e999",
        "can a call t where " + " || ".join(["args.n == 1"] * 20_000),
        "can a call t where args.nosuch > 1",
        "can",
        "can a fly t",
        "x" * 100_000,
    ],
)
def test_bad_questions_are_refused_or_unknown_never_a_crash(tmp_path: Path, question: str) -> None:
    path = tmp_path / "p.charter"
    path.write_text(BASE.replace("COND", "args.n > 3"))
    res = CliRunner().invoke(cli, ["prove", str(path), question], catch_exceptions=False)
    assert res.exit_code in (1, 2, 3), res.output


def test_an_undeclared_tool_is_never_allowed(tmp_path: Path) -> None:
    pol = _policy(tmp_path, "p", "args.n > 3")
    assert reach(pol, "can any call nosuch.tool").answer is Answer.PROVED
    assert reach(pol, "can any call t where args.n > 3").answer is Answer.PROVED
    got = reach(pol, "can any call t where args.n <= 3")
    assert got.answer is Answer.COUNTEREXAMPLE and got.witness is not None and got.witness.reproduced
