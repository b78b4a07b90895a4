"""cedarpy: Cedar policies with a pre-parsed PolicySet and Entities reused on every call."""

from __future__ import annotations

import json
from typing import Any

from bench.peers import Decide, PeerUnavailable
from bench.workload import ALLOW, APPROVAL, DENY, ROLES, SPEND_LIMIT, Request, World

APPROVAL_POLICY = (
    '@id("prod_deploy_approval")\nforbid(principal, action, resource) '
    'when { context.env == "prod" && resource.category == "deploy" };'
)


def requires() -> None:
    """Import cedarpy."""
    try:
        import cedarpy  # noqa: F401
    except ImportError as ex:
        raise PeerUnavailable(f"cedarpy not installed ({ex})") from ex


def policy_text(world: World, with_approval: bool = True) -> str:
    """Cedar text: 6 role grants, 6 spend limits, external clearance, approval, agent grants."""
    out: list[str] = []
    for role in ROLES:
        out.append(
            f'@id("grant_{role}")\npermit(principal in Role::"{role}", '
            f'action == Action::"invoke", resource in ToolGroup::"{role}");'
        )
    for role in ROLES:
        out.append(
            f'@id("spend_{role}")\nforbid(principal in Role::"{role}", action, resource) '
            f"when {{ context.amount > {SPEND_LIMIT[role]} }};"
        )
    out.append(
        '@id("external_needs_clearance")\nforbid(principal, action, resource) '
        "when { resource.external && !principal.clearance };"
    )
    if with_approval:
        out.append(APPROVAL_POLICY)
    for ag, tl in world.grants:
        out.append(
            f'@id("g_{ag}_{tl}")\npermit(principal == Agent::"{ag}", '
            f'action == Action::"invoke", resource == Tool::"{tl}") '
            f'when {{ context.env != "prod" }};'
        )
    return "\n".join(out)


def entities(world: World) -> list[dict[str, Any]]:
    """Entity store: Agent in Role, Tool in ToolGroup (one group per role that may call it)."""
    ents: list[dict[str, Any]] = []
    for role in ROLES:
        ents.append({"uid": {"type": "Role", "id": role}, "attrs": {}, "parents": []})
        ents.append({"uid": {"type": "ToolGroup", "id": role}, "attrs": {}, "parents": []})
    for a, aa in world.agents.items():
        ents.append(
            {
                "uid": {"type": "Agent", "id": a},
                "attrs": {"clearance": aa["clearance"]},
                "parents": [{"type": "Role", "id": aa["role"]}],
            }
        )
    for t, ta in world.tools.items():
        ents.append(
            {
                "uid": {"type": "Tool", "id": t},
                "attrs": {"category": ta["category"], "external": ta["external"]},
                "parents": [{"type": "ToolGroup", "id": r} for r in ROLES if t in world.role_tools[r]],
            }
        )
    return ents


def build(world: World) -> Decide:
    """Parse the policy set twice (with and without the approval forbid) and the entities."""
    import cedarpy

    ps = cedarpy.PolicySet.from_str(policy_text(world))
    ps_no_appr = cedarpy.PolicySet.from_str(policy_text(world, with_approval=False))
    ents = cedarpy.Entities.from_json_str(json.dumps(entities(world)))
    is_authorized = cedarpy.is_authorized
    allow = cedarpy.Decision.Allow
    # cedarpy reports positional ids ("policyN"), not the @id annotation; accept both.
    appr_ids = {"prod_deploy_approval", f"policy{2 * len(ROLES) + 1}"}

    def decide(req: Request) -> str:
        cr = {
            "principal": {"type": "Agent", "id": req["agent"]},
            "action": {"type": "Action", "id": "invoke"},
            "resource": {"type": "Tool", "id": req["tool"]},
            "context": {"amount": req["amount"], "env": req["env"]},
        }
        res = is_authorized(cr, ps, ents)
        if res.decision == allow:
            return ALLOW
        reasons = res.diagnostics.reasons
        if (
            len(reasons) == 1
            and reasons[0] in appr_ids
            and is_authorized(cr, ps_no_appr, ents).decision == allow
        ):
            return APPROVAL
        return DENY

    return decide
