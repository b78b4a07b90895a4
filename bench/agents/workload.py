"""The `agents` benchmark workload: the scenarios as runs of 10-30 steps, from a fixed seed.

An assistant reads more than the scenarios show before it acts (every message of a thread, every
page of results). Each benchmark run is one scenario whose reading steps are repeated, with a
page marker on their first text argument so no two calls are identical, until the run has
between ``min_steps`` and ``max_steps`` steps. The repeats carry the same provenance as the step
they copy, so the policy's decisions on the scenario's own steps do not change (the suite checks
that against expected.yaml), while the run's history and labels grow as in a long session.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bench.agents.scenario import Corpus, Scenario, Step

__all__ = ["BenchRun", "build_runs"]


@dataclass(frozen=True)
class BenchRun:
    """One run of the workload: a scenario with its reading steps repeated."""

    scenario: Scenario
    padding: int  # steps added to the scenario's own

    @property
    def steps(self) -> tuple[Step, ...]:
        """The run's steps."""
        return self.scenario.steps


def _page(step: Step, k: int, string_args: Sequence[str]) -> Step:
    """A copy of a reading step asking for page ``k`` (its first text argument marked)."""
    args = dict(step.args)
    if string_args:
        a = string_args[0]
        args[a] = f"{args[a]} ~p{k}"
    return replace(step, id=f"{step.id}_p{k}", args=args, injection=None)


#: the reading step a run may start with (the assistant looks up the user's own card): trusted,
#: not private and with a text argument, so it changes no label a rule reads and can repeat
WARM_UP = ("contacts.search", {"name": "Maya Lind"})
#: identical calls (a read with no text argument to mark) repeat at most this often, so a
#: loop tripwire (same call more than 5 times) never trips on the padding
IDENTICAL = 4


def _pad(corpus: Corpus, s: Scenario, length: int) -> tuple[tuple[Step, ...], int]:
    """Repeat the reading steps (round robin, each after the step it copies) to reach ``length``;
    a run that cannot reach it that way first looks around (``WARM_UP``)."""
    tools = corpus.world.tools
    steps = list(s.steps)
    warm_tool, warm_args = WARM_UP
    warm = Step(id="warmup", call=warm_tool, args=warm_args, sources={a: ("agent",) for a in warm_args})
    steps.insert(0, warm)
    reads: dict[int, tuple[list[str], int | None]] = {}
    for i, st in enumerate(steps):
        if tools[st.call].labels and not st.injected:
            texts = [a for a, ty in tools[st.call].args.items() if ty.scalar == "string" and not ty.is_list]
            reads[i] = (texts, None if texts else IDENTICAL - 1)  # (text arguments, cap on copies)
    extra: dict[int, list[Step]] = {i: [] for i in reads}
    need = length - len(steps)
    while need > 0:
        open_ = [i for i, (_, cap) in reads.items() if cap is None or len(extra[i]) < cap]
        if not open_:
            break
        for i in open_:
            if need <= 0:
                break
            extra[i].append(_page(steps[i], len(extra[i]) + 2, reads[i][0]))
            need -= 1
    out: list[Step] = []
    for i, st in enumerate(steps):
        out.append(st)
        out.extend(extra.get(i, ()))
    return tuple(out), len(out) - len(s.steps)


def build_runs(
    corpus: Corpus, runs: int, seed: int = 18, min_steps: int = 10, max_steps: int = 30
) -> list[BenchRun]:
    """``runs`` runs, cycling through every scenario (tasks and attacks) in a seeded order."""
    rng = random.Random(seed)
    scenarios = list(corpus.scenarios)
    out: list[BenchRun] = []
    while len(out) < runs:
        rng.shuffle(scenarios)
        for s in scenarios:
            if len(out) >= runs:
                break
            steps, padding = _pad(corpus, s, rng.randint(min_steps, max_steps))
            out.append(BenchRun(replace(s, steps=steps), padding))
    return out
