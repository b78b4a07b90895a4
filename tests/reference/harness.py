"""Runs generated (policy, request, state) triples through the engine and the reference."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import charter
from charter.engine.policy import CompiledPolicy
from charter.state.memory import MemoryStore
from charter.state.types import Batch, BudgetLine, ReserveOp, StopRecord

from . import evaluator, gen

SEED_AT = 1736942400.0  # 2025-01-15T12:00:00Z, the requests' base time


@dataclass
class Mismatch:
    """One disagreement, with everything needed to replay it."""

    seed: int
    index: int
    policy: str
    request: dict[str, Any]
    engine: tuple[Any, ...]
    reference: tuple[Any, ...]
    stops: list[tuple[str, str]]
    used: dict[tuple[str, str], int]

    def __str__(self) -> str:
        return (
            f"seed={self.seed} request#{self.index}\n--- policy\n{self.policy}\n--- request\n"
            f"{self.request}\n--- stops {self.stops}\n--- used {self.used}\n"
            f"engine    {self.engine}\nreference {self.reference}"
        )


@dataclass
class Run:
    """Counts of one differential run."""

    triples: int = 0
    policies: int = 0
    rejected: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)


def seed_store(
    policy: CompiledPolicy,
    store: MemoryStore,
    stops: list[tuple[str, str]],
    used: list[tuple[str, str, float]],
) -> None:
    """Put the initial state in the store (budget spend as long-lived holds on engine keys)."""
    for scope, value in stops:
        store.set_stop(StopRecord(scope, value, "seeded", "test", SEED_AT - 60))
    budgets = {b.id: b for b in policy.budgets}
    for n, (bid, value, amount) in enumerate(used):
        b = budgets[bid]
        line = BudgetLine(f"b:{bid}:{value}", 10**15, evaluator.micros(amount), b.rolling_seconds, None)
        store.apply(Batch(now=SEED_AT - 60, reserve=ReserveOp(f"seed-{n}", (line,), 10.0**7)))


def engine_view(d: Any) -> tuple[Any, ...]:
    """The decision content compared: outcome, deciding rule ids, default deny, and the rest of the
    decision the reference models: failures (where, the mode taken), the human gates a
    require_approval names, the stops a halt sets, the budget lines an allow holds, the grant
    instances whose use an allow spends."""
    ob = d.obligations
    return (
        d.outcome.value,
        [h.id for h in d.rules],
        d.default_deny,
        sorted({(f.where, f.took) for f in d.failures}),
        [g["rule"] for g in ob.get("approvals", [])],
        sorted({(s["scope"], s["value"]) for s in ob.get("stops", [])}),
        sorted((b.id, b.key.split(":")[2]) for b in d.boundaries if b.kind == "budget" and b.ok and b.key)
        if d.allowed
        else [],
        sorted(b.id for b in d.boundaries if b.kind == "grant"),
    )


def reference_view(ref: evaluator.Verdict) -> tuple[Any, ...]:
    """The same content, from the reference."""
    return (
        ref.outcome.value,
        ref.rules,
        ref.default_deny,
        sorted(ref.failures),
        ref.gates,
        sorted(set(ref.stops)),
        sorted((bid, value) for bid, value, _ in ref.reserve),
        sorted(gid for _, gid in ref.grant_uses),
    )


def same(eng: tuple[Any, ...], ref: evaluator.Verdict) -> bool:
    """Agreement; for an emergency stop the engine names one of the covering stops."""
    if ref.rules and ref.rules[0].startswith("stop:"):
        return eng[0] == "halt" and len(eng[1]) == 1 and eng[1][0] in ref.rules
    return eng == reference_view(ref)


def _whole(d: dict[str, Any]) -> dict[str, Any]:
    """A decision as compared between the specialised and the general engine (no id, no latency,
    no ids of records it opened)."""
    out = {k: v for k, v in d.items() if k not in ("id", "elapsed_us")}
    ob = dict(out["obligations"])
    for k in ("approval_id", "approval_expires_at"):
        ob.pop(k, None)
    if "escalation" in ob:
        ob["escalation"] = {k: v for k, v in ob["escalation"].items() if k != "id"}
    out["obligations"] = ob
    if out.get("hold_id"):
        out["hold_id"] = "<hold>"
    return out


def run(
    seed: int, requests: int, features: frozenset[str] = gen.SAFE_FEATURES, result: Run | None = None
) -> Run:
    """One seeded policy, its initial state and ``requests`` requests decided by both sides."""
    rng = random.Random(seed)
    return run_world(gen.PolicyGen(rng, features).policy(), rng, requests, result, seed)


def run_world(
    world: gen.World, rng: random.Random, requests: int, result: Run | None = None, seed: int = -1
) -> Run:
    """Compile a generated policy, seed both states, then decide requests in order on both sides.

    Stops at the first disagreement of a policy (the two states may differ after it).
    """
    out = result or Run()
    text = world.text()
    try:
        policy = charter.loads(text)
    except charter.CharterError:
        out.rejected += 1
        return out
    out.policies += 1
    stops, used = gen.initial_state(rng, world)
    store, general_store = MemoryStore(), MemoryStore()
    seed_store(policy, store, stops, used)
    seed_store(policy, general_store, stops, used)
    # the engines' clock follows the requests' context.time (the engine times its state by its
    # clock, never by the request; the reference evaluator reads the request's time)
    clock: list[float | None] = [None]

    def now_of() -> float:
        return time.time() if clock[0] is None else clock[0]

    engine = charter.Engine(policy, store=store, clock=now_of)
    # the same triples through the general path (no specialisation): whole decisions must agree
    general = charter.Engine(policy, store=general_store, specialise=False, clock=now_of)
    state = evaluator.State(set(stops), {(b, v): evaluator.micros(a) for b, v, a in used})
    for run_id, actor, grants in gen.run_grants(rng, world):
        try:
            begun = engine.begin_run(run_id, actor=actor, grants=grants)
        except charter.Error as exc:  # a grant the policy refuses: both sides begin no run
            raise AssertionError(f"seed={seed}: the generated grants were refused: {exc}") from exc
        general.begin_run(run_id, actor=actor, grants=grants)
        state.runs[run_id] = evaluator.RunRef(
            actor,
            [
                {"id": g.id, "kind": g.kind, "params": dict(g.params), "uses_left": g.uses_left}
                for g in begun.grants
            ],
        )
    now = time.time()
    for run_id, actor, events in gen.run_imports(rng, world, now):
        engine.import_run(run_id, actor=actor, events=events)
        general.import_run(run_id, actor=actor, events=events)
        # imported calls are the run's history as allowed calls are (docs/semantics.md 8.3)
        ref_run = state.runs.setdefault(run_id, evaluator.RunRef())
        ref_run.actions += [("call", ev["target"], dict(ev["args"]), actor) for ev in events]
    for i in range(requests):
        req = gen.request(rng, world, i)
        clock[0] = datetime.fromisoformat(req["context"]["time"]).timestamp()
        ref = evaluator.evaluate(policy, req, state)
        try:
            d = engine.decide(req)
            eng = engine_view(d)
            whole, whole_general = _whole(d.to_dict()), _whole(general.decide(req).to_dict())
            if whole != whole_general:
                eng = (f"specialised != general: {whole} != {whole_general}", [], False, [], [], [], [], [])
        except Exception as exc:
            eng = (f"crash: {type(exc).__name__}: {exc}", [], False, [], [], [], [], [])
        out.triples += 1
        out.outcomes[ref.outcome.value] = out.outcomes.get(ref.outcome.value, 0) + 1
        if not same(eng, ref):
            out.mismatches.append(
                Mismatch(
                    seed,
                    i,
                    text,
                    req,
                    eng,
                    reference_view(ref),
                    sorted(state.stops),
                    dict(state.used),
                )
            )
            return out
        evaluator.apply(state, ref)
    return out
