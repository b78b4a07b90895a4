"""bench/cel_paths.py on the example assistant: every condition the agents workload runs takes
the compiled fast path and none falls back to the evaluator (a regression here is a slowdown of
the write-tool decisions, not a wrong answer: the differential tests in tests/cel pin those),
except where the condition's answer is an error, which the evaluator words."""

from __future__ import annotations

from bench.cel_paths import measure


def test_every_condition_of_the_after_policy_runs_on_the_fast_path() -> None:
    rows = measure("after", runs=20)
    ran = [r for r in rows if r.runs]
    assert len(ran) >= 20
    assert [r.source for r in rows if r.path != "fast"] == []
    # The one error the workload meets: an empty mail body with provenance. "" is a shared value
    # in Python, so labels() cannot tell it from an equal text a condition computes and asking
    # it is an error (engine/provenance.py _untold; the rule fails closed): the fast path hands
    # an error to the evaluator, for CEL's error rules, in at most a few runs of one condition.
    shared = "secret(args.body) || args.attachments.exists(a, secret(a))"
    assert [(r.source, r.fallbacks) for r in ran if r.fallbacks and r.source != shared] == []
    assert sum(r.fallbacks for r in ran) <= 4
