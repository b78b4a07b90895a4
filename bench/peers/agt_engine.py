"""agt / agt_per_agent: AGT's agentmesh PolicyEngine (YAML rules with string conditions)."""

from __future__ import annotations

from typing import Any

from bench.peers import Decide
from bench.peers._agt import agt_import, yaml_list
from bench.workload import ALLOW, APPROVAL, DENY, ROLES, SPEND_LIMIT, Request, World


def requires() -> None:
    """Import agentmesh.governance.policy (~0.4 s, reported as import ms, not build ms)."""
    agt_import("agentmesh.governance.policy")


def policy_yaml(world: World, per_agent: bool = False) -> list[str]:
    """YAML documents: the base policy and, with per_agent, one policy per agent's grants.

    The condition language has no `not` and cannot compare with a boolean literal (such a
    condition silently evaluates to false), so the clearance check is `agent.clearance < 1`.
    No rule can refer to another rule's outcome, so the approval rule repeats the role grants.
    """
    import yaml

    rules: list[dict[str, Any]] = []
    for role in ROLES:
        rules.append(
            {
                "name": f"spend_{role}",
                "action": "deny",
                "priority": 100,
                "condition": f"agent.role == '{role}' and request.amount > {SPEND_LIMIT[role]}",
            }
        )
    rules.append(
        {
            "name": "external_needs_clearance",
            "action": "deny",
            "priority": 100,
            "condition": "tool.external and agent.clearance < 1",
        }
    )
    rules.append(
        {
            "name": "prod_deploy_approval",
            "action": "require_approval",
            "priority": 50,
            "condition": " or ".join(
                f"request.env == 'prod' and tool.category == 'deploy' and "
                f"agent.role == '{r}' and "
                f"tool.name in {yaml_list(sorted(world.role_tools[r]))}"
                for r in ROLES
            ),
        }
    )
    for role in ROLES:
        rules.append(
            {
                "name": f"grant_{role}",
                "action": "allow",
                "priority": 10,
                "condition": f"agent.role == '{role}' and "
                f"tool.name in {yaml_list(sorted(world.role_tools[role]))}",
            }
        )
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "governance.toolkit/v1",
            "name": "agentauthz",
            "agents": ["*"],
            "default_action": "deny",
            "rules": rules,
        }
    ]
    if per_agent:
        by_agent: dict[str, list[dict[str, Any]]] = {}
        for ag, tl in world.grants:
            by_agent.setdefault(ag, []).append(
                {
                    "name": f"g_{ag}_{tl}",
                    "action": "allow",
                    "priority": 10,
                    "condition": f"tool.name == '{tl}' and request.env != 'prod'",
                }
            )
        for ag, rs in by_agent.items():
            docs.append(
                {
                    "apiVersion": "governance.toolkit/v1",
                    "name": f"grants_{ag}",
                    "agents": [ag],
                    "scope": "agent",
                    "default_action": "deny",
                    "rules": rs,
                }
            )
    else:
        for ag, tl in world.grants:
            rules.append(
                {
                    "name": f"g_{ag}_{tl}",
                    "action": "allow",
                    "priority": 10,
                    "condition": f"agent.id == '{ag}' and tool.name == '{tl}' and request.env != 'prod'",
                }
            )
    return [yaml.safe_dump(d, sort_keys=False, width=10**6) for d in docs]


def _build(world: World, per_agent: bool) -> Decide:
    policy_engine = agt_import("agentmesh.governance.policy").PolicyEngine
    tools, agents = world.tools, world.agents
    # deny_overrides: any matching deny wins; else highest priority (approval 50 > allow 10);
    # nothing matched -> default_action deny.
    eng = policy_engine(conflict_strategy="deny_overrides")
    for text in policy_yaml(world, per_agent):
        eng.load_yaml(text)
    evaluate = eng.evaluate
    verdict = {"allow": ALLOW, "deny": DENY, "require_approval": APPROVAL}

    def decide(req: Request) -> str:
        a, t = agents[req["agent"]], tools[req["tool"]]
        ctx = {
            "agent": {"id": req["agent"], "role": a["role"], "clearance": a["clearance"]},
            "tool": {"name": req["tool"], "category": t["category"], "external": t["external"]},
            "request": {"amount": req["amount"], "env": req["env"]},
        }
        return verdict.get(evaluate(req["agent"], ctx).action, "unexpected")

    return decide


def build(world: World) -> Decide:
    """All rules in one policy (every rule evaluated on every call)."""
    return _build(world, per_agent=False)


def build_per_agent(world: World) -> Decide:
    """Agent grants split into agent-targeted policies (AGT's only pre-filter)."""
    return _build(world, per_agent=True)
