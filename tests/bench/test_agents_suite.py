"""The `agents` benchmark suite: its workload has the shape issue 18 asks for, and it measures the
same runs the scenario tests check (no mismatch with expected.yaml)."""

from __future__ import annotations

import pytest
from bench.agents.policysets import CORPUS, POLICY_SETS
from bench.agents.scenario import load_corpus, provenance
from bench.agents.workload import IDENTICAL, build_runs
from bench.suites import SUITES, Options
from bench.suites.agents import run, run_policy_set

FULL_RUNS = 280  # bench/suites/agents.py: the full run


def test_runs_of_10_to_30_steps_and_at_least_5000_decisions() -> None:
    corpus = load_corpus(CORPUS)
    runs = build_runs(corpus, FULL_RUNS)
    lengths = [len(r.steps) for r in runs]
    assert min(lengths) >= 10 and max(lengths) <= 30
    assert sum(lengths) >= 5000  # one decision per step at least (gates add a second)
    assert {r.scenario.env for r in runs} == set(corpus.world.envs)
    assert {r.scenario.id for r in runs} == {s.id for s in corpus.scenarios}  # every scenario is played


def test_the_workload_is_deterministic_and_padding_keeps_provenance() -> None:
    corpus = load_corpus(CORPUS)
    a, b = build_runs(corpus, 40, seed=7), build_runs(corpus, 40, seed=7)
    assert [[s.id for s in r.steps] for r in a] == [[s.id for s in r.steps] for r in b]
    for r in a:
        prov = provenance(corpus.world, r.steps)  # every source still names an earlier step
        own = {s.id for s in corpus.get(r.scenario.id).steps}
        assert own <= set(prov)
        calls = [(s.call, tuple(sorted((k, str(v)) for k, v in s.args.items()))) for s in r.steps]
        assert max(calls.count(c) for c in calls) <= IDENTICAL  # no loop tripwire trips on padding


@pytest.mark.parametrize("name", ["before", "after"])
def test_a_small_run_matches_the_expectations_and_reports_each_outcome(name: str) -> None:
    res = run_policy_set(name, runs=16)
    assert res["mismatches"] == 0, res["mismatch_examples"]
    assert res["decisions"] >= 16 * 10
    assert res["p50_us"] > 0 and res["p99_us"] >= res["p50_us"]
    assert set(res["by_outcome"]) <= {"allow", "deny", "require_approval", "escalate", "halt"}
    assert res["by_outcome"]["allow"]["n"] > 0 and res["settle"]["n"] > 0


def test_the_suite_is_registered_and_skips_what_cannot_run() -> None:
    assert SUITES["agents"] == "bench.suites.agents"
    assert POLICY_SETS["before"].ready and POLICY_SETS["after"].ready

    class Quiet:
        def note(self, text: str) -> None:
            pass

    result = run(Options(quick=True, engines=("nope",)), Quiet())  # type: ignore[arg-type]
    assert result["suite"] == "agents" and result["results"] == []
    assert [s["engine"] for s in result["skipped"]] == ["nope"]
    assert result["workload"]["tools"] >= 60 and result["workload"]["environments"] >= 3
