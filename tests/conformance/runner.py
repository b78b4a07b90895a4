"""Runs conformance cases (YAML) against any way of calling the engine: decide, settle, set_stop."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CASES = Path(__file__).resolve().parent / "cases"
#: Requests without a context.time are decided at BASE_TIME + (their position) seconds.
BASE_TIME = datetime.fromisoformat("2025-01-15T12:00:00+00:00")

Decide = Callable[[Mapping[str, Any]], Mapping[str, Any]]
Settle = Callable[..., Mapping[str, Any]]
SetStop = Callable[[str, str], None]


def load_cases(path: Path) -> list[dict[str, Any]]:
    """The cases of one file; file-level ``policy`` / ``policy_file`` are defaults."""
    doc = yaml.safe_load(path.read_text("utf-8"))
    out = []
    for case in doc["cases"]:
        case = dict(case)
        if "policy" not in case and "policy_file" not in case:
            for key in ("policy", "policy_file"):
                if key in doc:
                    case[key] = doc[key]
        case["file"] = path.name
        out.append(case)
    return out


def all_cases() -> Iterator[dict[str, Any]]:
    """Every case of every file under cases/, in file order."""
    for path in sorted(CASES.glob("*.yaml")):
        yield from load_cases(path)


def policy_source(case: Mapping[str, Any]) -> tuple[str | None, list[Path] | None]:
    """(inline text, None) or (None, paths relative to the repository)."""
    if "policy" in case:
        return case["policy"], None
    files = case["policy_file"]
    files = files if isinstance(files, list) else [files]
    return None, [REPO / f for f in files]


def subset(want: Any, got: Any, where: str = "") -> list[str]:
    """Problems where ``got`` does not contain ``want`` (dicts: recursively; lists: item-wise)."""
    if isinstance(want, Mapping):
        if not isinstance(got, Mapping):
            return [f"{where or '.'}: want a mapping, got {got!r}"]
        out = []
        for k, v in want.items():
            if k not in got:
                out.append(f"{where}.{k}: missing (got keys {sorted(got)})")
            else:
                out += subset(v, got[k], f"{where}.{k}")
        return out
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return [f"{where}: want {want!r}, got {got!r}"]
        return [
            p for i, (w, g) in enumerate(zip(want, got, strict=True)) for p in subset(w, g, f"{where}[{i}]")
        ]
    return [] if want == got else [f"{where}: want {want!r}, got {got!r}"]


def check(want: Mapping[str, Any], got: Mapping[str, Any], what: str) -> list[str]:
    """Compare a decision (as a dict) with its expectation."""
    problems = []
    if "outcome" in want and got["outcome"] != want["outcome"]:
        problems.append(f"{what}: outcome {got['outcome']!r}, want {want['outcome']!r}")
    ids = [r["id"] for r in got.get("rules", [])]
    if "rules" in want and ids != list(want["rules"]):
        problems.append(f"{what}: rules {ids}, want {list(want['rules'])}")
    if "default_deny" in want and bool(got.get("default_deny")) != want["default_deny"]:
        problems.append(f"{what}: default_deny {got.get('default_deny')}, want {want['default_deny']}")
    if "obligations" in want:
        problems += [
            f"{what}: obligations{p}" for p in subset(want["obligations"], got.get("obligations") or {})
        ]
    if "shadow" in want:
        shadow = sorted(r["id"] for r in got.get("shadow", []))
        if shadow != sorted(want["shadow"]):
            problems.append(f"{what}: shadow {shadow}, want {sorted(want['shadow'])}")
    if "failures" in want and len(got.get("failures", [])) != want["failures"]:
        problems.append(f"{what}: {len(got.get('failures', []))} failures, want {want['failures']}")
    return problems


def _timed(request: Mapping[str, Any], step: int) -> dict[str, Any]:
    req = copy.deepcopy(dict(request))
    ctx = req.setdefault("context", {})
    ctx.setdefault("time", (BASE_TIME + timedelta(seconds=step)).isoformat())
    return req


def run_case(case: Mapping[str, Any], decide: Decide, settle: Settle, set_stop: SetStop) -> None:
    """Set the case up, decide its request and raise AssertionError listing every difference.

    ``decide(request) -> decision dict`` (as ``Decision.to_dict``), ``settle(decision_id,
    actual_cost=..., outcome=..., labels=...) -> settlement dict``, ``set_stop(scope, value)``.
    """
    setup = case.get("setup") or {}
    for stop in setup.get("stops", []):
        set_stop(stop["scope"], str(stop["value"]))
    problems: list[str] = []
    step = 0
    for n, entry in enumerate(setup.get("requests", [])):
        for _ in range(int(entry.get("repeat", 1))):
            got = decide(_timed(entry["request"], step))
            step += int(entry.get("every", 1))
            if "want" in entry:
                problems += check(entry["want"], got, f"setup request {n}")
            if "settle" in entry:
                st = settle(got["id"], **(entry["settle"] or {}))
                if "settled" in entry:
                    problems += [f"setup settlement {n}{p}" for p in subset(entry["settled"], st)]
        step += int(entry.get("pause", 0))
    got = decide(_timed(case["request"], step))
    problems += check(case["want"], got, "decision")
    assert not problems, "\n".join(problems)
