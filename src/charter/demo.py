"""`make demo`: check the example policies, then decide a scripted set of agent actions on SQLite."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import charter
from charter.engine.explain import explain
from charter.engine.prepare import parse_request
from charter.state import open_store

POLICIES = Path(__file__).resolve().parents[2] / "policies"
CTX = {"workflow": "invoice-2026-11", "run": "run-42", "env": "prod"}

#: (what happens, request) in story order.
STEPS: list[tuple[str, dict[str, Any]]] = [
    ("research reads the knowledge base", {"actor": {"id": "research-agent"}, "action": {"target": "kb.read"}}),
    ("research tries to write it", {"actor": {"id": "research-agent"}, "action": {"target": "kb.write"}}),
    ("research calls an undeclared tool", {"actor": {"id": "research-agent"}, "action": {"target": "shell.exec"}}),
    ("research searches the web (30 USD)",
     {"actor": {"id": "research-agent"}, "action": {"target": "web.search"}, "cost": {"USD": 30}}),
    ("...and again: the 50 USD daily budget bites",
     {"actor": {"id": "research-agent"}, "action": {"target": "web.search"}, "cost": {"USD": 30}}),
    ("payments pays before verifying the payee",
     {"actor": {"id": "payments-agent"}, "action": {"target": "payments.transfer",
      "args": {"amount": 900.0, "payee": "globex", "currency": "USD", "new_payee": False}}}),
    ("payments verifies the payee",
     {"actor": {"id": "payments-agent"}, "action": {"target": "payments.verify-payee", "args": {"payee": "globex"}}}),
    ("payments pays 12,000 USD: a human gate",
     {"actor": {"id": "payments-agent"}, "action": {"target": "payments.transfer",
      "args": {"amount": 12000.0, "payee": "globex", "currency": "USD", "new_payee": False}}}),
    ("conflicting signals on a 900 USD payment",
     {"actor": {"id": "payments-agent"}, "action": {"target": "payments.transfer",
      "args": {"amount": 900.0, "payee": "globex", "currency": "USD", "new_payee": False}},
      "signals": [{"source": "research", "kind": "research.no-issue"},
                  {"source": "risk", "kind": "risk.anomaly", "score": 0.35},
                  {"source": "compliance", "kind": "compliance.regulation-conflict"}]}),
    ("coding pushes to main", {"actor": {"id": "coding-agent"},
                               "action": {"target": "git.push", "args": {"repo": "core", "branch": "main"}}}),
    ("coding pushes to a feature branch", {"actor": {"id": "coding-agent"},
                                           "action": {"target": "git.push", "args": {"repo": "core", "branch": "feat/x"}}}),
]


def main() -> int:
    """Run the interim demo; exit 1 if the policies do not check cleanly."""
    console = Console()
    console.rule("[bold]charter demo[/bold]: Acme Group's agents under policy")
    result = charter.check([POLICIES])
    if result.errors or result.policy is None:
        console.print(f"[red]policies/ has {len(result.errors)} error(s); run charter check policies/[/red]")
        return 1
    policy = result.policy
    console.print(
        f"policies/ checked: {len(result.sources)} files, {len(policy.rules)} rules, "
        f"{len(policy.budgets)} budgets, {len(policy.tripwires)} tripwires; revision {policy.revision}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/state.db")
        engine = charter.Engine(policy, store=store)
        table = Table(title="Decisions (state in SQLite)")
        for col in ("#", "what the agent does", "outcome", "because"):
            table.add_column(col)
        colours = {"allow": "green", "require_approval": "yellow", "escalate": "magenta",
                   "deny": "red", "halt": "bold red"}
        last = None
        for i, (what, raw) in enumerate(STEPS, 1):
            raw = {**raw, "context": CTX}
            d = engine.decide(raw)
            if d.hold_id:
                engine.settle(d.id, actual_cost=raw.get("cost", {}))
            because = "; ".join(h.id for h in d.rules) or ("default deny" if d.default_deny else "")
            o = d.outcome.value
            table.add_row(str(i), what, f"[{colours[o]}]{o}[/{colours[o]}]", because)
            if o == "escalate":
                last = (d, raw)
        console.print(table)
        if last is not None:
            console.rule("Why was the payment escalated?")
            for line in explain(last[0].to_dict(), parse_request(last[1]).to_dict()):
                console.print(line)
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
