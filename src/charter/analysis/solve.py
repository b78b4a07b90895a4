"""The answers (proved, counterexample, unknown) and the solver loop shared by diff, prove and lint."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import z3

from charter.analysis.encode import BY_RANK, SymRequest
from charter.analysis.replay import Concrete, concretise, replay
from charter.engine.policy import CompiledPolicy
from charter.enums import Outcome

#: Per solver call (ms); a call that runs out answers UNKNOWN with the reason "timeout".
TIMEOUT_MS = 20_000


class Answer(enum.StrEnum):
    """What a question got: a proof, a counterexample (replayed through the engine) or unknown."""

    PROVED = "proved"
    COUNTEREXAMPLE = "counterexample"
    UNKNOWN = "unknown"


@dataclass
class Witness:
    """A concrete request (and state) with the outcomes the encoding claims and the engine gave."""

    concrete: Concrete
    claimed: tuple[str, ...]
    replayed: tuple[str, ...]

    @property
    def reproduced(self) -> bool:
        """The engine gave exactly the claimed outcomes."""
        return self.claimed == self.replayed

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out: dict[str, Any] = {"request": self.concrete.request}
        state = self.concrete.state()
        if state:
            out["state"] = state
        out["outcomes"] = list(self.replayed)
        return out


@dataclass
class Search:
    """The result of one satisfiability search: a reproduced witness, proof, or unknown with reasons."""

    answer: Answer
    witness: Witness | None = None
    reasons: list[str] = field(default_factory=list)


class Stats:
    """Counterexamples replayed and reproduced (the measure of the encoding's fidelity)."""

    replayed = 0
    reproduced = 0
    mismatches: list[str] = []  # noqa: RUF012 - process-wide tally read by tests and the CLI


_FLAGS = ("actor.roles", "action.labels", "signal", "run.mark", "run.labels")


def _simplifications(req: SymRequest) -> list[z3.BoolRef]:
    """Literals that make a counterexample smaller, tried one by one (kept when still satisfiable)."""
    out: list[z3.BoolRef] = []
    for key, v in req.values().items():
        if key[-1] == "present" or key[0] in (
            "actor.roles",
            "action.labels",
            "signal",
            "run.mark",
            "run.labels",
        ):
            out.append(z3.Not(v))
    for key, v in req.values().items():
        if key[0] in ("state.rate",) or (key[0] == "state.budget" and len(key) == 2):
            out.append(v == 0)
        elif z3.is_string(v) and key[0] != "run.mark":
            out.append(z3.Length(v) == 0)
    for term in req.ctx_ids.values():
        out.append(z3.Length(term) == 0)
    out += [req.chain_len == 0, req.run_steps == 0, z3.Length(req.human) == 0]
    return out


def _minimal(s: z3.Solver, lits: list[z3.BoolRef]) -> z3.ModelRef:
    """A model of ``s`` (known satisfiable) keeping as many simplifying literals as it can:
    assume them all, drop one literal of each unsat core until the rest is satisfiable."""
    flags = [z3.Bool(f"simplify#{i}") for i in range(len(lits))]
    s.push()
    s.add(*[z3.Implies(f, lit) for f, lit in zip(flags, lits, strict=True)])
    assumed = list(flags)
    for _ in range(len(flags) + 1):
        res = s.check(*assumed)
        if res == z3.sat:
            break
        core = {str(c) for c in s.unsat_core()} if res == z3.unsat else {str(f) for f in assumed}
        if not core:
            assumed = []
            continue
        drop = next(f for f in assumed if str(f) in core)
        assumed.remove(drop)
    else:  # pragma: no cover - each round drops one flag, so the loop ends with sat
        s.check()
    if s.check(*assumed) != z3.sat:
        s.check()
    model = s.model()
    s.pop()
    return model


def _ensure_history(req: SymRequest) -> list[z3.BoolRef]:
    # a run that has seen an event has at least one step
    out = []
    for key, v in req.values().items():
        if key[0] in ("run.mark", "run.labels"):
            out.append(z3.Implies(v, req.run_steps >= 1))
    return out


def search(
    req: SymRequest,
    goal: z3.BoolRef,
    policies: list[CompiledPolicy],
    outcomes: list[z3.ArithRef],
    approximations: list[str],
    check: Callable[[tuple[str, ...]], bool] | None = None,
    attempts: int = 3,
) -> Search:
    """Is ``goal`` satisfiable? A model is minimised, read back and replayed through every policy;
    the witness counts only when the engine gives the outcomes the encoding claims."""
    s = z3.Solver()
    s.set(timeout=TIMEOUT_MS)
    s.add(*req.constraints)
    s.add(*_ensure_history(req))
    s.add(goal)
    reasons: list[str] = []
    for _ in range(attempts):
        res = s.check()
        if res == z3.unsat:
            if reasons:  # an earlier model did not reproduce: the rest is proved, but not that one
                return Search(Answer.UNKNOWN, None, reasons)
            return Search(Answer.PROVED)
        if res == z3.unknown:
            return Search(Answer.UNKNOWN, None, [f"the solver gave up: {s.reason_unknown()}"])
        model = _minimal(s, _simplifications(req))
        concrete = concretise(model, req, policies)
        claimed = tuple(BY_RANK[model.eval(o, model_completion=True).as_long()].value for o in outcomes)
        got = tuple(o.value if isinstance(o, Outcome) else o for o in (replay(p, concrete) for p in policies))
        witness = Witness(concrete, claimed, got)
        Stats.replayed += 1
        if witness.reproduced or (check is not None and check(got)):
            Stats.reproduced += 1
            return Search(Answer.COUNTEREXAMPLE, witness)
        inexact = _inexact_doubles(model, req)
        if inexact and not approximations:
            approximations = [f"doubles are encoded as reals ({inexact} is not a double)"]
        if not approximations:
            msg = f"encoding mismatch: claimed {claimed}, the engine gave {got} for {concrete.request}"
            Stats.mismatches.append(msg)
            return Search(Answer.UNKNOWN, witness, [msg])
        reasons = [f"a counterexample did not reproduce ({', '.join(approximations[:3])})"]
        # look for another model: some opaque value or a request variable must differ
        diff = [v != model.eval(v, model_completion=True) for v in _model_terms(req)]
        if not diff:
            break
        s.add(z3.Or(*diff))
    return Search(Answer.UNKNOWN, None, reasons + approximations)


def _inexact_doubles(model: z3.ModelRef, req: SymRequest) -> str:
    """A double variable whose model value no float holds exactly (rounding may change the outcome)."""
    from fractions import Fraction

    for key, v in req.values().items():
        if key[-1] == "double" and z3.is_const(v):
            got = model.eval(v, model_completion=True)
            if z3.is_rational_value(got):
                frac = Fraction(got.numerator_as_long(), got.denominator_as_long())
                if Fraction(float(frac)) != frac:
                    return f"{'.'.join(str(k) for k in key[:-1])} = {got}"
    return ""


def _model_terms(req: SymRequest) -> list[Any]:
    out: list[Any] = [pair[0] for pair in req.opaque.values()]
    out += [pair[1] for pair in req.opaque.values()]
    return out or [v for k, v in req.values().items() if not (len(k) > 1 and k[-1] == "#n")]


__all__ = ["Answer", "Search", "Stats", "Witness", "search"]
