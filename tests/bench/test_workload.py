"""Fast checks of the benchmark workload generator and the engine adapters (< 5 s)."""

from __future__ import annotations

import importlib

import pytest
from bench.peers import PEERS, PeerUnavailable
from bench.workload import (
    BASE_RULES,
    build_requests,
    build_world,
    outcome_mix,
    reference_decide,
)


def test_world_and_requests_are_deterministic() -> None:
    for rules in (14, 1000, 3000):
        w1, w2 = build_world(rules), build_world(rules)
        assert w1 == w2
        assert build_requests(w1) == build_requests(w2)
    assert build_world(14, seed=1) != build_world(14, seed=2)


def test_rule_counts_and_fleet_size() -> None:
    assert build_world(14).total_rules == BASE_RULES
    w = build_world(1000)
    assert w.total_rules == 1014 and len(w.agents) == 50 and len(set(w.grants)) == 1000
    w = build_world(10000)
    assert w.total_rules == 10014 and len(w.agents) == 500 and len(set(w.grants)) == 10000
    with pytest.raises(ValueError):
        build_world(5)


def test_same_world_as_the_anchors() -> None:
    """14 and 1,000 rules reproduce the anchors' outcome mix exactly (same seeds)."""
    for rules, mix in (
        (14, {"allow": 741, "deny": 1228, "require_approval": 31}),
        (1000, {"allow": 851, "deny": 1118, "require_approval": 31}),
    ):
        w = build_world(rules)
        assert outcome_mix([reference_decide(w, r) for r in build_requests(w)]) == mix


@pytest.mark.parametrize("rules", [14, 1000, 3000])
def test_python_engines_agree_with_reference(rules: int) -> None:
    from bench.peers import closures, hand

    w = build_world(rules)
    reqs = build_requests(w)
    ref = [reference_decide(w, r) for r in reqs]
    for build in (hand.build, closures.build_indexed, closures.build_linear):
        decide = build(w)
        assert [decide(r) for r in reqs] == ref, build.__qualname__


@pytest.mark.parametrize("peer", [p for p in PEERS if p.slow or p.name == "charter"], ids=lambda p: p.name)
def test_installed_peers_agree_on_base_policy(peer) -> None:  # type: ignore[no-untyped-def]
    """Third-party peers (and charter, once its engine exists) on 200 requests; skip if absent."""
    try:
        mod = peer.load_module()
    except (ImportError, PeerUnavailable) as ex:
        pytest.skip(f"{peer.name}: {ex}")
    w = build_world(100 if peer.large_only else 14)
    reqs = build_requests(w)[:200]
    decide = peer.builder_fn(mod)(w)
    assert [decide(r) for r in reqs] == [reference_decide(w, r) for r in reqs]


def test_charter_policy_text_mentions_every_rule() -> None:
    mod = importlib.import_module("bench.peers.charter_engine")
    w = build_world(1000)
    text = mod.charter_policy_text(w, 1000)
    assert text.count("\npermit ") == 6 + 1000
    assert text.count("\nforbid ") == 7
    assert text.count("\nrequire approval ") == 1
