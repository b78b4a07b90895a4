"""Schemathesis against the OpenAPI spec: malformed requests never get a 5xx and never an allow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

import charter
from charter.server import Runtime, create_app
from charter.state.memory import MemoryStore

from .conftest import POLICY, auth, token_set, write_policy

pytestmark = pytest.mark.slow

_TMP = Path(__import__("tempfile").mkdtemp(prefix="charter-st-"))
_APP = create_app(
    Runtime(charter.load(write_policy(_TMP / "p", POLICY)), MemoryStore(), None, poll_s=0),
    token_set(),
    max_body=64 * 1024,
)
schema = schemathesis.openapi.from_asgi("/openapi.json", _APP)
schema.config.generation.update(modes=[GenerationMode.NEGATIVE], max_examples=25)
positive = schemathesis.openapi.from_asgi("/openapi.json", _APP)
positive.config.generation.update(modes=[GenerationMode.POSITIVE], max_examples=25)


def _check(response: Any, case: Any) -> None:
    where = f"{case.method} {case.path}: {response.status_code} {response.text[:300]}"
    assert response.status_code < 500, where
    if case.path.endswith("/decide") and response.status_code == 200:
        assert response.json()["outcome"] != "allow", f"a generated request was allowed: {case.body!r}"


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_malformed_requests_never_5xx_never_allow(case: Any) -> None:
    response = case.call(headers=auth("admin"))
    _check(response, case)
    if case.path.endswith("/decide") and response.status_code == 200:
        # only a mutated header (not the body) can get here: the decision is never allow (checked)
        assert response.json()["outcome"] in ("deny", "halt", "escalate", "require_approval")


@positive.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_schema_valid_requests_never_5xx(case: Any) -> None:
    _check(case.call(headers=auth("admin")), case)
