"""The stateful step's per-shape memos (engine/stateful.py ``Specialised``) give what the general
functions give: the boundaries ``View.select`` picks, in its order, and the stop keys ``stop_keys``
makes, for every request of a grid (agents with roles and parents, chains, workflows, tenants,
runs, targets)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

import charter
from charter.engine.stateful import Specialised, TripwirePlan
from charter.engine.validate import validate_request
from charter.engine.view import build_view, stop_keys
from charter.enums import TriggerKind
from charter.state import open_store

POLICY = """
units USD
roles r1, r2
agent boss { role r1 }
agent multi { role r1, r2  parent boss }
tool search { }
tool other { }
permit all { action call search, other }
rate per-agent { scope agent  action call search  limit 2 per 1m }
rate per-tool { scope tool  action call other  limit 3 per 1h }
rate per-role { scope role  limit 9 per 1h }
budget daily { scope agent  limit 100 USD per day }
budget team { scope workflow  limit 50 USD }
tripwire same-call-loop { trigger repeated call more than 5 times within 2m  reason "loop" }
tripwire deep { trigger delegation depth more than 4  then deny  reason "deep" }
"""

NOW = 1_790_000_000.0


def _requests() -> list[dict[str, Any]]:
    out = []
    actors = [{"id": "a"}, {"id": "multi"}, {"id": "boss"}, {"id": "x", "roles": ["r2"]}]
    contexts: list[dict[str, Any]] = [{}, {"workflow": "w"}, {"tenant": "t"}, {"run": "R1"}]
    for actor, target, ctx, chain in itertools.product(
        actors, ["search", "other"], contexts, [(), ("boss",)]
    ):
        req: dict[str, Any] = {
            "actor": dict(actor, chain=list(chain)) if chain else actor,
            "action": {"target": target},
            "cost": {"USD": 1.0},
        }
        if ctx:
            req["context"] = ctx
        out.append(req)
    return out


def test_selected_boundaries_and_stop_keys_match_the_general_functions() -> None:
    policy = charter.loads(POLICY)
    spec = Specialised(policy)
    idx = policy.index
    for _ in range(2):  # the second pass reads the memos
        for request in _requests():
            view = build_view(policy, validate_request(request), NOW)
            sel = spec.select(view)
            assert [r.item for r in sel.rates] == list(view.select(idx["rates"]))
            assert [b.item for b in sel.budgets] == list(view.select(idx["budgets"]))
            counted = [
                t
                for t in view.select(idx["tripwires"])
                if t.trigger not in (TriggerKind.DEPTH, TriggerKind.VELOCITY)
            ]
            assert [t.item for t in sel.tripwires] == counted
            assert all(isinstance(t, TripwirePlan) for t in sel.tripwires)
            req = view.req
            if not (req.chain or req.run or req.tenant):
                # StatefulStep.rule keeps these keys on the selection: they must be the same
                # for every request of the shape
                if sel.stop_keys is None:
                    sel.stop_keys = stop_keys(view)
                assert sel.stop_keys == stop_keys(view)


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_a_stop_on_a_role_halts_the_memoised_shape(backend: str, tmp_path: Path) -> None:
    url = "memory://" if backend == "memory" else f"sqlite://{tmp_path}/s.db"
    engine = charter.Engine(charter.loads(POLICY), store=open_store(url))
    req = {"actor": {"id": "multi"}, "action": {"target": "search"}, "cost": {"USD": 1.0}}
    assert engine.decide(req).outcome.value == "allow"
    engine.stops.stop("role", "r2", "test", "ops")
    assert engine.decide(req).outcome.value == "halt"
    other = {"actor": {"id": "boss"}, "action": {"target": "search"}, "cost": {"USD": 1.0}}
    assert engine.decide(other).outcome.value == "allow"


def test_the_engine_reads_the_plan_memo_under_the_selection_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """``Engine._decide`` spells ``View.selection_key()`` out inline: once every request shape has
    been decided, deciding them again asks the planner for nothing (an inline key that differed
    would miss the memo at every decision, and only cost time, so this is where a drift shows)."""
    from charter.engine.plan import Planner

    engine = charter.Engine(charter.loads(POLICY))
    reqs = _requests()
    for r in reqs:
        engine.decide(r)
    asked: list[Any] = []
    original = Planner.plan

    def counting(self: Planner, view: Any) -> Any:
        asked.append(view.selection_key())
        return original(self, view)

    monkeypatch.setattr(Planner, "plan", counting)  # undone after the test
    for r in reqs:
        engine.decide(r)
    assert asked == []
