"""The `agents` suite: the example assistant's runs (10-30 steps, history and labels) in-process.

Every run is a scenario of tests/scenarios/assistant (a task or an attack) with its reading steps
repeated to 10-30 steps (bench/agents/workload.py), played against a policy set exactly as the
tests play it (bench/agents/runner.py): decide, answer gates, settle. Every ``decide`` and
``settle`` is timed where it happens, inside the run, so each decision sees the run's real
history and labels. The policy set is a parameter (``--engines before,after``); ``before`` is
today's language, ``after`` the proposed one (it runs once the phase-B engine exists).

Before timing nothing is skipped: each run's approvals, refused steps and attack verdict are
compared with tests/scenarios/assistant/expected.yaml for that policy set (``mismatches``).
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import time
from collections import Counter
from typing import Any

from bench.suites import Options
from bench.timing import percentile
from bench.ui import UI

DESCRIPTION = "the example assistant: runs of 10-30 steps with history, labels, intent and provenance rules"

#: issue 18's targets for the proposed language, per decision with history, in-process
TARGETS = {"p50_us": 10.0, "p99_us": 50.0}
#: what issue 18 measured for workaround policies on an outside benchmark (for comparison)
ISSUE_FIGURES = {"p50_us": 26.0, "mean_us": 62.0, "deny_us": 106.0}


def _stats(xs: list[int]) -> dict[str, Any]:
    us = [x / 1000 for x in xs]
    if not us:
        return {"n": 0}
    return {
        "n": len(us),
        "p50_us": round(statistics.median(us), 2),
        "p99_us": round(percentile(us, 99), 2),
        "mean_us": round(statistics.fmean(us), 2),
    }


def run_policy_set(name: str, runs: int, seed: int = 18) -> dict[str, Any]:
    """Play ``runs`` runs against one policy set; latency per outcome and the mismatch count."""
    import charter
    from bench.agents.policysets import CORPUS, POLICY_SETS
    from bench.agents.runner import run_scenario
    from bench.agents.scenario import load_corpus
    from bench.agents.workload import build_runs

    policy_set = POLICY_SETS[name]
    corpus = load_corpus(CORPUS)
    t0 = time.perf_counter()
    policy = charter.load(policy_set.policy_path())
    build_ms = (time.perf_counter() - t0) * 1000
    work = build_runs(corpus, runs, seed)
    # warm-up: one pass over a few runs (imports, regex and CEL caches), not timed
    for br in work[:10]:
        run_scenario(policy, policy_set, corpus, br.scenario)
    timings: list[tuple[str, str, int]] = []
    mismatches: list[str] = []
    gc.collect()
    t_run = time.perf_counter()
    for br in work:
        report = run_scenario(policy, policy_set, corpus, br.scenario, timings=timings)
        want = br.scenario.expect.get(name)
        if want is not None and (report.approvals, report.blocked, report.verdict) != (
            want.approvals,
            want.blocked,
            want.verdict,
        ):
            mismatches.append(br.scenario.id)
    wall_s = time.perf_counter() - t_run
    decides = [ns for op, _, ns in timings if op == "decide"]
    settles = [ns for op, _, ns in timings if op == "settle"]
    by_outcome = {
        outcome: _stats([ns for op, o, ns in timings if op == "decide" and o == outcome])
        for outcome in sorted({o for op, o, _ in timings if op == "decide"})
    }
    lengths = [len(br.steps) for br in work]
    d = _stats(decides)
    return {
        "engine": "charter",
        "policy_set": name,
        "policy_rules": len(policy.rules),
        "build_ms": round(build_ms, 1),
        "runs": len(work),
        "steps": {"min": min(lengths), "max": max(lengths), "mean": round(statistics.fmean(lengths), 1)},
        "decisions": len(decides),
        **{k: v for k, v in d.items() if k != "n"},
        "per_s": round(1e6 / d["mean_us"]) if decides else 0,
        "by_outcome": by_outcome,
        "outcomes": dict(Counter(o for op, o, _ in timings if op == "decide")),
        "settle": _stats(settles),
        "wall_s": round(wall_s, 2),
        "mismatches": len(mismatches),
        "mismatch_examples": sorted(set(mismatches))[:5],
    }


def run(opts: Options, ui: UI) -> dict[str, Any]:
    """Every ready policy set (or those named with --engines); others are listed as skipped."""
    from bench.agents.policysets import POLICY_SETS
    from bench.agents.scenario import load_corpus

    load0 = [round(x, 2) for x in os.getloadavg()]
    runs = 60 if opts.quick else 280
    names = list(opts.engines) or list(POLICY_SETS)
    results, skipped = [], []
    for name in names:
        ps = POLICY_SETS.get(name)
        why = f"unknown policy set (known: {', '.join(POLICY_SETS)})" if ps is None else ps.why
        if ps is None or not ps.ready:
            skipped.append({"engine": name, "reason": why})
            ui.note(f"{name}: skipped ({why})")
            continue
        ui.note(f"agents: policy set {name}, {runs} runs")
        results.append(run_policy_set(name, runs))
    from bench.agents.policysets import CORPUS

    corpus = load_corpus(CORPUS)
    load1 = [round(x, 2) for x in os.getloadavg()]
    return {
        "suite": "agents",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load_avg": {"start": load0, "end": load1},
        "workload": {
            "tools": len(corpus.world.tools),
            "environments": len(corpus.world.envs),
            "scenarios": len(corpus.scenarios),
            "tasks": len(corpus.tasks),
            "attacks": len(corpus.attacks),
        },
        "results": results,
        "skipped": skipped,
        "targets": TARGETS,
        "issue_figures": ISSUE_FIGURES,
        "notes": [
            "decide and settle are timed inside each run (perf_counter_ns around the call); "
            "mean = the average of those samples; the garbage collector stays on",
            "a gate answered by the user costs two decides (the gate, then the resubmission)",
        ],
    }


def _row(r: dict[str, Any]) -> list[str]:
    by = r["by_outcome"]

    def cell(o: str, k: str) -> str:
        return f"{by[o][k]:,.1f}" if o in by and by[o].get("n") else "-"

    return [
        r["policy_set"],
        f"{r['runs']:,}",
        f"{r['decisions']:,}",
        f"{r['p50_us']:,.1f}",
        f"{r['p99_us']:,.1f}",
        f"{r['mean_us']:,.1f}",
        cell("allow", "p50_us"),
        cell("deny", "p50_us"),
        cell("deny", "mean_us"),
        cell("require_approval", "p50_us"),
        f"{r['settle'].get('p50_us', 0):,.1f}",
        str(r["mismatches"]),
    ]


HEAD = [
    "policy set",
    "runs",
    "decisions",
    "p50 us",
    "p99 us",
    "mean us",
    "allow p50",
    "deny p50",
    "deny mean",
    "approval p50",
    "settle p50",
    "mismatches",
]


def render(result: dict[str, Any], ui: UI) -> None:
    """One row per policy set, then the workload, targets and notes."""
    ui.table("agents: decide() per step of the assistant's runs", HEAD, [_row(r) for r in result["results"]])
    w = result["workload"]
    for r in result["results"]:
        s = r["steps"]
        ui.note(
            f"{r['policy_set']}: {r['policy_rules']} rules, built in {r['build_ms']} ms; runs of "
            f"{s['min']}-{s['max']} steps (mean {s['mean']}); outcomes {r['outcomes']}"
        )
    ui.note(
        f"workload: {w['tools']} tools in {w['environments']} environments, {w['tasks']} tasks and "
        f"{w['attacks']} attacks as runs of 10-30 steps"
    )
    t, i = result["targets"], result["issue_figures"]
    ui.note(
        f"targets after the language step: p50 <= {t['p50_us']:g} us, p99 <= {t['p99_us']:g} us "
        f"(issue 18 measured workaround policies at p50 ~{i['p50_us']:g}, mean ~{i['mean_us']:g}, "
        f"deny ~{i['deny_us']:g} us)"
    )
    for s in result.get("skipped", []):
        ui.note(f"skipped {s['engine']}: {s['reason']}")
    for n in result.get("notes", []):
        ui.note(n)
    if "load_avg" in result:
        ui.note(f"load average at start {result['load_avg']['start']}, at end {result['load_avg']['end']}")


def markdown(result: dict[str, Any]) -> str:
    """The table as Markdown (for docs/performance.md)."""
    lines = ["| " + " | ".join(HEAD) + " |", "|" + " --- |" * len(HEAD)]
    lines += ["| " + " | ".join(_row(r)) + " |" for r in result["results"]]
    return "\n".join(lines)
