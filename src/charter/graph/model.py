"""Pictures of a policy as neutral graphs (nodes, edges, clusters), built from the compiled policy's
public fields or from one decision's trace record; mermaid.py and dot.py only render them."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from charter.engine.policy import CompiledPolicy, Selector
from charter.enums import Outcome, Scope
from charter.trace.story import human_steps

#: How a person's answer reads in a picture.
_HUMAN = {
    "approved-by": "approved",
    "denied": "denied",
    "answered allow": "allowed",
    "answered deny": "denied",
}


class Shape(enum.Enum):
    """How a node is drawn."""

    BOX = "box"
    ROUND = "round"
    STADIUM = "stadium"
    DIAMOND = "diamond"
    NOTE = "note"


class Tone(enum.Enum):
    """What a node or edge means, for colour: an outcome, a limit, a person, neutral."""

    NEUTRAL = "neutral"
    ALLOW = "allow"
    APPROVAL = "require_approval"
    ESCALATE = "escalate"
    DENY = "deny"
    HALT = "halt"
    LIMIT = "limit"
    PERSON = "person"


@dataclass(frozen=True)
class Node:
    """A box in the picture."""

    id: str
    label: str
    shape: Shape = Shape.BOX
    tone: Tone = Tone.NEUTRAL
    cluster: str | None = None


@dataclass(frozen=True)
class Edge:
    """An arrow; ``dashed`` for what happens only sometimes (a fallback, a forbid)."""

    source: str
    target: str
    label: str = ""
    dashed: bool = False


@dataclass
class Graph:
    """A picture: a title, a direction (TB or LR), nodes, edges and named clusters."""

    title: str
    direction: str = "TB"
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    clusters: dict[str, str] = field(default_factory=dict)

    def node(
        self,
        id: str,
        label: str,
        shape: Shape = Shape.BOX,
        tone: Tone = Tone.NEUTRAL,
        cluster: str | None = None,
    ) -> str:
        """Add a node once (the first label wins); returns its id."""
        if all(n.id != id for n in self.nodes):
            self.nodes.append(Node(id, label, shape, tone, cluster))
        return id

    def edge(self, source: str, target: str, label: str = "", dashed: bool = False) -> None:
        """Add an edge once."""
        e = Edge(source, target, label, dashed)
        if e not in self.edges:
            self.edges.append(e)


def ident(*parts: str) -> str:
    """A node id safe in Mermaid and DOT: letters, digits and underscores."""
    return "_".join(re.sub(r"[^A-Za-z0-9]", "_", p) for p in parts)


_OUTCOME_TONE = {o: Tone(o.value) for o in Outcome}


def tone(outcome: Outcome | str | None) -> Tone:
    """The tone of an outcome."""
    if outcome is None:
        return Tone.NEUTRAL
    o = outcome if isinstance(outcome, Outcome) else Outcome(outcome)
    return _OUTCOME_TONE[o]


def _amount(micros: int) -> str:
    value = Decimal(micros) / Decimal(1_000_000)
    text = f"{value:,.6f}".rstrip("0").rstrip(".")
    return text


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size and s % size == 0:
            return f"{s // size}{unit}"
    return f"{s}s" if s == seconds else f"{seconds:g}s"


def _who(sel: Selector) -> str:
    if sel.actor_any:
        return "any agent"
    parts = [f"role {r}" for r in sorted(sel.actor_roles)] + [f"agent {a}" for a in sorted(sel.actor_agents)]
    return ", ".join(parts)


def _what(sel: Selector, policy: CompiledPolicy) -> str:
    kind = sel.kind.value if sel.kind is not None else "any action"
    if sel.target.any:
        return kind if sel.kind is None else f"{kind} any"
    names = sorted(sel.target.names) + [f"role {r}" for r in sorted(sel.target.roles)]
    shown = ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "")
    return f"{kind} {shown}"


# ---- views --------------------------------------------------------------------------------------
#: The budget hierarchy from the widest scope to the narrowest (docs/semantics.md: budgets nest).
HIERARCHY = (Scope.GLOBAL, Scope.ORG, Scope.TENANT, Scope.WORKFLOW, Scope.AGENT, Scope.RUN)


def budgets(policy: CompiledPolicy) -> Graph:
    """The budget hierarchy (org > workflow > agent > run) with each budget's and rate's limit."""
    g = Graph(f"Budgets of {policy.name}", "TB")
    used = {b.scope for b in policy.budgets} | {r.scope for r in policy.rates}
    levels = [s for s in HIERARCHY if s in used or s in (Scope.ORG, Scope.WORKFLOW, Scope.AGENT, Scope.RUN)]
    levels += sorted(used - set(levels), key=lambda s: s.value)
    prev = None
    for scope in levels:
        nid = g.node(ident("scope", scope.value), f"per {scope.value}", Shape.STADIUM)
        if prev is not None and scope in HIERARCHY:
            g.edge(prev, nid, "contains")
        if scope in HIERARCHY:
            prev = nid
    for b in sorted(policy.budgets, key=lambda b: b.id):
        window = b.calendar.value if b.calendar else _duration(b.rolling_seconds)
        label = f"budget {b.id}\n{_amount(b.limit_micros)} {b.unit}" + (f" per {window}" if window else "")
        what = _what(b.selector, policy)
        if what != "any action":
            label += f"\n{what}"
        if b.by_arg is not None:
            label += f"\nby args.{b.by_arg}"
        nid = g.node(ident("budget", b.id), label, Shape.BOX, Tone.LIMIT)
        g.edge(ident("scope", b.scope.value), nid, "limit")
        if b.on_exceed is not Outcome.DENY:
            out = g.node(
                ident("outcome", b.on_exceed.value), b.on_exceed.value, Shape.ROUND, tone(b.on_exceed)
            )
            g.edge(nid, out, "on exceed", dashed=True)
    for r in sorted(policy.rates, key=lambda r: r.id):
        label = f"rate {r.id}\n{r.limit} per {_duration(r.window_seconds)}"
        what = _what(r.selector, policy)
        if what != "any action":
            label += f"\n{what}"
        if r.by_arg is not None:
            label += f"\nby args.{r.by_arg}"
        nid = g.node(ident("rate", r.id), label, Shape.BOX, Tone.LIMIT)
        g.edge(ident("scope", r.scope.value), nid, "limit")
    return g


def escalations(policy: CompiledPolicy) -> Graph:
    """Each escalation chain: its steps with their timeouts, then its fallback."""
    g = Graph(f"Escalation chains of {policy.name}", "LR")
    for name, path in sorted(policy.escalations.items()):
        cluster = ident("chain", name)
        g.clusters[cluster] = f"escalation {name}"
        prev = g.node(ident(cluster, "start"), f"escalate to {name}", Shape.STADIUM, Tone.ESCALATE, cluster)
        for i, step in enumerate(path.steps):
            members = policy.groups.get(step.target, ())
            who = f"\n{', '.join(members)}" if members else ""
            nid = g.node(ident(cluster, str(i)), f"{step.target}{who}", Shape.BOX, Tone.PERSON, cluster)
            g.edge(
                prev,
                nid,
                "first" if i == 0 else f"no answer in {_duration(path.steps[i - 1].timeout_seconds)}",
            )
            prev = nid
        last = path.steps[-1].timeout_seconds if path.steps else None
        fb = g.node(
            ident(cluster, "fallback"),
            f"finally {path.fallback.value}",
            Shape.ROUND,
            tone(path.fallback),
            cluster,
        )
        g.edge(prev, fb, f"no answer in {_duration(last)}" if last else "no answer", dashed=True)
    return g


def signals(policy: CompiledPolicy) -> Graph:
    """Signal sources by rank (higher outranks lower) and the signal kinds each source sends."""
    g = Graph(f"Signal ranks of {policy.name}", "TB")
    ranked = sorted(policy.signal_source_rank.items(), key=lambda kv: (-kv[1], kv[0]))
    prev = None
    for source, rank in ranked:
        nid = g.node(ident("source", source), f"{source}\nrank {rank}", Shape.STADIUM)
        if prev is not None:
            g.edge(prev, nid, "outranks")
        prev = nid
    for kind, source in sorted(policy.signal_kind_source.items()):
        src = g.node(ident("source", source), f"{source}\nunranked", Shape.STADIUM)
        clears = " (clears)" if kind in policy.signal_clears else ""
        nid = g.node(
            ident("signal", kind), f"{kind}{clears}", Shape.BOX, Tone.ALLOW if clears else Tone.NEUTRAL
        )
        g.edge(src, nid, "sends", dashed=True)
    return g


def access(policy: CompiledPolicy) -> Graph:
    """Which agents and roles may (or may never) call which tool categories, by permit and forbid."""
    g = Graph(f"Who may call what in {policy.name}", "LR")
    edges: dict[tuple[str, str, Outcome], list[str]] = {}
    categories: dict[str, str] = {name: t.category or "uncategorised" for name, t in policy.tools.items()}
    for rule in policy.rules:
        sel = rule.selector
        if sel.kind is not None and sel.kind.value != "call":
            continue
        if rule.effect not in (Outcome.ALLOW, Outcome.DENY, Outcome.HALT, Outcome.REQUIRE_APPROVAL):
            continue
        actors = _actors(sel)
        targets = (
            ["any tool"]
            if sel.target.any
            else sorted({categories.get(n, "undeclared") for n in sel.target.names})
        )
        for actor in actors:
            for target in targets:
                edges.setdefault((actor, target, rule.effect), []).append(rule.id)
    g.clusters["actors"] = "agents and roles"
    g.clusters["tools"] = "tool categories"
    for (actor, target, effect), rules in sorted(
        edges.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2].rank)
    ):
        a = g.node(ident("actor", actor), actor, Shape.STADIUM, cluster="actors")
        members = sorted(n for n, c in categories.items() if c == target)
        label = target + (f"\n{len(members)} tool{'s' if len(members) != 1 else ''}" if members else "")
        t = g.node(ident("category", target), label, Shape.BOX, cluster="tools")
        verb = {Outcome.ALLOW: "may", Outcome.REQUIRE_APPROVAL: "with approval"}.get(
            effect, f"never ({effect.value})"
        )
        g.edge(
            a, t, f"{verb}: {', '.join(sorted(rules)[:2])}{' +' if len(rules) > 2 else ''}", effect.rank >= 3
        )
    return g


def _actors(sel: Selector) -> list[str]:
    if sel.actor_any:
        return ["any agent"]
    return [f"role {r}" for r in sorted(sel.actor_roles)] + [f"agent {a}" for a in sorted(sel.actor_agents)]


VIEWS = {"budgets": budgets, "escalations": escalations, "signals": signals, "access": access}


# ---- one decision ---------------------------------------------------------------------------------
def decision(record: Mapping[str, Any], related: Iterable[Mapping[str, Any]] = ()) -> Graph:
    """The path one decision took: the request, the boundaries checked, the rules that decided, the
    combining rule, the outcome, and what people and the settlement did afterwards."""
    g = Graph(f"Decision {record.get('id', '?')}", "TB")
    req = record.get("request", {}) or {}
    actor = (req.get("actor") or {}).get("id") or record.get("agent") or "?"
    action = req.get("action") or {}
    what = f"{action.get('kind', 'call')} {action.get('target', '?')}"
    start = g.node("request", f"{actor}\n{what}", Shape.STADIUM)
    prev = start
    for sig in record.get("signals", []) or []:
        nid = g.node(
            ident("signal", str(sig.get("kind")), str(sig.get("source"))),
            f"signal {sig.get('kind')}\nfrom {sig.get('source')}",
            Shape.NOTE,
        )
        g.edge(nid, start, "seen", dashed=True)
    for i, b in enumerate(record.get("boundaries", []) or []):
        ok = bool(b.get("ok"))
        used, limit = b.get("used"), b.get("limit")
        value = f"\n{_num(used)} of {_num(limit)}" if used is not None and limit is not None else ""
        nid = g.node(
            ident("boundary", str(i)),
            f"{b.get('kind')} {b.get('id')}{value}\n{'ok' if ok else 'exceeded'}",
            Shape.BOX,
            Tone.LIMIT if ok else Tone.DENY,
        )
        g.edge(prev, nid, "checked")
        prev = nid
    for f in record.get("failures", []) or []:
        nid = g.node(
            ident("failure", str(f.get("id", f.get("rule", "")))),
            f"failed: {f.get('id', f.get('rule'))}\n{f.get('error', f.get('message', ''))}",
            Shape.NOTE,
            Tone.DENY,
        )
        g.edge(prev, nid, "error", dashed=True)
    combine = g.node("combine", "strictest wins", Shape.DIAMOND)
    hits = record.get("rules", []) or []
    if not hits and record.get("default_deny"):
        nid = g.node("default_deny", "no rule permits it\n(default deny)", Shape.BOX, Tone.DENY)
        g.edge(prev, nid, "matched nothing")
        g.edge(nid, combine)
    for hit in hits:
        nid = g.node(
            ident("rule", str(hit.get("id"))),
            f"{hit.get('kind')} {hit.get('id')}\n→ {hit.get('effect')}",
            Shape.BOX,
            tone(hit.get("effect")),
        )
        g.edge(prev, nid, "matched")
        g.edge(nid, combine)
    for s in record.get("shadow", []) or []:
        sid = s.get("id") if isinstance(s, Mapping) else str(s)
        nid = g.node(ident("shadow", str(sid)), f"shadow {sid}\n(recorded only)", Shape.NOTE)
        g.edge(prev, nid, "would match", dashed=True)
    outcome = str(record.get("outcome", "deny"))
    out = g.node("outcome", outcome.upper(), Shape.ROUND, tone(outcome))
    g.edge(combine, out)
    obligations = record.get("obligations", {}) or {}
    for i, ap in enumerate(obligations.get("approvals", []) or []):
        nid = g.node(
            ident("approval", str(i)),
            f"approval from {ap.get('group')}\nquorum {ap.get('quorum', 1)}",
            Shape.BOX,
            Tone.PERSON,
        )
        g.edge(out, nid, "needs")
    esc = obligations.get("escalation")
    if isinstance(esc, Mapping):
        nid = g.node(
            "escalation",
            f"escalated to {esc.get('target')}\nfallback {esc.get('fallback')}",
            Shape.BOX,
            Tone.PERSON,
        )
        g.edge(out, nid, "goes to")
    tail = out
    records: list[dict[str, Any]] = [dict(r) for r in related]
    for i, h in enumerate(human_steps(records)):
        what = _HUMAN.get(str(h.get("event")), str(h.get("event")))
        nid = g.node(ident("human", str(i)), f"{h.get('by')} {what}", Shape.BOX, Tone.PERSON)
        g.edge(tail, nid, "then")
        tail = nid
    for rec in records:
        if rec.get("kind") == "settlement":
            ev = rec.get("event", {}) or {}
            label = f"settled: {ev.get('result') or 'done'}"
            nid = g.node(ident("settled", str(rec.get("id"))), label, Shape.ROUND)
            g.edge(tail, nid, "after the action")
    return g


def _num(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
