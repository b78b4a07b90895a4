"""Round trips over generated policies: parse(fmt(x)) == parse(x), fmt idempotent, comments kept."""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from tests.syntax.gen import Generated, policies, random_policy

from charter.cli.main import cli
from charter.syntax import ast, parse_text
from charter.syntax.printer import format_module, format_text

#: Generated policies per run (seeded, so a failure names its seed).
ROUND_TRIPS = 2000
SEED_BASE = int(os.environ.get("CHARTER_GEN_SEED", "0"))
ROOT = Path(__file__).resolve().parents[2]


def _comments(module: ast.Module) -> Counter[str]:
    return Counter(c.text.rstrip() for c in module.comments)


def round_trip(g: Generated, label: str) -> None:
    first = parse_text(g.text, "<gen>")
    assert first.module is not None, (label, first.diagnostics, g.text)
    assert first.module == g.module, (label, g.text)
    assert _comments(first.module) == Counter(c.rstrip() for c in g.comments), label
    out = format_module(first.module, first.source)
    second = parse_text(out, "<gen>")
    assert second.module is not None, (label, second.diagnostics, g.text, out)
    assert second.module == g.module, (label, g.text, out)
    assert _comments(second.module) == _comments(first.module), (label, g.text, out)
    assert format_module(second.module, out) == out, (label, g.text, out)


def test_round_trip_seeded() -> None:
    start = time.perf_counter()
    for i in range(ROUND_TRIPS):
        seed = SEED_BASE + i
        round_trip(random_policy(seed), f"seed {seed}")
    assert time.perf_counter() - start < 60


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(policies())
def test_round_trip_hypothesis(g: Generated) -> None:
    round_trip(g, "hypothesis")


def test_printing_generated_asts() -> None:
    """A module built in code (no source, no spans) prints to text that parses back to it."""
    for seed in range(300):
        g = random_policy(seed, comments=False)
        out = format_module(g.module, "")
        back = parse_text(out, "<gen>").module
        assert back == g.module, (seed, out)
        assert format_text(out) == out, seed


def test_example_policies_are_formatted() -> None:
    for directory in (ROOT / "policies", ROOT / "examples" / "assistant" / "policy"):
        result = CliRunner().invoke(cli, ["fmt", "--check", str(directory)])
        assert result.exit_code == 0, result.output


def test_fmt_cli(tmp_path: Path) -> None:
    messy = 'policy p\npermit r { actor any  # c\n reason "x" }\n'
    good = 'policy p\n\npermit r {\n  actor any  # c\n  reason "x"\n}\n'
    f = tmp_path / "a.charter"
    f.write_text(messy)
    (tmp_path / "b.charter").write_text(good)
    runner = CliRunner()
    res = runner.invoke(cli, ["fmt", str(f)])
    assert res.exit_code == 0 and res.output == good
    res = runner.invoke(cli, ["fmt", "--check", str(tmp_path)])
    assert res.exit_code == 1 and str(f) in res.output and "b.charter" not in res.output
    res = runner.invoke(cli, ["fmt", "--diff", str(f)])
    assert res.exit_code == 0 and '+  reason "x"' in res.output and f"a/{f}" in res.output
    res = runner.invoke(cli, ["fmt", "-w", str(tmp_path)])
    assert res.exit_code == 0 and f.read_text() == good
    res = runner.invoke(cli, ["fmt", "--check", str(tmp_path)])
    assert res.exit_code == 0
    bad = tmp_path / "bad.charter"
    bad.write_text("permit r {\n  actr any\n}\n")
    res = runner.invoke(cli, ["fmt", "--check", str(bad)])
    assert res.exit_code == 2
    assert f"{bad}:2:3: E101 unexpected 'actr'" in res.output
    assert "did you mean 'actor'?" in res.output
    bad.write_bytes(b"\x00\x01")
    res = runner.invoke(cli, ["fmt", str(bad)])
    assert res.exit_code == 2 and "E002" in res.output
    res = runner.invoke(cli, ["fmt", str(tmp_path / "missing.charter")])
    assert res.exit_code == 2
