"""Semantic diff of two policy versions over the declared catalog: which actions an edit widens or narrows."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from charter.engine.boundaries import boundaries
from charter.engine.evaluate import evaluate
from charter.engine.policy import CompiledPolicy, Rule
from charter.engine.validate import validate_request
from charter.engine.view import RunView, build_view
from charter.enums import Outcome

_NUM = re.compile(r"args\.(\w+)\s*(?:[<>]=?|==|!=)\s*(-?\d+(?:\.\d+)?)")
_STR = re.compile(r"args\.(\w+)\s*(?:==|!=)\s*\"([^\"]*)\"")
_IN = re.compile(r"args\.(\w+)\s+in\s+\[([^\]]*)\]")
_PREFIX = re.compile(r"args\.(\w+)\.startsWith\(\"([^\"]*)\"\)")
_BASE = {"string": "x", "double": 0.0, "int": 0, "bool": False}
NOW = 1_900_000_000.0


@dataclass(slots=True)
class Change:
    """One difference: widen or narrow, what it is about, old and new values."""

    direction: str  # widen | narrow | change
    kind: str  # decision | budget | rate | tripwire | rule
    subject: str
    old: Any
    new: Any
    detail: str = ""
    request: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        d = {
            "direction": self.direction,
            "kind": self.kind,
            "subject": self.subject,
            "old": self.old,
            "new": self.new,
            "detail": self.detail,
        }
        if self.request:
            d["request"] = self.request
        return d


def _literals(policy: CompiledPolicy, tool: str) -> dict[str, list[Any]]:
    """Argument values that sit on the thresholds of conditions mentioning ``args``."""
    out: dict[str, list[Any]] = {}
    items: list[Any] = [*policy.rules, *policy.budgets, *policy.rates, *policy.tripwires]
    for it in items:
        t = it.selector.target
        if not (t.any or tool in t.names):
            continue
        for cond in getattr(it, "conditions", ()):
            for name, num in _NUM.findall(cond.text):
                v = float(num)
                out.setdefault(name, []).extend([v - 1, v, v + 1])
            for name, s in _STR.findall(cond.text):
                out.setdefault(name, []).append(s)
            for name, body in _IN.findall(cond.text):
                out.setdefault(name, []).extend(re.findall(r"\"([^\"]*)\"", body))
            for name, pre in _PREFIX.findall(cond.text):
                out.setdefault(name, []).append(pre + "x")
    return out


def _signals(policy: CompiledPolicy, tool: str) -> list[str]:
    kinds: set[str] = set()
    for r in policy.rules:
        t = r.selector.target
        if t.any or tool in t.names:
            kinds |= {s.kind for s in r.signals}
    return sorted(kinds)


def catalog(old: CompiledPolicy, new: CompiledPolicy) -> Iterator[dict[str, Any]]:
    """Requests over every declared agent x tool (with threshold-crossing arguments) and delegation."""
    agents = sorted(set(old.agents) | set(new.agents))
    tools = sorted(set(old.tools) | set(new.tools))
    for tool in tools:
        info = new.tools.get(tool) or old.tools[tool]
        base = {k: _BASE.get(v, "x") for k, v in info.args.items()}
        values: dict[str, list[Any]] = {}
        for pol in (old, new):
            for k, vs in _literals(pol, tool).items():
                values.setdefault(k, []).extend(vs)
        for k, typ in info.args.items():
            if typ == "bool":
                values.setdefault(k, []).append(True)
        variants = [base]
        for k, vs in values.items():
            typ = info.args.get(k, "")
            for v in dict.fromkeys(vs):
                if typ == "int" and isinstance(v, float):
                    v = int(v)
                variants.append({**base, k: v})
        sigs = sorted(set(_signals(old, tool)) | set(_signals(new, tool)))
        for agent, args in itertools.product(agents, variants):
            yield {"actor": {"id": agent}, "action": {"kind": "call", "target": tool, "args": args}}
            for kind in sigs:
                src = new.signal_kind_source.get(kind) or old.signal_kind_source.get(kind) or "agent"
                yield {
                    "actor": {"id": agent},
                    "action": {"kind": "call", "target": tool, "args": args},
                    "signals": [{"source": src, "kind": kind, "score": 1.0}],
                }
    for a, b in itertools.product(agents, agents):
        if a != b:
            yield {"actor": {"id": a}, "action": {"kind": "delegate", "target": b}}


def decide(
    policy: CompiledPolicy, request: Mapping[str, Any], history: bool = False
) -> tuple[Outcome, list[str], list[Rule]]:
    """The outcome of the rules alone (no stored state), deciding rule ids and approval rules.

    With ``history`` the run has already seen every event and label that sequences refer to.
    """
    req = validate_request(request)
    view = build_view(policy, req, NOW)
    if history and policy.marks:
        labels = frozenset(lab for m in policy.marks for lab in m.labels)
        view.run = RunView(1, labels, {m.id: (0, NOW) for m in policy.marks})
    else:
        view.run = RunView()  # a run that has seen nothing yet
    v = evaluate(view, view.select(policy.index["rules"]))
    return v.outcome, [h.id for h in v.deciding], list(v.approvals)


def _subject(r: Mapping[str, Any]) -> str:
    a = r["action"]
    verb = "call" if a["kind"] == "call" else "delegate to"
    args = ", ".join(f"{k}={v!r}" for k, v in a.get("args", {}).items())
    sig = "".join(f" [signal {s['kind']}]" for s in r.get("signals", ()))
    return f"{r['actor']['id']} {verb} {a['target']}" + (f"({args})" if args else "") + sig


def _gates(rules: list[Rule]) -> dict[str, tuple[int, str]]:
    return {r.id: (r.approval.quorum, r.approval.group) for r in rules if r.approval is not None}


def _limits(policy: CompiledPolicy) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for kind, item in boundaries(policy):
        loose = kind.looseness(item)
        if loose is not None:
            out[(str(kind.kind), item.id)] = loose
    return out


def diff(old: CompiledPolicy, new: CompiledPolicy) -> list[Change]:
    """Every widening and narrowing from ``old`` to ``new``."""
    changes: list[Change] = []
    seen: set[tuple[str, ...]] = set()
    for r, history in itertools.product(catalog(old, new), (False, True)):
        if history and not (old.marks or new.marks):
            continue
        o_out, o_ids, o_ap = decide(old, r, history)
        n_out, n_ids, n_ap = decide(new, r, history)
        subject = _subject(r) + (" [after earlier steps]" if history else "")
        if o_out is not n_out:
            direction = "widen" if n_out.rank < o_out.rank else "narrow"
            detail = f"{', '.join(o_ids) or 'default deny'} -> {', '.join(n_ids) or 'default deny'}"
            once = (_subject({**r, "signals": []}), o_out.value, n_out.value, detail + str(history))
            if once in seen:
                continue  # the same change without the signal is already reported
            seen.add(once)
            changes.append(Change(direction, "decision", subject, o_out.value, n_out.value, detail, r))
        elif o_out is Outcome.REQUIRE_APPROVAL and _gates(o_ap) != _gates(n_ap):
            og, ng = _gates(o_ap), _gates(n_ap)
            oq, nq = sum(q for q, _ in og.values()), sum(q for q, _ in ng.values())
            direction = "widen" if nq < oq or len(ng) < len(og) else "narrow" if nq > oq else "change"
            changes.append(Change(direction, "decision", subject, og, ng, "approval gates changed", r))
    ol, nl = _limits(old), _limits(new)
    for lim in sorted(set(ol) | set(nl)):
        kind, ident = lim
        key = lim
        if key not in nl:
            changes.append(Change("widen", kind, ident, ol[key], None, f"{kind} removed"))
        elif key not in ol:
            changes.append(Change("narrow", kind, ident, None, nl[key], f"{kind} added"))
        elif nl[key] != ol[key]:
            direction = "widen" if nl[key] > ol[key] else "narrow"
            word = "raised" if direction == "widen" else "lowered"
            unit = "limit" if kind == "budget" else "per second"
            changes.append(Change(direction, kind, ident, ol[key], nl[key], f"{kind} {unit} {word}"))
    orules = {r.id: r for r in old.rules}
    nrules = {r.id: r for r in new.rules}
    for rid in sorted(set(orules) - set(nrules)):
        direction = "narrow" if orules[rid].effect is Outcome.ALLOW else "widen"
        changes.append(Change(direction, "rule", rid, orules[rid].kind.value, None, "rule removed"))
    for rid in sorted(set(nrules) - set(orules)):
        direction = "widen" if nrules[rid].effect is Outcome.ALLOW else "narrow"
        changes.append(Change(direction, "rule", rid, None, nrules[rid].kind.value, "rule added"))
    return changes
