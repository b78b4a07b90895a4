"""The YAML conformance corpus run through the sidecar (HTTP, in-process ASGI) instead of the engine.

The corpus and its runner (``tests/conformance/runner.py``: ``run_case(case, decide, settle,
set_stop)``) come from the reference work; until they are present, a few cases of this file run
through the same adapter. ``CHARTER_CONFORMANCE_DIR`` points at another checkout's corpus.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import charter
from charter.server import Runtime, create_app
from charter.state.memory import MemoryStore
from charter.state.types import StopRecord

from .conftest import TestClient, auth, token_set

BASE = datetime.fromisoformat("2025-01-15T12:00:00+00:00")


def _runner() -> ModuleType | None:
    here = Path(__file__).resolve().parents[1] / "conformance" / "runner.py"
    path = (
        Path(os.environ["CHARTER_CONFORMANCE_DIR"]) / "runner.py"
        if os.environ.get("CHARTER_CONFORMANCE_DIR")
        else here
    )
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("charter_conformance_runner", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


RUNNER = _runner()
_POLICIES: dict[str, Any] = {}


@contextmanager
def sidecar(policy: Any) -> Iterator[tuple[Callable[..., Any], Callable[..., Any], Callable[..., None]]]:
    """(decide, settle, set_stop) over HTTP to a fresh sidecar whose clock follows context.time."""
    now = [BASE.timestamp()]
    store = MemoryStore()
    rt = Runtime(policy, store, None, clock=lambda: now[0], poll_s=0)
    with TestClient(create_app(rt, token_set())) as http:

        def decide(req: Mapping[str, Any]) -> dict[str, Any]:
            t = (req.get("context") or {}).get("time")
            if t:
                now[0] = datetime.fromisoformat(t).timestamp()
            r = http.post("/v1/decide", json=req, headers=auth("orch"))
            assert r.status_code == 200, r.text
            return dict(r.json())

        def settle(decision_id: str, **kw: Any) -> dict[str, Any]:
            if "labels" in kw:
                kw["labels"] = list(kw["labels"])
            r = http.post("/v1/settle", json={"decision_id": decision_id, **kw}, headers=auth("orch"))
            assert r.status_code == 200, r.text
            return dict(r.json())

        def set_stop(scope: str, value: str) -> None:
            r = http.post(
                "/v1/stops",
                json={"scope": scope, "value": value, "reason": "conformance"},
                headers=auth("admin"),
            )
            if r.status_code == 403:  # the policy names its own operators; set it as they would
                store.set_stop(StopRecord(scope, value, "conformance", "operator", now[0]))
            else:
                assert r.status_code == 200, r.text

        yield decide, settle, set_stop


def _params() -> list[Any]:
    if RUNNER is None:
        return [pytest.param(None, marks=pytest.mark.skip(reason="conformance corpus not merged yet"))]
    out = []
    for case in RUNNER.all_cases():
        marks = [pytest.mark.xfail(strict=True, reason=case["xfail"])] if case.get("xfail") else []
        out.append(pytest.param(case, id=f"{case['file']}:{case['note']}", marks=marks))
    return out


@pytest.mark.parametrize("case", _params())
def test_corpus_through_the_sidecar(case: dict[str, Any]) -> None:
    assert RUNNER is not None
    text, paths = RUNNER.policy_source(case)
    key = text if text is not None else repr(paths)
    if key not in _POLICIES:
        _POLICIES[key] = charter.loads(text) if text is not None else charter.load(paths)
    with sidecar(_POLICIES[key]) as (decide, settle, set_stop):
        RUNNER.run_case(case, decide, settle, set_stop)


OWN = """
units USD
tool api { }
tool free { }
permit all { action call api, free }
budget b { scope agent  action call api  limit 10 USD }
"""


def test_the_adapter_on_a_few_cases() -> None:
    """Budget reservation, settle refund and a stop, through the adapter."""
    with sidecar(charter.loads(OWN)) as (decide, settle, set_stop):
        t = "2025-01-15T12:00:00+00:00"
        a = decide(
            {"actor": {"id": "a"}, "action": {"target": "api"}, "cost": {"USD": 8}, "context": {"time": t}}
        )
        assert a["outcome"] == "allow"
        assert (
            decide(
                {
                    "actor": {"id": "a"},
                    "action": {"target": "api"},
                    "cost": {"USD": 3},
                    "context": {"time": t},
                }
            )["outcome"]
            == "deny"
        )
        assert settle(a["id"], actual_cost={"USD": 5})["committed"] is True
        assert (
            decide(
                {
                    "actor": {"id": "a"},
                    "action": {"target": "api"},
                    "cost": {"USD": 3},
                    "context": {"time": t},
                }
            )["outcome"]
            == "allow"
        )
        set_stop("agent", "a")
        assert (
            decide({"actor": {"id": "a"}, "action": {"target": "free"}, "context": {"time": t}})["outcome"]
            == "halt"
        )
