"""Differential test: the engine and the reference evaluator agree on generated triples."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from . import gen, harness

POLICIES = 200
REQUESTS = 101


def test_engine_agrees_with_reference() -> None:
    """>= 20,000 (policy, request, state) triples: the engine agrees with the reference on outcome,
    deciding rules, default deny, failures, gates, stops, holds, grant uses spent and the grants
    consulted, and its general path (``specialise=False``) gives the same whole decisions as its
    specialised one."""
    t0 = time.perf_counter()
    run = harness.Run()
    for seed in range(POLICIES):
        harness.run(seed, REQUESTS, gen.SAFE_FEATURES, run)
    elapsed = time.perf_counter() - t0
    print(
        f"\ndifferential: {run.triples} triples over {run.policies} policies "
        f"({run.rejected} rejected) in {elapsed:.1f}s; outcomes {run.outcomes}"
    )
    assert not run.mismatches, "\n\n".join(str(m) for m in run.mismatches[:3])
    assert run.triples >= 20_000
    assert run.rejected <= POLICIES // 50
    assert all(
        run.outcomes.get(o, 0) > 100 for o in ("allow", "deny", "halt", "escalate", "require_approval")
    )


#: Features that exposed engine bugs (all fixed; kept in SAFE_FEATURES): depth-then-deny,
#: unsorted-ids, role-scope, depth-selectors, boundary-errors, rate-and-budget, signal-errors.


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_engine_agrees_with_reference_shrinking(data: st.DataObject) -> None:
    """The same comparison with hypothesis-drawn choices, so a disagreement shrinks."""
    rng = gen.DrawRandom(data.draw)
    world = gen.PolicyGen(rng, gen.SAFE_FEATURES).policy()
    run = harness.run_world(world, rng, 8)
    assert not run.mismatches, str(run.mismatches[0])


def test_the_generator_covers_the_issue_18_language() -> None:
    """The triples above exercise named constants and conditions, budgets counting an amount from
    the arguments, and provenance (labels()/sources() in conditions, action.provenance in requests)."""
    import random

    uses = (
        "big(",
        "many(",
        "known_branch(",
        "vouched(",
        "from_user(",
        "in labels(",
        "sources(",
        "amount args.",
    )
    seen = dict.fromkeys((*uses, "requests"), 0)
    for seed in range(100):
        rng = random.Random(seed)
        world = gen.PolicyGen(rng, gen.SAFE_FEATURES).policy()
        rules = "\n".join(world.rules)  # uses in rules, not the declarations every policy has
        for key in uses:
            seen[key] += key in rules
        seen["requests"] += sum("provenance" in gen.request(rng, world, i)["action"] for i in range(20))
    assert min(seen.values()) >= 5, seen


def test_the_generator_covers_runs_and_grants() -> None:
    """Requests name runs (their allowed actions, and calls imported before the first request, are
    the history `after/before ... where` reads), runs are begun with grants, rules ask granted()
    and read run.grants, and allowed decisions spend grant uses (compared with the engine's grant
    boundaries in every triple above)."""
    import random

    from . import evaluator

    seen = dict.fromkeys(
        (
            "granted(",
            "run.grants",
            "where earlier",
            "runs begun",
            "runs imported",
            "uses spent",
            "history kept",
        ),
        0,
    )
    for seed in range(30):
        rng = random.Random(seed)
        world = gen.PolicyGen(rng, gen.SAFE_FEATURES).policy()
        rules = "\n".join(world.rules)
        seen["granted("] += "granted(" in rules
        seen["run.grants"] += "run.grants" in rules
        seen["where earlier"] += " where earlier." in rules
    orig, counts = evaluator.evaluate, {"uses": 0, "record": 0}

    def counting(policy: object, raw: object, state: evaluator.State) -> evaluator.Verdict:
        v = orig(policy, raw, state)  # type: ignore[arg-type]
        counts["uses"] += bool(v.grant_uses)
        counts["record"] += v.record is not None
        return v

    evaluator.evaluate = counting  # type: ignore[assignment]
    try:
        run = harness.Run()
        for seed in range(60):
            rng = random.Random(seed)
            world = gen.PolicyGen(rng, gen.SAFE_FEATURES).policy()
            seen["runs begun"] += bool(gen.run_grants(random.Random(seed), world))
            seen["runs imported"] += bool(gen.run_imports(random.Random(seed), world, 0.0))
            harness.run(seed, 101, gen.SAFE_FEATURES, run)
    finally:
        evaluator.evaluate = orig
    assert not run.mismatches, str(run.mismatches[0])
    seen["uses spent"], seen["history kept"] = counts["uses"], counts["record"]
    assert min(seen.values()) >= 5, seen


def test_the_generator_covers_windows_labels_settlements_and_covers() -> None:
    """The triples above exercise `after ... within N steps | D` (calls, hand-offs, `where`
    searches), `after/before labelled`, `where earlier.result.F` over settled results, `run.labels`
    and `run.steps` in conditions, grant `covers` that can fail, runs begun with labels and allowed
    calls settled with labels and results (the consulted grants are compared in every triple)."""
    import random

    uses = (
        " steps",
        "within 3s",
        "labelled ",
        "earlier.result.",
        "run.labels",
        "covers 6 / grant.d",
        "delegate",
    )
    seen = dict.fromkeys((*uses, "begun with labels", "settled"), 0)
    for seed in range(100):
        rng = random.Random(seed)
        world = gen.PolicyGen(rng, gen.SAFE_FEATURES).policy()
        text = world.text()
        for key in uses:
            seen[key] += key in text
        seen["begun with labels"] += bool(gen.run_labels(rng, world))
        req = gen.request(rng, world, 3)
        seen["settled"] += gen.settlement(rng, world, req) is not None
    assert min(seen.values()) >= 5, seen
