"""Runs generated (policy, request, state) triples through the engine and the reference."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
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
    instances whose use an allow spends, the grant instances granted() consulted (id, kind, covers,
    uses left)."""
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
        sorted((g["id"], g["kind"], g["covers"], g["uses_left"]) for g in getattr(d, "grants", ())),
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
        sorted(ref.consulted),
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
    # one clock for both engines and the reference: request i is decided at SEED_AT + i (its
    # context.time), so `within D` windows are deterministic
    clock = [SEED_AT]
    engine = charter.Engine(policy, store=store, clock=lambda: clock[0])
    # the same triples through the general path (no specialisation): whole decisions must agree
    general = charter.Engine(policy, store=general_store, specialise=False, clock=lambda: clock[0])
    state = evaluator.State(set(stops), {(b, v): evaluator.micros(a) for b, v, a in used}, now=SEED_AT)
    begins = gen.run_grants(rng, world) if world.grant_kinds else [(run, "", []) for run in gen.RUNS]
    for run_id, actor, grants in begins:
        labels = gen.run_labels(rng, world)
        if not grants and not labels:
            continue
        try:
            begun = engine.begin_run(run_id, actor=actor, grants=grants, labels=labels)
        except charter.Error as exc:  # a grant the policy refuses: both sides begin no run
            raise AssertionError(f"seed={seed}: the generated grants were refused: {exc}") from exc
        general.begin_run(run_id, actor=actor, grants=grants, labels=labels)
        state.runs[run_id] = evaluator.RunRef(
            actor,
            [
                {"id": g.id, "kind": g.kind, "params": dict(g.params), "uses_left": g.uses_left}
                for g in begun.grants
            ],
        )
        evaluator.arrive(state.runs[run_id], labels, SEED_AT)  # at step 0 (docs/semantics.md 8.1)
    for run_id, actor, events in gen.run_imports(rng, world, SEED_AT):
        engine.import_run(run_id, actor=actor, events=events)
        general.import_run(run_id, actor=actor, events=events)
        # imported calls are the run's history as allowed calls are (docs/semantics.md 8.3)
        ref_run = state.runs.setdefault(run_id, evaluator.RunRef())
        for ev in events:
            entry = {"kind": "call", "target": ev["target"], "args": dict(ev["args"]), "agent": actor}
            result = evaluator.convert_result(policy, ev["target"], ev.get("result") or {})
            ref_run.actions.append({**entry, "at": ev["at"], "result": result})
            # its labels arrive at its step and time (docs/semantics.md 8.3)
            evaluator.arrive(ref_run, ev.get("labels", ()), ev["at"])
    pending: list[tuple[str, str, str, int, dict[str, Any]]] = []  # allowed calls not settled yet
    for i in range(requests):
        req = gen.request(rng, world, i)
        clock[0] = state.now = SEED_AT + i
        ref = evaluator.evaluate(policy, req, state)
        dg = None
        try:
            d = engine.decide(req)
            eng = engine_view(d)
            dg = general.decide(req)
            whole, whole_general = _whole(d.to_dict()), _whole(dg.to_dict())
            if whole != whole_general:
                eng = (
                    f"specialised != general: {whole} != {whole_general}",
                    [],
                    False,
                    [],
                    [],
                    [],
                    [],
                    [],
                    [],
                )
        except Exception as exc:
            eng = (f"crash: {type(exc).__name__}: {exc}", [], False, [], [], [], [], [], [])
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
        if ref.record is not None and dg is not None:
            run_id = ref.record[0]
            pending.append((d.id, dg.id, run_id, len(state.runs[run_id].actions) - 1, req))
        if pending:
            # §8: an allowed call's result, settled on all three sides, now or after later steps
            # (a settlement's labels arrive at the run's current step, not the call's)
            pick = rng.randrange(len(pending))
            settled = gen.settlement(rng, world, pending[pick][4])
            if settled is not None:
                did, gid, run_id, index, _ = pending.pop(pick)
                labels, result = settled
                engine.settle(did, labels=labels, result=result)
                general.settle(gid, labels=labels, result=result)
                evaluator.settle(policy, state, run_id, index, labels, result)
    return out
