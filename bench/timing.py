"""Timing helpers: warm-up, per-call latency samples, tight-loop throughput, budgets.

The garbage collector stays enabled in timed loops (``gc.collect()`` runs before each
loop); p99 therefore includes GC pauses, as a long-running orchestrator would see them.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

pc = time.perf_counter
pcn = time.perf_counter_ns


@dataclass(frozen=True)
class Budget:
    """Time budgets for one engine at one policy size."""

    check_s: float = 10.0  # differential check: all requests unless this runs out
    check_min: int = 100  # ... but at least this many
    latency_s: float = 3.0  # per-call samples
    max_passes: int = 3  # passes over the request list for per-call samples
    throughput_s: float = 1.0  # tight loop
    warmup: int = 100


FULL = Budget()
QUICK = Budget(check_s=0.6, check_min=50, latency_s=0.4, max_passes=1, throughput_s=0.2)


@dataclass
class Check:
    """Result of the differential check against the reference outcomes."""

    checked: int
    mismatches: int
    examples: list[tuple[Any, str, str]]
    seconds: float


@dataclass
class Timing:
    """Latency and throughput of one engine."""

    p50_us: float
    p99_us: float
    mean_us: float
    per_s: float
    samples: int


def percentile(xs: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of xs (q in 0..100)."""
    ys = sorted(xs)
    if not ys:
        return float("nan")
    k = min(len(ys) - 1, max(0, round(q / 100.0 * (len(ys) - 1))))
    return ys[k]


def check(fn: Callable[[Any], str], reqs: Sequence[Any], ref: Sequence[str], budget: Budget) -> Check:
    """Decide requests in order and compare with the reference until done or out of time."""
    t0 = pc()
    mism = 0
    examples: list[tuple[Any, str, str]] = []
    n = 0
    for r, want in zip(reqs, ref, strict=True):
        got = fn(r)
        n += 1
        if got != want:
            mism += 1
            if len(examples) < 5:
                examples.append((r, want, got))
        if n >= budget.check_min and pc() - t0 > budget.check_s:
            break
    return Check(checked=n, mismatches=mism, examples=examples, seconds=pc() - t0)


def measure(fn: Callable[[Any], str], reqs: Sequence[Any], budget: Budget) -> Timing:
    """Warm up, take per-call perf_counter_ns samples, then run a tight loop for decisions/s."""
    t0 = pc()
    fn(reqs[0])
    warmup = 3 if pc() - t0 > 0.02 else budget.warmup  # very slow engine: tiny warm-up
    for r in reqs[:warmup]:
        fn(r)
    gc.collect()
    samples: list[int] = []
    append = samples.append
    t_start = pc()
    deadline = t_start + budget.latency_s
    done = False
    for _ in range(budget.max_passes):
        for r in reqs:
            a = pcn()
            fn(r)
            append(pcn() - a)
            if pc() > deadline:
                done = True
                break
        if done:
            break
    p50_ns = statistics.median(samples)
    # tight loop, no per-call timer: chunks sized to ~10 ms so the clock is read rarely
    chunk = max(1, min(len(reqs), int(0.01 / max(p50_ns / 1e9, 1e-8))))
    gc.collect()
    calls = 0
    i = 0
    n = len(reqs)
    t0 = pc()
    t_end = t0 + budget.throughput_s
    while True:
        sub = reqs[i : i + chunk] if i + chunk <= n else reqs[i:]
        for r in sub:
            fn(r)
        calls += len(sub)
        i = (i + len(sub)) % n
        if pc() >= t_end:
            break
    dt = pc() - t0
    per_s = calls / dt
    return Timing(
        p50_us=p50_ns / 1e3,
        p99_us=percentile(samples, 99) / 1e3,
        mean_us=1e6 / per_s,
        per_s=per_s,
        samples=len(samples),
    )


def timed_ms(fn: Callable[[], Any]) -> tuple[Any, float]:
    """Call fn once; return its value and the wall time in ms."""
    t0 = pc()
    v = fn()
    return v, (pc() - t0) * 1e3
