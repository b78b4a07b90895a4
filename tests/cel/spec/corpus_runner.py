"""Runs charter.cel over the converted google/cel-spec conformance cases (see convert.py).

Each case is parsed and checked against its declarations (``type_env``) unless the case says
``disable_check``, then evaluated with its ``bindings``; the result must equal the expected value
exactly (int and uint and double are distinct, NaN equals NaN), or be an error where an error is
expected (a compile-time error counts: the condition never runs). From the repository root,
``python -m tests.cel.spec.corpus_runner [-v]`` prints the pass rate per file (and the failures).
"""

from __future__ import annotations

import json
import math
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from charter.cel import (
    CelCompileError,
    CelError,
    CelType,
    Duration,
    Timestamp,
    TypeValue,
    UInt,
    compile_condition,
    compile_unchecked,
)

CORPUS = Path(__file__).parent / "corpus"
#: Extension libraries, measured apart from the core language.
EXTENSIONS = {"string_ext", "math_ext", "encoders_ext", "bindings_ext", "optionals", "macros2", "network_ext"}

_PRIMITIVE = {
    "INT64": CelType.INT,
    "UINT64": CelType.UINT,
    "DOUBLE": CelType.DOUBLE,
    "STRING": CelType.STRING,
    "BYTES": CelType.BYTES,
    "BOOL": CelType.BOOL,
}


@dataclass(frozen=True)
class Case:
    """One conformance case."""

    file: str
    section: str
    name: str
    data: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.file}/{self.section}/{self.name}"


def load_cases(include_skipped: bool = False) -> list[Case]:
    """Every applicable case of the corpus, in file order."""
    out = []
    for path in sorted(CORPUS.glob("*.json")):
        for c in json.loads(path.read_text("utf-8"))["cases"]:
            if "skip" in c and not include_skipped:
                continue
            out.append(Case(c["file"], c["section"], c["name"], c))
    return out


def cel_type(t: dict[str, Any]) -> CelType:
    """A declared type of the corpus as a CelType."""
    if "primitive" in t:
        return _PRIMITIVE[t["primitive"]]
    if "list_type" in t:
        elems = t["list_type"].get("elem_type") or [{}]
        return CelType.LIST(cel_type(elems[0]))
    if "map_type" in t:
        m = t["map_type"]
        return CelType.MAP(cel_type(m.get("key_type", {})), cel_type(m.get("value_type", {})))
    if "null" in t:
        return CelType.NULL
    if t.get("message_type") == "google.protobuf.Duration" or t.get("well_known") == "DURATION":
        return CelType.DURATION
    if t.get("message_type") == "google.protobuf.Timestamp" or t.get("well_known") == "TIMESTAMP":
        return CelType.TIMESTAMP
    return CelType.DYN


def value(v: dict[str, Any]) -> Any:
    """A value of the corpus (textproto field names) as a charter CEL value."""
    if "int64_value" in v:
        return int(v["int64_value"])
    if "uint64_value" in v:
        return UInt(int(v["uint64_value"]))
    if "double_value" in v:
        d = v["double_value"]
        return float(d) if not isinstance(d, str) else float(d.replace("infinity", "inf"))
    if "string_value" in v:
        return v["string_value"]
    if "bytes_value" in v:
        return bytes.fromhex(v["bytes_value"])
    if "bool_value" in v:
        b = v["bool_value"]
        return b if isinstance(b, bool) else b == "true"
    if "null_value" in v:
        return None
    if "list_value" in v:
        return [value(x) for x in (v["list_value"] or {}).get("values", [])]
    if "map_value" in v:
        return {value(e["key"]): value(e["value"]) for e in (v["map_value"] or {}).get("entries", [])}
    if "type_value" in v:
        return TypeValue(v["type_value"])
    if "object_value" in v:
        obj = v["object_value"]
        for key, body in obj.items():
            secs, nanos = int(body.get("seconds", 0)), int(body.get("nanos", 0))
            if key.endswith("Timestamp]"):
                return Timestamp(secs, nanos)
            if key.endswith("Duration]"):
                return Duration(secs * 1_000_000_000 + nanos)
    raise ValueError(f"unsupported value {v}")


def same(a: Any, b: Any) -> bool:
    """Exact equality of CEL values: types must match; NaN equals NaN; -0.0 and 0.0 are equal."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return (math.isnan(a) and math.isnan(b)) or a == b
    if type(a) is list:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        if len(a) != len(b):
            return False
        bk = {(type(k), k): v for k, v in b.items()}
        return all((type(k), k) in bk and same(v, bk[(type(k), k)]) for k, v in a.items())
    return bool(a == b)


def run(case: Case) -> tuple[bool, str]:
    """(passed, what happened) for one case."""
    c = case.data
    env = {d["name"]: cel_type(d.get("ident", {}).get("type", {})) for d in c.get("type_env", [])
           if "ident" in d}  # fmt: skip
    act = {b["key"]: value(b["value"]["value"]) for b in c.get("bindings", [])}
    want_error = "eval_error" in c
    typed = c.get("typed_result")
    try:
        if c.get("disable_check"):
            compiled = compile_unchecked(c["expr"])
        else:
            compiled = compile_condition(c["expr"], env, expect_bool=False)
    except CelCompileError as ex:
        msg = "; ".join(p.message for p in ex.problems)
        return want_error, f"compile error: {msg}"
    if c.get("check_only"):
        return True, "checked"
    got = compiled.evaluate(act)
    if want_error:
        return isinstance(got, CelError), f"got {got!r}"
    expected = value(typed["result"] if typed else c.get("value", {"bool_value": True}))
    if isinstance(got, CelError):
        return False, f"error {got.message!r}, expected {expected!r}"
    return same(got, expected), f"got {got!r}, expected {expected!r}"


def main() -> None:
    passed: Counter[str] = Counter()
    total: Counter[str] = Counter()
    failures = []
    for case in load_cases():
        ok, what = run(case)
        total[case.file] += 1
        passed[case.file] += ok
        if not ok:
            failures.append(f"{case.id}: {case.data['expr'][:90]!r} -> {what[:160]}")
    verbose = "-v" in sys.argv
    if verbose:
        print("\n".join(failures))
    for group, files in (("core", [f for f in total if f not in EXTENSIONS]),
                         ("extensions", [f for f in total if f in EXTENSIONS])):  # fmt: skip
        p = sum(passed[f] for f in files)
        t = sum(total[f] for f in files)
        print(f"{group}: {p}/{t} ({100 * p / max(t, 1):.1f} %)")
        for f in sorted(files):
            print(f"  {f:16} {passed[f]:4}/{total[f]:4} ({100 * passed[f] / total[f]:.1f} %)")


if __name__ == "__main__":
    main()
