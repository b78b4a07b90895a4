"""Runs every conformance case in-process against charter.Engine with a MemoryStore."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pytest

import charter
from charter.state.memory import MemoryStore
from charter.state.types import StopRecord

from . import runner

_POLICIES: dict[str, Any] = {}


def _policy(case: Mapping[str, Any]) -> Any:
    text, paths = runner.policy_source(case)
    key = text if text is not None else repr(paths)
    if key not in _POLICIES:
        _POLICIES[key] = charter.loads(text) if text is not None else charter.load(paths)
    return _POLICIES[key]


def _params() -> list[Any]:
    out = []
    for case in runner.all_cases():
        marks = [pytest.mark.xfail(strict=True, reason=case["xfail"])] if case.get("xfail") else []
        out.append(pytest.param(case, id=f"{case['file']}:{case['note']}", marks=marks))
    return out


@pytest.mark.parametrize("case", _params())
def test_case(case: dict[str, Any]) -> None:
    """One case: fresh store, engine clock following the requests' context.time."""
    now = [runner.BASE_TIME.timestamp()]
    store = MemoryStore()
    engine = charter.Engine(_policy(case), store=store, clock=lambda: now[0])

    def decide(req: Mapping[str, Any]) -> dict[str, Any]:
        now[0] = datetime.fromisoformat(req["context"]["time"]).timestamp()
        return engine.decide(req).to_dict()

    def settle(decision_id: str, **kw: Any) -> dict[str, Any]:
        return engine.settle(decision_id, **kw).to_dict()

    def set_stop(scope: str, value: str) -> None:
        store.set_stop(StopRecord(scope, value, "conformance", "operator", now[0]))

    runner.run_case(case, decide, settle, set_stop)


def test_corpus_size() -> None:
    """The corpus keeps at least 150 cases with unique ids."""
    cases = list(runner.all_cases())
    ids = [f"{c['file']}:{c['note']}" for c in cases]
    assert len(ids) == len(set(ids)), "duplicate case notes"
    assert len(cases) >= 150
