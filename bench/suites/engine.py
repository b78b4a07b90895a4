"""engine suite: charter's engine vs peer engines on the agent-authorization workload."""

from __future__ import annotations

import math
from functools import partial
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as pkg_version
from types import ModuleType
from typing import Any

from bench.peers import PEERS, Peer, PeerUnavailable
from bench.suites import Options
from bench.timing import FULL, QUICK, check, measure, timed_ms
from bench.ui import UI
from bench.workload import build_requests, build_world, outcome_mix, reference_decide

DESCRIPTION = "decision latency of charter.Engine and peer engines (Cedar, Rego, Casbin, AGT)"
QUICK_PEER_MAX_RULES = 10000  # under --quick, slow peers are skipped at this size and above
VERSIONS = ("charter", "cedarpy", "regopy", "casbin", "agent-governance-toolkit-core", "simpleeval", "PyYAML")


def versions() -> dict[str, str]:
    """Installed versions of the engines' packages."""
    out: dict[str, str] = {}
    for n in VERSIONS:
        try:
            out[n] = pkg_version(n)
        except PackageNotFoundError:
            out[n] = "not installed"
    return out


def run(opts: Options, ui: UI) -> dict[str, Any]:
    """Run every engine at every policy size; return the suite's result object."""
    budget = QUICK if opts.quick else FULL
    load_start = _loadavg()
    started = _now()
    peers = [p for p in PEERS if not opts.engines or p.name in opts.engines]
    results: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    notes: list[str] = []
    sizes: list[dict[str, Any]] = []
    modules: dict[str, ModuleType | PeerUnavailable] = {}
    import_ms: dict[str, float] = {}

    def skip(entry: dict[str, Any]) -> None:
        skipped.append(entry)
        if ui.quiet:  # --json: the table (which lists skips) is not printed
            ui.note(f"{entry['engine']} (rules={entry['rules']}): skipped: {entry['reason']}")

    def load(peer: Peer) -> ModuleType:
        if peer.module not in modules:
            try:
                modules[peer.module], import_ms[peer.name] = timed_ms(peer.load_module)
            except (ImportError, PeerUnavailable) as ex:
                modules[peer.module] = (
                    ex if isinstance(ex, PeerUnavailable) else PeerUnavailable(f"{type(ex).__name__}: {ex}")
                )
        m = modules[peer.module]
        if isinstance(m, PeerUnavailable):
            raise m
        return m

    steps = len(opts.rules) * (len(peers) + 1)
    with ui.progress(steps) as prog:
        for rules in opts.rules:
            prog.step(f"rules={rules}: workload")
            world = build_world(rules)
            reqs = build_requests(world)
            spec = [reference_decide(world, r) for r in reqs]
            size: dict[str, Any] = {
                "rules": rules,
                "total_rules": world.total_rules,
                "agents": len(world.agents),
                "tools": len(world.tools),
                "requests": len(reqs),
                "mix": outcome_mix(spec),
            }
            sizes.append(size)
            for peer in peers:
                prog.step(f"rules={rules}: {peer.name}")
                if peer.large_only and not world.grants:
                    continue
                if opts.quick and peer.slow and rules >= QUICK_PEER_MAX_RULES:
                    skip(
                        {
                            "engine": peer.name,
                            "rules": rules,
                            "reason": f"--quick skips third-party peers at >= {QUICK_PEER_MAX_RULES:,} rules",
                        }
                    )
                    continue
                try:
                    mod = load(peer)
                    decide, build_ms = timed_ms(partial(peer.builder_fn(mod), world))
                except PeerUnavailable as ex:
                    skip({"engine": peer.name, "rules": rules, "reason": str(ex)})
                    continue
                except Exception as ex:
                    skip(
                        {
                            "engine": peer.name,
                            "rules": rules,
                            "reason": f"build failed: {type(ex).__name__}: {ex}",
                        }
                    )
                    continue
                try:
                    chk = check(decide, reqs, spec, budget)
                    tm = measure(decide, reqs, budget)
                except Exception as ex:
                    skip(
                        {
                            "engine": peer.name,
                            "rules": rules,
                            "reason": f"decide failed: {type(ex).__name__}: {ex}",
                        }
                    )
                    continue
                results.append(
                    {
                        "engine": peer.name,
                        "rules": rules,
                        "total_rules": world.total_rules,
                        "p50_us": round(tm.p50_us, 3),
                        "p99_us": round(tm.p99_us, 3),
                        "per_s": round(tm.per_s, 1),
                        "mean_us": round(tm.mean_us, 3),
                        "build_ms": round(build_ms, 2),
                        "samples": tm.samples,
                        "checked": chk.checked,
                        "mismatches": chk.mismatches,
                        "mismatch_examples": [
                            {"request": r, "expected": w, "got": g} for r, w, g in chk.examples
                        ],
                    }
                )
    for name, ms in import_ms.items():
        if ms > 50:
            notes.append(f"{name}: import took {ms:.0f} ms (not counted in build ms)")
    if opts.quick:
        notes.append("--quick: small samples; numbers are indicative only")
    return {
        "suite": "engine",
        "python": _python(),
        "machine": _machine(),
        "date": started,
        "quick": opts.quick,
        "versions": versions(),
        "load_avg": {"start": load_start, "end": _loadavg()},
        "sizes": sizes,
        "results": results,
        "skipped": skipped,
        "notes": notes,
    }


