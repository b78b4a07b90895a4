"""python_hand: the workload written by hand with dict/set lookups (the physical limit)."""

from __future__ import annotations

from bench.peers import Decide
from bench.workload import ALLOW, APPROVAL, DENY, SPEND_LIMIT, Request, World


def requires() -> None:
    """Pure Python: always available."""


def build(world: World) -> Decide:
    """Build the hand-written decision function; it is also the differential reference."""
    tools, agents = world.tools, world.agents
    grants = frozenset(world.grants)
    rt = world.role_tools
    lim = SPEND_LIMIT

    def decide(req: Request) -> str:
        a = agents[req["agent"]]
        tname = req["tool"]
        t = tools[tname]
        role = a["role"]
        if not (tname in rt[role] or ((req["agent"], tname) in grants and req["env"] != "prod")):
            return DENY
        if req["amount"] > lim[role]:
            return DENY
        if t["external"] and not a["clearance"]:
            return DENY
        if req["env"] == "prod" and t["category"] == "deploy":
            return APPROVAL
        return ALLOW

    return decide
