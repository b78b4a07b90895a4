"""python_closures_*: a tiny rule IR compiled to Python lambdas, indexed or linear."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bench.peers import Decide
from bench.workload import ALLOW, APPROVAL, DENY, ROLES, SPEND_LIMIT, Request, World

Pred = Callable[[Request, Any, Any], bool]
Item = tuple[str, Pred]
ORDER = {"forbid": 0, "approval": 1, "permit": 2}


def requires() -> None:
    """Pure Python: always available."""


def rule_ir(world: World) -> list[dict[str, Any]]:
    """Rules as scope (principal/resource) + a Python condition over r, a, t."""
    rules: list[dict[str, Any]] = []
    for role in ROLES:
        rules.append(
            {
                "id": f"grant_{role}",
                "effect": "permit",
                "principal": ("role", role),
                "resource": ("group", role),
                "when": None,
            }
        )
    for role in ROLES:
        rules.append(
            {
                "id": f"spend_{role}",
                "effect": "forbid",
                "principal": ("role", role),
                "resource": None,
                "when": f"r['amount'] > {SPEND_LIMIT[role]}",
            }
        )
    rules.append(
        {
            "id": "external_needs_clearance",
            "effect": "forbid",
            "principal": None,
            "resource": None,
            "when": "t['external'] and not a['clearance']",
        }
    )
    rules.append(
        {
            "id": "prod_deploy_approval",
            "effect": "approval",
            "principal": None,
            "resource": None,
            "when": "r['env'] == 'prod' and t['category'] == 'deploy'",
        }
    )
    for ag, tl in world.grants:
        rules.append(
            {
                "id": f"g_{ag}_{tl}",
                "effect": "permit",
                "principal": ("agent", ag),
                "resource": ("tool", tl),
                "when": "r['env'] != 'prod'",
            }
        )
    return rules


def compile_rule(rule: dict[str, Any], world: World) -> Pred:
    """Compile one rule to pred(r, a, t) -> bool via generated Python source."""
    parts: list[str] = []
    env: dict[str, Any] = {}
    p, res = rule["principal"], rule["resource"]
    if p is not None:
        parts.append(f"a['role'] == {p[1]!r}" if p[0] == "role" else f"r['agent'] == {p[1]!r}")
    if res is not None:
        if res[0] == "group":
            env["G"] = world.role_tools[res[1]]
            parts.append("r['tool'] in G")
        else:
            parts.append(f"r['tool'] == {res[1]!r}")
    if rule["when"]:
        parts.append(f"({rule['when']})")
    src = "lambda r, a, t: " + (" and ".join(parts) if parts else "True")
    pred: Pred = eval(compile(src, f"<rule {rule['id']}>", "eval"), env)
    return pred


def combine(r: Request, a: Any, t: Any, rules: Sequence[Item]) -> str:
    """Deny-overrides with short-circuit; approval only when something permitted."""
    permitted = approval = False
    for effect, pred in rules:
        if effect == "permit":
            if not permitted and pred(r, a, t):
                permitted = True
        elif pred(r, a, t):
            if effect == "forbid":
                return DENY
            approval = True
    if not permitted:
        return DENY
    return APPROVAL if approval else ALLOW


def build_linear(world: World) -> Decide:
    """Every rule tried on every call (forbids first so a deny can short-circuit)."""
    tools, agents = world.tools, world.agents
    rules = [(ru["effect"], compile_rule(ru, world)) for ru in rule_ir(world)]
    rules.sort(key=lambda x: ORDER[x[0]])

    def decide(req: Request) -> str:
        return combine(req, agents[req["agent"]], tools[req["tool"]], rules)

    return decide


def build_indexed(world: World) -> Decide:
    """Rules bucketed at build time by role and by (agent, tool); one bucket per call."""
    tools, agents = world.tools, world.agents
    by_agent_tool: dict[tuple[str, str], list[Item]] = {}
    by_role: dict[str, list[Item]] = {}
    by_tool: dict[str, list[Item]] = {}
    wildcard: list[Item] = []
    for ru in rule_ir(world):
        item = (ru["effect"], compile_rule(ru, world))
        p, res = ru["principal"], ru["resource"]
        if p and p[0] == "agent" and res and res[0] == "tool":
            by_agent_tool.setdefault((p[1], res[1]), []).append(item)
        elif p and p[0] == "role":
            by_role.setdefault(p[1], []).append(item)
        elif res and res[0] == "tool":
            by_tool.setdefault(res[1], []).append(item)
        else:
            wildcard.append(item)
    empty: list[Item] = []
    role_plus_wild = {r: sorted(by_role.get(r, []) + wildcard, key=lambda x: ORDER[x[0]]) for r in ROLES}

    def decide(req: Request) -> str:
        a = agents[req["agent"]]
        t = tools[req["tool"]]
        rules = role_plus_wild[a["role"]]
        extra = by_agent_tool.get((req["agent"], req["tool"]), empty)
        if extra:
            rules = sorted(rules + extra + by_tool.get(req["tool"], empty), key=lambda x: ORDER[x[0]])
        return combine(req, a, t, rules)

    return decide