def _fmt(x: float, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if x >= 100_000:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def _ratio(x: float) -> str:
    return f"{x:.2g}" if x < 1 else _fmt(x)


def render(result: dict[str, Any], ui: UI) -> None:
    """Print one table per policy size, then skips and notes."""
    ui.note(f"suite engine  {result['date']}  python {result['python']}  {result['machine']}")
    ui.note("versions: " + ", ".join(f"{k} {v}" for k, v in result["versions"].items()))
    if result.get("load_avg"):
        ui.note(
            f"load average (1, 5, 15 min) at start {result['load_avg']['start']}, "
            f"at end {result['load_avg']['end']}: other work on the machine skews absolute "
            "numbers; compare ratios from the same run"
        )
    cols = [
        "engine",
        "checked",
        "mismatch",
        "p50 us",
        "p99 us",
        "mean us",
        "decisions/s",
        "samples",
        "x charter",
        "x hand",
        "build ms",
    ]
    for size in result["sizes"]:
        rows_in = [r for r in result["results"] if r["rules"] == size["rules"]]
        by = {r["engine"]: r for r in rows_in}
        ch = by.get("charter")
        hand = by.get("python_hand")
        rows = []
        for r in rows_in:
            rows.append(
                [
                    r["engine"],
                    str(r["checked"]),
                    str(r["mismatches"]),
                    _fmt(r["p50_us"]),
                    _fmt(r["p99_us"]),
                    _fmt(r["mean_us"]),
                    f"{r['per_s']:,.0f}",
                    str(r["samples"]),
                    _ratio(r["p50_us"] / ch["p50_us"]) if ch else "n/a",
                    _ratio(r["p50_us"] / hand["p50_us"]) if hand else "n/a",
                    _fmt(r["build_ms"]),
                ]
            )
        title = (
            f"\nrules={size['rules']} ({size['total_rules']:,} rules, {size['agents']} agents,"
            f" {size['tools']} tools, {size['requests']} requests; reference mix "
            f"{size['mix']})"
        )
        ui.table(title, cols, rows)
        for r in rows_in:
            for ex in r["mismatch_examples"]:
                ui.note(
                    f"  MISMATCH {r['engine']}: {ex['request']} expected {ex['expected']} got {ex['got']}"
                )
        for s in result["skipped"]:
            if s["rules"] == size["rules"]:
                ui.note(f"  {s['engine']}: skipped: {s['reason']}")
    total_mism = sum(r["mismatches"] for r in result["results"])
    ui.note(
        f"\ndifferential check vs python_hand spec: {total_mism} mismatches in total"
        + ("" if total_mism == 0 else "  <-- MUST BE 0")
    )
    ui.note(
        "x charter = p50 / charter p50 (same run); x hand = p50 / python_hand p50; "
        "mean us = 1e6 / decisions/s (tight loop)"
    )
    for n in result["notes"]:
        ui.note(n)


def _python() -> str:
    import platform
    import sys

    return f"{platform.python_implementation()} {sys.version.split()[0]}"


def _machine() -> str:
    import os
    import platform

    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPUs" + (
        f", {model}" if model else ""
    )


def _loadavg() -> list[float]:
    import os

    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def _now() -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S %Z")


def markdown(result: dict[str, Any]) -> str:
    """The results as Markdown tables (one per policy size), for docs/performance.md."""
    lines: list[str] = []
    for size in result["sizes"]:
        rows_in = [r for r in result["results"] if r["rules"] == size["rules"]]
        by = {r["engine"]: r for r in rows_in}
        ch, hand = by.get("charter"), by.get("python_hand")
        lines.append(
            f"**{size['total_rules']:,} rules** ({size['agents']} agents, "
            f"{size['tools']} tools, {size['requests']} requests, reference mix "
            + ", ".join(f"{k} {v}" for k, v in size["mix"].items())
            + ")"
        )
        lines.append("")
        lines.append(
            "| engine | p50 µs | p99 µs | mean µs | decisions/s | x charter | x hand "
            "| build ms | samples | checked | mismatches |"
        )
        lines.append("| --- |" + " ---: |" * 10)
        for r in rows_in:
            xc = _ratio(r["p50_us"] / ch["p50_us"]) if ch else "n/a"
            xh = _ratio(r["p50_us"] / hand["p50_us"]) if hand else "n/a"
            lines.append(
                f"| {r['engine']} | {_fmt(r['p50_us'])} | {_fmt(r['p99_us'])} | "
                f"{_fmt(r['mean_us'])} | {r['per_s']:,.0f} | {xc} | {xh} | "
                f"{_fmt(r['build_ms'])} | {r['samples']} | {r['checked']} | "
                f"{r['mismatches']} |"
            )
        for s in result["skipped"]:
            if s["rules"] == size["rules"]:
                lines.append(f"\n{s['engine']}: skipped: {s['reason']}")
        lines.append("")
    return "\n".join(lines)
