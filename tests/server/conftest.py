"""Fixtures for the sidecar tests: a policy, tokens, an in-process app and a client over it."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():  # starlette >= 1 nudges towards httpx2; httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

import charter
from charter.server import Runtime, TokenSet, create_app
from charter.server.auth import hash_token
from charter.state.memory import MemoryStore

INVENTORY = """
agents: []
groups:
  finance: [alice, bob]
  operators: [ops, ops2, root]
"""

POLICY = """
policy test-sidecar
agents from "agents.yaml"
units USD
stops {
  operators operators
  resume requires 2
}
tool search { }
tool pay { tags money }
tool big { }
permit search {
  actor any
  action call search
  reason "Anyone may search."
}
permit pay {
  actor any
  action call pay
  reason "Payments are allowed within budget."
}
permit big { action call big }
require approval big-needs-finance {
  action call big
  approvers finance
  reason "Big calls need finance."
}
budget pay-budget {
  scope workflow
  action call pay
  limit 10 USD
  reason "10 USD per workflow."
}
"""

TOKENS = {
    "orch": ("orchestrator-1", "orchestrator"),
    "alice": ("alice", "approver"),
    "bob": ("bob", "approver"),
    "ops": ("ops", "operator"),
    "ops2": ("ops2", "operator"),
    "admin": ("root", "admin"),
}


def secret(key: str) -> str:
    """The test token for a key of TOKENS."""
    return f"test-token-{key}-0123456789abcdef"


def token_set() -> TokenSet:
    """TOKENS as a TokenSet."""
    from charter.server.auth import Principal

    return TokenSet([(hash_token(secret(k)), Principal(n, frozenset({r}))) for k, (n, r) in TOKENS.items()])


def auth(key: str) -> dict[str, str]:
    """The Authorization header for a key of TOKENS."""
    return {"Authorization": f"Bearer {secret(key)}"}


def write_policy(root: Path, text: str = POLICY) -> Path:
    """A policy directory: policy.charter + agents.yaml."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "agents.yaml").write_text(INVENTORY, "utf-8")
    (root / "policy.charter").write_text(text, "utf-8")
    return root


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    return write_policy(tmp_path / "policy")


@pytest.fixture
def runtime(policy_file: Path, tmp_path: Path) -> Iterator[Runtime]:
    from charter.trace import TraceLog

    rt = Runtime(
        charter.load(policy_file),
        MemoryStore(),
        TraceLog(tmp_path / "trace.db"),
        policy_path=str(policy_file),
        poll_s=0,
    )
    yield rt


@pytest.fixture
def http(runtime: Runtime) -> Iterator[TestClient]:
    app = create_app(runtime, token_set(), max_body=64 * 1024, time_limit_s=2.0)
    with TestClient(app) as c:
        yield c


def req(target: str = "search", agent: str = "a1", **extra: Any) -> dict[str, Any]:
    """A request body."""
    body: dict[str, Any] = {"actor": {"id": agent}, "action": {"kind": "call", "target": target}}
    body.update(extra)
    return body
