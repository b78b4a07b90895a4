"""bench/cel_paths.py on the example assistant: every condition the agents workload runs takes
the compiled fast path and none falls back to the evaluator (a regression here is a slowdown of
the write-tool decisions, not a wrong answer: the differential tests in tests/cel pin those)."""

from __future__ import annotations

from bench.cel_paths import measure


def test_every_condition_of_the_after_policy_runs_on_the_fast_path() -> None:
    rows = measure("after", runs=20)
    ran = [r for r in rows if r.runs]
    assert len(ran) >= 20
    assert [r.source for r in rows if r.path != "fast"] == []
    assert [(r.source, r.fallbacks) for r in ran if r.fallbacks] == []
