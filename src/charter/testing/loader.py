"""Load ``*_test.yaml`` policy test files into plain dataclasses, with errors that name the place."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from charter.documents import DocumentError, load_document
from charter.errors import Error

#: default start of a scenario's clock: a Wednesday morning, mid-month (UTC)
DEFAULT_START = datetime(2030, 1, 16, 9, 0, tzinfo=UTC).timestamp()

STEP_KINDS = ("decide", "advance", "settle", "approve", "deny", "answer", "stop", "resume", "status")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class TestLoadError(Error):
    """A test file that cannot be read or does not follow the format."""

    __test__ = False

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path


@dataclass(slots=True)
class Step:
    """One scenario step: its kind, arguments and expectations."""

    kind: str
    args: Any
    expect: dict[str, Any] = field(default_factory=dict)
    index: int = 0
    repeat: int = 1


@dataclass(slots=True)
class Case:
    """A single-request test or a scenario (a sequence of steps on one engine and clock)."""

    name: str
    steps: list[Step]
    scenario: bool
    start: float = DEFAULT_START
    defaults: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class TestFile:
    """A parsed test file: the policy it tests and its cases."""

    __test__ = False

    path: Path
    policy: Path
    cases: list[Case]


def parse_duration(text: Any, where: str = "") -> float:
    """Seconds in ``5m``, ``2h``, ``90s``, ``1d`` or a bare number of seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    m = _DURATION.match(str(text))
    if not m:
        raise ValueError(f"{where}bad duration {text!r} (use e.g. 90s, 5m, 2h, 1d)")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


def parse_time(value: Any) -> float:
    """A timestamp from an ISO 8601 string, a datetime or a number of seconds."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def _mapping(value: Any, path: str, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TestLoadError(path, f"{where} must be a mapping, not {type(value).__name__}")
    return dict(value)


def _step(raw: Any, path: str, where: str, index: int) -> Step:
    raw = _mapping(raw, path, where)
    expect = _mapping(raw.pop("expect", None), path, f"{where}.expect")
    raw.pop("name", None)
    repeat = raw.pop("repeat", 1)
    if not isinstance(repeat, int) or isinstance(repeat, bool) or not 1 <= repeat <= 10_000:
        raise TestLoadError(path, f"{where}: repeat must be a whole number from 1 to 10000")
    kinds = [k for k in raw if k in STEP_KINDS]
    unknown = [k for k in raw if k not in STEP_KINDS]
    if unknown:
        raise TestLoadError(path, f"{where}: unknown key {unknown[0]!r} (steps are {', '.join(STEP_KINDS)})")
    if len(kinds) != 1:
        raise TestLoadError(path, f"{where}: a step has exactly one of {', '.join(STEP_KINDS)}")
    kind = kinds[0]
    args = raw[kind]
    if kind == "advance":
        try:
            args = parse_duration(args)
        except ValueError as exc:
            raise TestLoadError(path, f"{where}: {exc}") from None
    return Step(kind, args, expect, index, repeat)


def _case(raw: Any, path: str, where: str, scenario: bool) -> Case:
    raw = _mapping(raw, path, where)
    name = str(raw.get("name") or where)
    start = DEFAULT_START
    if raw.get("start") is not None:
        try:
            start = parse_time(raw["start"])
        except (ValueError, TypeError):
            raise TestLoadError(path, f"{where}: bad start time {raw['start']!r}") from None
    defaults = _mapping(raw.get("defaults"), path, f"{where}.defaults")
    if scenario:
        steps_raw = raw.get("steps")
        if not isinstance(steps_raw, list) or not steps_raw:
            raise TestLoadError(path, f"{where} ({name}): a scenario needs a non-empty list of steps")
        steps = [_step(s, path, f"{where}.steps[{i}]", i) for i, s in enumerate(steps_raw)]
    else:
        extra = set(raw) - {"name", "request", "expect", "start", "defaults"}
        if extra:
            raise TestLoadError(path, f"{where} ({name}): unknown key {sorted(extra)[0]!r}")
        if "request" not in raw:
            raise TestLoadError(path, f"{where} ({name}): a test needs a request")
        expect = _mapping(raw.get("expect"), path, f"{where}.expect")
        if not expect:
            raise TestLoadError(path, f"{where} ({name}): a test needs an expect mapping")
        steps = [Step("decide", raw["request"], expect, 0)]
    return Case(name, steps, scenario, start, defaults)


def load_test_file(path: str | Path) -> TestFile:
    """Parse one test file; raises TestLoadError."""
    p = Path(path)
    sp = str(p)
    try:
        data = load_document(p, what="test file")
    except DocumentError as exc:
        raise TestLoadError(sp, str(exc)) from None
    data = _mapping(data, sp, "the file")
    unknown = set(data) - {"policy", "tests", "scenarios"}
    if unknown:
        raise TestLoadError(sp, f"unknown top-level key {sorted(unknown)[0]!r} (policy, tests, scenarios)")
    policy = (p.parent / str(data["policy"])) if data.get("policy") else p.parent
    cases: list[Case] = []
    for key, scenario in (("tests", False), ("scenarios", True)):
        items = data.get(key) or []
        if not isinstance(items, list):
            raise TestLoadError(sp, f"{key} must be a list")
        cases.extend(_case(c, sp, f"{key}[{i}]", scenario) for i, c in enumerate(items))
    if not cases:
        raise TestLoadError(sp, "no tests or scenarios")
    names = [c.name for c in cases]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise TestLoadError(sp, f"two cases are named {dup!r}")
    return TestFile(p, policy, cases)


def discover(paths: Iterable[str | Path]) -> list[Path]:
    """Test files under the given paths: files as given, directories searched for ``*_test.yaml``."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*_test.yaml") if ".venv" not in q.parts))
        else:
            out.append(p)
    seen: set[Path] = set()
    return [p for p in out if not (p.resolve() in seen or seen.add(p.resolve()))]  # type: ignore[func-returns-value]
