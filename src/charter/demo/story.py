"""The scripted workflow: five agents pay supplier invoice INV-2026-117 and ship the integration fix."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from charter.demo.backends import Backend
from charter.demo.render import Out
from charter.engine.decision import Decision
from charter.hits import decision_reasons

WORKFLOW = "wf-inv-2026-117"
INVOICE = {
    "amount": 12400.0,
    "payee": "globex-gmbh",
    "currency": "USD",
    "new_payee": False,
    "memo": "INV-2026-117",
}
SURCHARGE = {
    "amount": 900.0,
    "payee": "globex-gmbh",
    "currency": "USD",
    "new_payee": False,
    "memo": "INV-2026-117 late fee",
}
SIGNALS: list[dict[str, Any]] = [
    {"source": "research-agent", "kind": "research.no-issue", "note": "no adverse news on Globex"},
    {"source": "risk-agent", "kind": "risk.anomaly", "score": 0.35, "note": "weak anomaly: new bank account"},
    {
        "source": "compliance-agent",
        "kind": "compliance.regulation-conflict",
        "severity": "high",
        "note": "possible conflict with the new cross-border payments regulation",
    },
]


class Story:
    """Runs the script against a backend, printing each step and checking it went as scripted."""

    def __init__(self, backend: Backend, out: Out):
        self.b = backend
        self.out = out
        self.counts: Counter[str] = Counter()
        self.problems: list[str] = []
        self.ids: dict[str, str] = {}

    # ---- steps ---------------------------------------------------------------------------------
    def now(self) -> float | None:
        return self.b.clock() if self.b.clock is not None else None

    def act(
        self,
        agent: str,
        target: str,
        expect: str,
        args: Mapping[str, Any] | None = None,
        cost: Mapping[str, float] | None = None,
        actual: Mapping[str, float] | None = None,
        quiet: bool = False,
        **extra: Any,
    ) -> Decision:
        """One agent action: decide, print, settle it if it was allowed (with the actual cost)."""
        self.b.advance(3)
        req: dict[str, Any] = {
            "actor": {"id": agent},
            "action": {"kind": "call", "target": target, "args": dict(args or {})},
            "context": {"workflow": WORKFLOW, "run": f"run-117-{agent}", "env": "prod"},
            **extra,
        }
        if cost:
            req["cost"] = dict(cost)
        d = self.b.decide(req)
        o = d.outcome.value
        self.counts[o] += 1
        ok = o == expect
        if not ok:
            self.problems.append(f"{agent} {target}: expected {expect}, got {o} ({decision_reasons(d)})")
        if not quiet or not ok:
            self.out.decision(self.now(), agent, target, args or {}, d, cost, ok)
        if o == "allow":
            self.b.settle(d.id, actual_cost=actual or cost)
        return d

    def human(self, who: str, text: str, minutes: float = 0) -> None:
        self.b.advance(minutes * 60)
        self.out.human(self.now(), who, text)

    # ---- the script ----------------------------------------------------------------------------
    def run(self) -> int:
        """The whole story; 0 if every step decided as scripted."""
        out = self.out
        out.title(
            "charter demo: pay supplier invoice INV-2026-117 and ship the integration fix",
            f"Acme Group's agents work one business process under policies/ ({self.b.label}).",
        )
        self.allowed()
        self.spend_limit()
        self.human_gate()
        self.conflicting_signals()
        self.runaway_loop()
        self.emergency_stop()
        self.the_record()
        out.summary(self.counts, self.problems, self.b.label)
        return 1 if self.problems else 0

    def allowed(self) -> None:
        self.out.chapter(1, "Agents get to work: actions inside the boundaries are allowed")
        self.act("research-agent", "kb.read", "allow", {"q": "globex-gmbh supplier file"})
        self.act(
            "research-agent",
            "web.search",
            "allow",
            {"q": "globex-gmbh news"},
            cost={"USD": 30.0},
            actual={"USD": 28.0},
        )
        self.out.say("settled at the actual cost: 28 USD of the 30 reserved; 2 USD go back to the budget")
        fix = {"repo": "erp-connector", "branch": "fix/inv-117-rounding"}
        self.act("coding-agent", "git.push", "allow", fix)
        self.act("coding-agent", "git.push", "deny", {"repo": "erp-connector", "branch": "main"})
        self.act("research-agent", "kb.write", "deny", {"page": "globex-gmbh"})

    def spend_limit(self) -> None:
        self.out.chapter(2, "A spend limit bites")
        self.act("research-agent", "web.search", "deny", {"q": "globex-gmbh sanctions"}, cost={"USD": 30.0})
        self.out.say("nothing was reserved: the research agent's paid APIs stop for today, the others go on")

    def human_gate(self) -> None:
        self.out.chapter(3, "A payment is held at a human gate")
        self.act("payments-agent", "payments.verify-payee", "allow", {"payee": "globex-gmbh"})
        d = self.act("payments-agent", "payments.transfer", "require_approval", INVOICE)
        aid = str(d.obligations.get("approval_id", ""))
        self.ids["approval"] = aid
        self.out.say(
            f"approval {aid} opened: 2 of treasury (alice, bob, carol), not the requester, within 4 h"
        )
        if not aid:
            self.problems.append("the payment decision carried no approval id")
            return
        doc = self.b.approve(aid, "alice", "invoice matches PO-7781")
        self.human("alice", f"approves {aid} -> {doc['status']} (1 of 2)", minutes=0)
        self.b.advance(7 * 60)
        doc = self.b.approve(aid, "bob", "bank details confirmed by phone")
        self.human("bob", f"approves {aid} -> {doc['status']} (2 of 2)")
        if doc["status"] != "approved":
            self.problems.append(f"approval {aid} is {doc['status']} after two approvals")
        paid = self.act("payments-agent", "payments.transfer", "allow", INVOICE, approval=aid)
        self.ids["payment"] = paid.id
        self.out.say("the payments agent resubmits with the approval: every boundary is checked again")
        self.act("payments-agent", "payments.transfer", "deny", INVOICE, approval=aid)
        self.out.say("the same approval a second time: an approval is used once")

    def conflicting_signals(self) -> None:
        self.out.chapter(4, "Conflicting signals are escalated")
        for s in SIGNALS:
            score = f" (score {s['score']})" if "score" in s else ""
            self.human(s["source"], f"signal {s['kind']}{score}: {s['note']}")
        d = self.act("payments-agent", "payments.transfer", "escalate", SURCHARGE, signals=SIGNALS)
        esc = d.obligations.get("escalation") or {}
        chain = " -> ".join(
            f"{s['target']} ({int((s.get('timeout_s') or 0) / 60)} min)" for s in esc.get("chain", [])
        )
        self.ids["escalation"] = str(esc.get("id", ""))
        self.out.say(f"escalation {esc.get('id')}: {chain} -> finally {esc.get('fallback')}")
        self.out.say(
            "research's 'no issue' cannot cancel risk's and compliance's findings (rank in org.charter)"
        )

    def runaway_loop(self) -> None:
        self.out.chapter(5, "A runaway loop trips and halts the agent")
        q = {"q": "globex-gmbh exposure"}
        for _ in range(5):
            self.act("risk-agent", "kb.read", "allow", q, quiet=True)
        self.out.say("risk-agent reads the same page 5 times in 15 s: allowed each time")
        self.act("risk-agent", "kb.read", "halt", q)
        self.act("risk-agent", "llm.complete", "halt", {"prompt": "summarise exposure"}, cost={"USD": 0.4})
        self.out.say("the tripwire set a stop on risk-agent: everything it tries now halts")

    def emergency_stop(self) -> None:
        self.out.chapter(6, "An operator's emergency stop, and a two-person resume")
        self.b.stop("workflow", WORKFLOW, "ERP connector is posting duplicate invoices", "olga")
        self.human("olga", f"stops workflow {WORKFLOW}: ERP connector is posting duplicate invoices")
        deploy = {"service": "erp-connector", "env": "staging"}
        self.act("coding-agent", "deploy.release", "halt", deploy)
        r = self.b.resume("workflow", WORKFLOW, "olga")
        self.human(
            "olga",
            f"asks to resume -> resumed: {r['resumed']} ({r['have']} of {r['need']} operators)",
            minutes=5,
        )
        r2 = self.b.resume("workflow", WORKFLOW, "peter")
        self.human(
            "peter",
            f"confirms -> resumed: {r2['resumed']} ({r2['have']} of {r2['need']} operators)",
            minutes=2,
        )
        if r["resumed"] or not r2["resumed"]:
            self.problems.append("the resume did not need exactly two operators")
        self.act("coding-agent", "deploy.release", "allow", deploy)

    def the_record(self) -> None:
        self.out.chapter(7, "The record: why was the payment allowed, and is the trace intact?")
        pid = self.ids.get("payment", "")
        trace = self.b.trace_path or "<the sidecar's trace>"
        lines = self.b.explain(pid)
        self.out.command(f"charter trace explain {pid} --trace {trace}", lines)
        if not any("alice" in ln and "bob" in ln for ln in lines):
            self.problems.append("the explanation of the payment does not name both approvers")
        ok, text = self.b.verify()
        if self.b.trace_path:
            self.out.command(f"charter trace verify --trace {trace}", [text])
        else:
            self.out.say(text)
        if not ok:
            self.problems.append("the trace does not verify")
