"""casbin: one model with g (agent -> role) and g2 (tool -> group); approval via 2nd enforcer."""

from __future__ import annotations

from bench.peers import Decide, PeerUnavailable
from bench.workload import ALLOW, APPROVAL, DENY, ROLES, SPEND_LIMIT, Request, World

MODEL = """
[request_definition]
r = sub, obj, amount, env, clear, ext, cat

[policy_definition]
p = sub, obj, kind, lim, eft

[role_definition]
g = _, _
g2 = _, _

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = (p.kind == "grant" && g(r.sub, p.sub) && g2(r.obj, p.obj)) || (p.kind == "agent_grant" && r.sub == p.sub && r.obj == p.obj && r.env != "prod") || (p.kind == "spend" && g(r.sub, p.sub) && gtnum(r.amount, p.lim)) || (p.kind == "external" && r.ext && !r.clear) || (p.kind == "approval" && r.env == "prod" && r.cat == "deploy")
"""  # noqa: E501


def requires() -> None:
    """Import casbin."""
    try:
        import casbin  # noqa: F401
    except ImportError as ex:
        raise PeerUnavailable(f"casbin not installed ({ex})") from ex


def rows(
    world: World, with_approval: bool = True
) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
    """Policy rows typed by a `kind` column, plus the g and g2 grouping rows."""
    p: list[list[str]] = []
    for role in ROLES:
        p.append([f"role:{role}", f"group:{role}", "grant", "0", "allow"])
    for role in ROLES:
        p.append([f"role:{role}", "*", "spend", str(SPEND_LIMIT[role]), "deny"])
    p.append(["*", "*", "external", "0", "deny"])
    if with_approval:
        p.append(["*", "*", "approval", "0", "deny"])
    for ag, tl in world.grants:
        p.append([ag, tl, "agent_grant", "0", "allow"])
    g = [[a, f"role:{aa['role']}"] for a, aa in world.agents.items()]
    g2 = [[t, f"group:{role}"] for role, s in world.role_tools.items() for t in sorted(s)]
    return p, g, g2


def build(world: World) -> Decide:
    """Two enforcers: with the approval deny row, and without it (asked only on approval)."""
    import logging

    import casbin

    logging.getLogger("casbin").setLevel(logging.ERROR)
    tools, agents = world.tools, world.agents

    def new_enforcer(with_approval: bool) -> casbin.Enforcer:
        e = casbin.Enforcer(casbin.Enforcer.new_model(text=MODEL))
        e.add_function("gtnum", lambda x, y: float(x) > float(y))
        p, g, g2 = rows(world, with_approval)
        e.add_policies(p)
        e.add_named_grouping_policies("g", g)
        e.add_named_grouping_policies("g2", g2)
        e.build_role_links()
        return e

    e = new_enforcer(True)
    e_no_appr = new_enforcer(False)

    def decide(req: Request) -> str:
        a, t = agents[req["agent"]], tools[req["tool"]]
        ar = (
            req["agent"],
            req["tool"],
            req["amount"],
            req["env"],
            a["clearance"],
            t["external"],
            t["category"],
        )
        ok, explain = e.enforce_ex(*ar)
        if ok:
            return ALLOW
        if explain and explain[2] == "approval" and e_no_appr.enforce(*ar):
            return APPROVAL
        return DENY

    return decide
