"""regopy: a Rego v1 module compiled once to a rego-cpp bundle and run by entrypoint."""

from __future__ import annotations

from typing import Any

from bench.peers import Decide, PeerUnavailable
from bench.workload import SPEND_LIMIT, Request, World


def requires() -> None:
    """Import regopy."""
    try:
        import regopy  # noqa: F401
    except ImportError as ex:
        raise PeerUnavailable(f"regopy not installed ({ex})") from ex


def module_text(world: World) -> str:
    """The Rego module; per-agent grants are extra `granted if {...}` bodies."""
    lines = [
        "package agentauthz",
        "import rego.v1",
        "",
        "agent := data.agents[input.agent]",
        "tool := data.tools[input.tool]",
        "",
        "granted if data.role_tools[agent.role][input.tool]",
    ]
    for ag, tl in world.grants:
        lines.append(f'granted if {{ input.agent == "{ag}"; input.tool == "{tl}"; input.env != "prod" }}')
    lines += [
        "",
        'hard_deny contains "spend_limit" if input.amount > data.spend_limit[agent.role]',
        'hard_deny contains "external_needs_clearance" if { tool.external; not agent.clearance }',
        "",
        'needs_approval if { input.env == "prod"; tool.category == "deploy" }',
        "",
        'decision := "deny" if { not granted }',
        '  else := "deny" if { count(hard_deny) > 0 }',
        '  else := "require_approval" if { needs_approval }',
        '  else := "allow"',
    ]
    return "\n".join(lines)


def data_doc(world: World) -> dict[str, Any]:
    """The data document: facts, limits and role -> tool sets."""
    return {
        "agents": dict(world.agents),
        "tools": dict(world.tools),
        "spend_limit": SPEND_LIMIT,
        "role_tools": {r: {t: True for t in sorted(s)} for r, s in world.role_tools.items()},
    }


def build(world: World) -> Decide:
    """Compile module + data to a bundle; each call sets input and queries the entrypoint."""
    from regopy import Input, Interpreter

    b = Interpreter()
    b.add_module("agentauthz.rego", module_text(world))
    b.add_data(data_doc(world))
    bundle = b.build(None, ["agentauthz/decision"])
    if not bundle.ok():
        raise RuntimeError("rego bundle build failed")
    run = Interpreter()

    def decide(req: Request) -> str:
        run.set_input(Input(req))
        out: str = run.query_bundle_entrypoint(bundle, "agentauthz/decision")[0][0]
        return out

    return decide
