"""Peer engine registry: one lazily imported module per engine, all behind one interface.

Interface of a peer module:

- ``requires() -> None``: import the engine's package; raise ``ImportError`` or
  ``PeerUnavailable`` (message = the reason) when it cannot run.
- ``build(world) -> Decide``: build the engine for a world (policy text, facts, compile)
  and return ``decide(request) -> "allow" | "deny" | "require_approval"``.
  The harness times ``build`` (build ms) and ``decide`` (latency, throughput).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from bench.workload import Request, World

Decide = Callable[[Request], str]
Builder = Callable[[World], Decide]


class PeerUnavailable(Exception):
    """The peer cannot run here (package missing, engine API not there yet)."""


@dataclass(frozen=True)
class Peer:
    """One engine entry of the registry."""

    name: str
    module: str
    builder: str = "build"
    slow: bool = False  # a third-party engine: skipped at 10,000 rules under --quick
    large_only: bool = False  # only meaningful when the policy has per-agent grants
    note: str = ""

    def load_module(self) -> ModuleType:
        """Import the peer module and check its requirements (may raise)."""
        mod = importlib.import_module(f"bench.peers.{self.module}")
        mod.requires()
        return mod

    def builder_fn(self, mod: ModuleType) -> Builder:
        """The peer's build function."""
        fn: Builder = getattr(mod, self.builder)
        return fn


PEERS: tuple[Peer, ...] = (
    Peer("python_hand", "hand", note="hand-written dict/set lookups: the floor"),
    Peer(
        "python_closures_indexed",
        "closures",
        "build_indexed",
        note="rule IR compiled to lambdas, bucketed by role and (agent, tool)",
    ),
    Peer(
        "python_closures_linear", "closures", "build_linear", note="same lambdas, no index: every rule tried"
    ),
    Peer("charter", "charter_engine", note="charter.Engine on the DSL text"),
    Peer("cedarpy", "cedar", slow=True, note="pre-parsed PolicySet + Entities; approval = 2nd call"),
    Peer("regopy", "rego", slow=True, note="rego-cpp bundle (Interpreter.build) entrypoint"),
    Peer("casbin", "casbin_rbac", slow=True, note="g/g2 role model, approval = 2nd enforcer"),
    Peer("agt", "agt_engine", slow=True, note="AGT PolicyEngine, deny_overrides"),
    Peer(
        "agt_per_agent",
        "agt_engine",
        "build_per_agent",
        slow=True,
        large_only=True,
        note="AGT PolicyEngine, agent grants in agent-targeted policies",
    ),
    Peer("agt_shared", "agt_shared", slow=True, note="AGT SharedPolicyEvaluator, escalate"),
)


def peer_names() -> list[str]:
    """Engine ids in registry order."""
    return [p.name for p in PEERS]
