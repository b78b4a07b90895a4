"""Differential test: the engine and the reference evaluator agree on generated triples."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from . import gen, harness

POLICIES = 200
REQUESTS = 101


def test_engine_agrees_with_reference() -> None:
    """>= 20,000 (policy, request, state) triples: same outcome, deciding rules, default deny."""
    t0 = time.perf_counter()
    run = harness.Run()
    for seed in range(POLICIES):
        harness.run(seed, REQUESTS, gen.SAFE_FEATURES, run)
    elapsed = time.perf_counter() - t0
    print(f"\ndifferential: {run.triples} triples over {run.policies} policies "
          f"({run.rejected} rejected) in {elapsed:.1f}s; outcomes {run.outcomes}")
    assert not run.mismatches, "\n\n".join(str(m) for m in run.mismatches[:3])
    assert run.triples >= 20_000
    assert run.rejected <= POLICIES // 50
    assert all(run.outcomes.get(o, 0) > 100 for o in ("allow", "deny", "halt", "escalate",
                                                        "require_approval"))


#: Features that expose known engine bugs (or a spec ambiguity), with seeds that show each one.
KNOWN = {
    "depth-then-deny": ([5, 20], "a delegation-depth tripwire that denies, with no permit holding, "
                        "is reported as default_deny=true with the tripwire as deciding rule"),
    "unsorted-ids": ([80, 105], "deciding rules are not sorted by id when tripwires, rates or "
                     "budgets add to the rules' contributions"),
    "role-scope": ([135, 171], "a role-scoped rate or budget over its limit for several roles is "
                   "listed once per role in the deciding rules"),
    "depth-selectors": ([5, 11], "delegation-depth tripwires ignore their actor/action selector "
                        "and "
                        "their when/unless conditions"),
    "boundary-errors": ([75, 89], "a budget or rate whose condition errors makes the decision deny "
                        "with no deciding rule, whatever its 'on error' says"),
    "rate-and-budget": ([71, 205], "spec ambiguity: once a rate is over its limit the engine does "
                        "not consult budgets (the spec lists both in step 3)"),
    "signal-errors": ([4, 10], "an erroring 'signal ... where' makes the rule fail even when a "
                      "'when' condition is false (false must beat an error)"),
}


@pytest.mark.parametrize("feature", [
    pytest.param(f, marks=pytest.mark.xfail(strict=True, reason=KNOWN[f][1])) for f in sorted(KNOWN)
])
def test_known_disagreements(feature: str) -> None:
    """Each known bug, reproduced (strict xfail: once fixed, move the feature to SAFE_FEATURES)."""
    run = harness.Run()
    for seed in KNOWN[feature][0]:
        harness.run(seed, REQUESTS, frozenset({feature}), run)
    assert not run.mismatches, str(run.mismatches[0])


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_engine_agrees_with_reference_shrinking(data: st.DataObject) -> None:
    """The same comparison with hypothesis-drawn choices, so a disagreement shrinks."""
    rng = gen.DrawRandom(data.draw)
    world = gen.PolicyGen(rng, gen.SAFE_FEATURES).policy()
    run = harness.run_world(world, rng, 8)
    assert not run.mismatches, str(run.mismatches[0])
