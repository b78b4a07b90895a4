"""agt_shared: AGT's agent_os SharedPolicyEvaluator (AND-lists of conditions, first match)."""

from __future__ import annotations

from typing import Any

from bench.peers import Decide
from bench.peers._agt import agt_import
from bench.workload import ALLOW, APPROVAL, DENY, ROLES, SPEND_LIMIT, Request, World


def requires() -> None:
    """Import agent_os.policies."""
    agt_import("agent_os.policies")


def policy_yaml(world: World) -> str:
    """Rules over flat context keys; one approval rule per role (no OR); default_deny last,
    because the evaluator's own no-match result is *allow*."""
    import yaml

    def c(f: str, op: str, v: Any) -> dict[str, Any]:
        return {"field": f, "operator": op, "value": v}

    rules: list[dict[str, Any]] = []
    for role in ROLES:
        rules.append(
            {
                "id": f"spend_{role}",
                "action": "deny",
                "priority": 100,
                "conditions": [c("role", "eq", role), c("amount", "gt", SPEND_LIMIT[role])],
            }
        )
    rules.append(
        {
            "id": "external_needs_clearance",
            "action": "deny",
            "priority": 100,
            "conditions": [c("external", "eq", True), c("clearance", "eq", False)],
        }
    )
    for role in ROLES:
        rules.append(
            {
                "id": f"prod_deploy_approval_{role}",
                "action": "escalate",
                "priority": 50,
                "conditions": [
                    c("env", "eq", "prod"),
                    c("category", "eq", "deploy"),
                    c("role", "eq", role),
                    c("tool", "in", sorted(world.role_tools[role])),
                ],
            }
        )
    for role in ROLES:
        rules.append(
            {
                "id": f"grant_{role}",
                "action": "allow",
                "priority": 10,
                "conditions": [c("role", "eq", role), c("tool", "in", sorted(world.role_tools[role]))],
            }
        )
    for ag, tl in world.grants:
        rules.append(
            {
                "id": f"g_{ag}_{tl}",
                "action": "allow",
                "priority": 10,
                "conditions": [c("agent", "eq", ag), c("tool", "eq", tl), c("env", "ne", "prod")],
            }
        )
    rules.append({"id": "default_deny", "action": "deny", "priority": -1, "conditions": []})
    return yaml.safe_dump(
        {"version": "1.0", "name": "agentauthz", "scope": "tool", "rules": rules},
        sort_keys=False,
        width=10**6,
    )


def build(world: World) -> Decide:
    """Validate the YAML into rules once; each call evaluates a flat context dict."""
    import yaml

    m = agt_import("agent_os.policies")
    tools, agents = world.tools, world.agents
    rules = m.SharedPolicySchema.model_validate(yaml.safe_load(policy_yaml(world))).parsed_rules()
    evaluate = m.SharedPolicyEvaluator().evaluate
    verdict = {"allow": ALLOW, "deny": DENY, "escalate": APPROVAL}

    def decide(req: Request) -> str:
        a, t = agents[req["agent"]], tools[req["tool"]]
        ctx = {
            "agent": req["agent"],
            "role": a["role"],
            "clearance": a["clearance"],
            "tool": req["tool"],
            "category": t["category"],
            "external": t["external"],
            "amount": req["amount"],
            "env": req["env"],
        }
        return verdict.get(evaluate(ctx, rules).action, "unexpected")

    return decide
