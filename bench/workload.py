"""Seeded agent-authorization workload shared by every engine in the benchmark."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal, TypedDict

Outcome = Literal["allow", "deny", "require_approval"]
ALLOW: Outcome = "allow"
DENY: Outcome = "deny"
APPROVAL: Outcome = "require_approval"
OUTCOMES: tuple[Outcome, ...] = (ALLOW, DENY, APPROVAL)

ROLES: tuple[str, ...] = ("reader", "analyst", "engineer", "ops", "finance", "admin")
# per-call spend limit (integer units: Cedar has no floats)
SPEND_LIMIT: dict[str, int] = {
    "reader": 10,
    "analyst": 100,
    "engineer": 500,
    "ops": 1000,
    "finance": 20000,
    "admin": 5000,
}
CATEGORIES: dict[str, int] = {
    "read": 8,
    "write": 8,
    "comms": 6,
    "payment": 6,
    "deploy": 6,
    "data": 6,
}
ROLE_CATEGORIES: dict[str, tuple[str, ...]] = {
    "reader": ("read",),
    "analyst": ("read", "data"),
    "engineer": ("read", "write", "deploy", "data"),
    "ops": ("read", "deploy", "comms"),
    "finance": ("read", "payment", "comms"),
    "admin": tuple(CATEGORIES),
}
BASE_RULES = 14  # 6 role grants + 6 spend limits + external clearance + prod approval
MIN_AGENTS = 50
GRANT_POOL = 1000  # per-agent grants drawn even for the base policy (they shape the requests)
N_REQUESTS = 2000
WORLD_SEED = 42
REQUEST_SEED = 7


class Request(TypedDict):
    """The engine-neutral request: every adapter converts it into its engine's input."""

    agent: str
    tool: str
    amount: int
    env: str


class Agent(TypedDict):
    """Facts about one agent."""

    role: str
    clearance: bool


class Tool(TypedDict):
    """Facts about one tool."""

    category: str
    external: bool


@dataclass(frozen=True)
class World:
    """Facts plus the rule set for one policy size.

    ``rules`` is the requested size: 14 is the base policy; any larger N means the base
    14 rules plus N per-agent grants (so 1,000 -> 1,014 rules, exactly the anchors' large
    variant; 10,000 -> 10,014 rules).
    """

    rules: int
    tools: dict[str, Tool]
    agents: dict[str, Agent]
    role_tools: dict[str, frozenset[str]]
    grant_pool: tuple[tuple[str, str], ...]
    grants: tuple[tuple[str, str], ...] = field(default=())

    @property
    def total_rules(self) -> int:
        """Number of rules in the policy (base + active per-agent grants)."""
        return BASE_RULES + len(self.grants)

    @cached_property
    def grant_set(self) -> frozenset[tuple[str, str]]:
        """The active per-agent grants as a set."""
        return frozenset(self.grants)


def n_grants(rules: int) -> int:
    """Number of per-agent grants for a requested policy size."""
    if rules < BASE_RULES:
        raise ValueError(f"rules must be >= {BASE_RULES}, got {rules}")
    return 0 if rules == BASE_RULES else rules


def build_world(rules: int = BASE_RULES, seed: int = WORLD_SEED) -> World:
    """Build the seeded world for a policy size.

    For rules <= 1,000 the world is exactly the anchors' world (50 agents, 40 tools, a pool
    of 1,000 distinct (agent, tool) grants). There are only 50 x 40 = 2,000 distinct pairs,
    so larger policies grow the fleet: agents = max(50, ceil(2 * grants / 40)), which keeps
    the anchors' density of one grant per two (agent, tool) pairs (10,000 rules -> 500 agents).
    """
    grants_n = n_grants(rules)
    pool_n = max(GRANT_POOL, grants_n)
    n_tools = sum(CATEGORIES.values())
    n_agents = max(MIN_AGENTS, math.ceil(2 * pool_n / n_tools))
    rng = random.Random(seed)
    tools: dict[str, Tool] = {}
    for cat, n in CATEGORIES.items():
        for i in range(n):
            tools[f"{cat}_{i}"] = {"category": cat, "external": rng.random() < 0.3}
    agents: dict[str, Agent] = {}
    for i in range(n_agents):
        agents[f"agent_{i}"] = {"role": ROLES[i % len(ROLES)], "clearance": rng.random() < 0.4}
    # role -> tool set: every tool in the role's categories, minus ~20% (admin keeps all)
    role_tools: dict[str, frozenset[str]] = {}
    for role in ROLES:
        s = set()
        for t, ta in tools.items():
            if ta["category"] in ROLE_CATEGORIES[role] and (role == "admin" or rng.random() < 0.8):
                s.add(t)
        role_tools[role] = frozenset(s)
    pairs = [(a, t) for a in agents for t in tools]
    rng.shuffle(pairs)
    pool = tuple(pairs[:pool_n])
    return World(
        rules=rules,
        tools=tools,
        agents=agents,
        role_tools=role_tools,
        grant_pool=pool,
        grants=pool[:grants_n],
    )


def build_requests(world: World, n: int = N_REQUESTS, seed: int = REQUEST_SEED) -> list[Request]:
    """Seeded requests: ~55% a tool of the agent's role, ~20% one of its grants, rest random."""
    rng = random.Random(seed)
    agent_names = sorted(world.agents)
    tool_names = sorted(world.tools)
    grants_by_agent: dict[str, list[str]] = {}
    for a, t in world.grant_pool:
        grants_by_agent.setdefault(a, []).append(t)
    role_sorted = {r: sorted(s) for r, s in world.role_tools.items()}
    reqs: list[Request] = []
    for _ in range(n):
        a = rng.choice(agent_names)
        x = rng.random()
        if x < 0.55:
            t = rng.choice(role_sorted[world.agents[a]["role"]])
        elif x < 0.75 and a in grants_by_agent:
            t = rng.choice(grants_by_agent[a])
        else:
            t = rng.choice(tool_names)
        y = rng.random()
        if y < 0.4:
            amount = rng.randint(0, 50)
        elif y < 0.8:
            amount = rng.randint(50, 1500)
        else:
            amount = rng.randint(1500, 30000)
        env = rng.choices(["dev", "staging", "prod"], weights=[4, 3, 3])[0]
        reqs.append({"agent": a, "tool": t, "amount": amount, "env": env})
    return reqs


def reference_decide(world: World, req: Request) -> Outcome:
    """The specification, written plainly (slow but obvious); python_hand must agree with it.

    granted    = tool in role_tools[role] or ((agent, tool) is a grant and env != prod)
    hard deny  = amount > spend_limit[role], or tool is external and agent lacks clearance
    outcome    = deny if not granted or hard deny; else require_approval if env == prod and
                 the tool's category is deploy; else allow
    """
    agent = world.agents[req["agent"]]
    tool = world.tools[req["tool"]]
    granted = req["tool"] in world.role_tools[agent["role"]] or (
        (req["agent"], req["tool"]) in world.grant_set and req["env"] != "prod"
    )
    if not granted:
        return DENY
    if req["amount"] > SPEND_LIMIT[agent["role"]]:
        return DENY
    if tool["external"] and not agent["clearance"]:
        return DENY
    if req["env"] == "prod" and tool["category"] == "deploy":
        return APPROVAL
    return ALLOW


def outcome_mix(outcomes: Sequence[str]) -> dict[str, int]:
    """Count outcomes by kind."""
    return {k: sum(1 for o in outcomes if o == k) for k in OUTCOMES}
