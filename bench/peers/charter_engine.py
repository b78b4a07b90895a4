"""charter: the project's own engine, fed the workload as charter policy text."""

from __future__ import annotations

import contextlib
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
        raise PeerUnavailable(f"charter engine not available (charter has no {', '.join(missing)})")
    # One-time process start-up (the parser's grammar is built on the first loads, ~1-2 s):
    # pay it here, where it is reported as import time, not in the first size's build ms.
    # A failure here resurfaces, with its message, in build().
    with contextlib.suppress(Exception):
        charter.loads("policy warmup\n")


# ---------------------------------------------------------------------------------------
# DRAFT policy text: the ONLY place that knows the DSL syntax; fix it up here if the grammar
# changes. Checked against main at ae26f46: it compiles at 14, 1,014 and 10,014 rules and
# decides all 2,000 requests like the reference (0 mismatches). Notes from that check:
# a condition ends at the end of its line (one clause per line); approvers must name a
# declared group; every rule has a reason, because more than 200 W506 "no reason" warnings
# turned into an E901 error.
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
        "group sre { members sre-alice, sre-bob }",
        "",
    ]
    for name, a in world.agents.items():
        out.append(f"agent {name} {{ role {a['role']}  clearance {str(a['clearance']).lower()} }}")
    out.append("")
    for name, t in world.tools.items():
        tags = "  tags external" if t["external"] else ""
        out.append(f"tool {name} {{ category {t['category']}{tags} }}")
    out.append("")
    # A condition (when/unless) ends at the end of its line: one clause per line.
    # 1-6: role grants (explicit tool lists: each role gets its categories minus ~20%)
    for role in ROLES:
        tools = ", ".join(sorted(world.role_tools[role]))
        out.append(
            f"permit {role}-may-call {{\n  actor role {role}\n  action call {tools}\n"
            f'  reason "role {role} may call its tools"\n}}'
        )
    # 7-12: per-role spend limit
    for role in ROLES:
        out.append(
            f"forbid {role}-spend-limit {{\n  actor role {role}\n"
            f"  when args.amount > {SPEND_LIMIT[role]}\n"
            f'  reason "{role} may spend at most {SPEND_LIMIT[role]} per call"\n}}'
        )
    # 13: external tools need clearance
    out.append(
        "forbid external-needs-clearance {\n  action call tagged external\n"
        '  unless actor.clearance\n  reason "external tools need clearance"\n}'
    )
    # 14: prod deploys need approval
    out.append(
        "require approval prod-deploy {\n  action call category deploy\n"
        '  when context.env == "prod"\n  approvers sre\n'
        '  reason "deploys to prod need an SRE approval"\n}'
    )
    # large variants: per-agent grants, valid outside prod only
    for i, (ag, tl) in enumerate(world.grants):
        out.append(
            f"permit grant-{i} {{\n  actor agent {ag}\n  action call {tl}\n"
            f'  when context.env != "prod"\n  reason "per-agent grant outside prod"\n}}'
        )
    return "\n".join(out) + "\n"


def request_dict(req: Request, actor: dict[str, Any]) -> dict[str, Any]:
    """The charter request for a workload request (actor dicts are pre-built per agent)."""
    return {
        "actor": actor,
        "action": {"kind": "call", "target": req["tool"], "args": {"amount": req["amount"]}},
        "context": {"env": req["env"]},
    }


def build(world: World) -> Decide:
    """charter.loads(text) -> charter.Engine(policy); decide returns outcome.value."""
    import charter

    policy = charter.loads(charter_policy_text(world))
    engine = charter.Engine(policy)
    engine_decide = engine.decide
    actors = {
        name: {"id": name, "roles": [a["role"]], "attributes": {"clearance": a["clearance"]}}
        for name, a in world.agents.items()
    }

    def decide(req: Request) -> str:
        d = engine_decide(
            {
                "actor": actors[req["agent"]],
                "action": {"kind": "call", "target": req["tool"], "args": {"amount": req["amount"]}},
                "context": {"env": req["env"]},
            }
        )
        outcome = d.outcome
        return str(getattr(outcome, "value", outcome))

    return decide
