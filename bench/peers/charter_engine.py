"""charter: the project's own engine, fed the workload as charter policy text."""

from __future__ import annotations

from typing import Any

from bench.peers import Decide, PeerUnavailable
from bench.workload import ROLES, SPEND_LIMIT, Request, World


def requires() -> None:
    """Import charter and check that the engine API (loads, Engine) exists."""
    try:
        import charter
    except ImportError as ex:
        raise PeerUnavailable(f"charter engine not available ({ex})") from ex
    missing = [n for n in ("loads", "Engine") if not hasattr(charter, n)]
    if missing:
        raise PeerUnavailable(
            f"charter engine not available (charter has no {', '.join(missing)})")


# ---------------------------------------------------------------------------------------
# DRAFT policy text. The DSL is being designed in parallel; this follows the agreed sketch
# and is the ONLY place that knows the syntax. Fix it up here when the grammar settles.
# ---------------------------------------------------------------------------------------
def charter_policy_text(world: World, rules: int | None = None) -> str:
    """Charter DSL text for the workload (base 14 rules + one permit per agent grant).

    ``rules`` is accepted for symmetry with the brief; the grants come from ``world``.
    """
    del rules
    out: list[str] = [
        "policy bench",
        "units USD",
        f"roles {', '.join(ROLES)}",
        "attribute clearance: bool",
        "context env: string",
        "",
    ]
    for name, a in world.agents.items():
        out.append(f"agent {name} {{ role {a['role']}  clearance {str(a['clearance']).lower()} }}")
    out.append("")
    for name, t in world.tools.items():
        tags = "  tags external" if t["external"] else ""
        out.append(f"tool {name} {{ category {t['category']}{tags} }}")
    out.append("")
    # 1-6: role grants (explicit tool lists: each role gets its categories minus ~20%)
    for role in ROLES:
        tools = ", ".join(sorted(world.role_tools[role]))
        out.append(f"permit {role}-may-call {{ actor role {role}  action call {tools}  "
                   f'reason "role {role} may call its tools" }}')
    # 7-12: per-role spend limit
    for role in ROLES:
        out.append(f"forbid {role}-spend-limit {{ actor role {role}  "
                   f"when args.amount > {SPEND_LIMIT[role]}  "
                   f'reason "{role} may spend at most {SPEND_LIMIT[role]} per call" }}')
    # 13: external tools need clearance
    out.append("forbid external-needs-clearance { action call tagged external  "
               'unless actor.clearance  reason "external tools need clearance" }')
    # 14: prod deploys need approval
    out.append('require approval prod-deploy { action call category deploy  '
               'when context.env == "prod"  approvers sre  '
               'reason "deploys to prod need an SRE approval" }')
    # large variants: per-agent grants, valid outside prod only
    for i, (ag, tl) in enumerate(world.grants):
        out.append(f"permit grant-{i} {{ actor agent {ag}  action call {tl}  "
                   f'when context.env != "prod" }}')
    return "\n".join(out) + "\n"


def request_dict(req: Request, actor: dict[str, Any]) -> dict[str, Any]:
    """The charter request for a workload request (actor dicts are pre-built per agent)."""
    return {"actor": actor,
            "action": {"kind": "call", "target": req["tool"], "args": {"amount": req["amount"]}},
            "context": {"env": req["env"]}}


def build(world: World) -> Decide:
    """charter.loads(text) -> charter.Engine(policy); decide returns outcome.value."""
    import charter

    policy = charter.loads(charter_policy_text(world))
    engine = charter.Engine(policy)
    engine_decide = engine.decide
    actors = {name: {"id": name, "roles": [a["role"]],
                     "attributes": {"clearance": a["clearance"]}}
              for name, a in world.agents.items()}

    def decide(req: Request) -> str:
        d = engine_decide({"actor": actors[req["agent"]],
                           "action": {"kind": "call", "target": req["tool"],
                                      "args": {"amount": req["amount"]}},
                           "context": {"env": req["env"]}})
        outcome = d.outcome
        return str(getattr(outcome, "value", outcome))

    return decide
