"""Report test results and coverage: pretty text, JSON and JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from charter.testing.coverage import Coverage
from charter.testing.runner import CaseResult, FileResult


def counts(files: Sequence[FileResult]) -> dict[str, int]:
    """Passed, failed and errored cases."""
    cases = [c for f in files for c in f.cases]
    return {
        "total": len(cases),
        "passed": sum(1 for c in cases if c.status == "passed"),
        "failed": sum(1 for c in cases if c.status == "failed"),
        "errors": sum(1 for c in cases if c.status == "error"),
    }


def case_line(c: CaseResult, verbose: bool) -> str | None:
    """One line per case when verbose, failures always (with their messages)."""
    mark = {"passed": "PASS", "failed": "FAIL", "error": "ERROR"}[c.status]
    kind = "scenario" if c.scenario else "test"
    if c.ok and not verbose:
        return None
    lines = [
        f"{mark} {c.file} :: {c.name} ({kind}, {c.steps} step{'s' if c.steps != 1 else ''}, "
        f"{c.seconds * 1000:.1f} ms)"
    ]
    lines.extend(f"    {m}" for m in c.messages)
    return "\n".join(lines)


def coverage_text(covs: Sequence[Coverage], verbose: bool) -> str:
    """A coverage table per policy: each rule, whether it fired, its branch coverage."""
    out: list[str] = []
    for cov in covs:
        t = cov.totals()
        out.append(
            f"coverage of policy {cov.policy.name} ({', '.join(cov.policy.files[:1])}"
            f"{' ...' if len(cov.policy.files) > 1 else ''})"
        )
        width = max((len(i.id) for i in cov.items.values()), default=10)
        for it in cov.items.values():
            both, ops = it.branches
            br = f"{both}/{ops} branches" if ops else "no conditions"
            mark = "fired " if it.fired else "NEVER "
            out.append(f"  {mark} {it.id:<{width}}  {it.kind:<16} {br}")
            if verbose or not it.fired:
                for label, seen in it.operands.items():
                    if len(seen) < 2:
                        missing = " and ".join(str(v).lower() for v in (True, False) if v not in seen)
                        out.append(f"           {label}: never {missing}")
        out.append(
            f"  rules: {t['rules_fired']}/{t['rules']} fired ({t['rule_percent']:.1f} %); "
            f"branches: {t['branches_covered']}/{t['branches']} seen true and false "
            f"({t['branch_percent']:.1f} %)"
        )
    return "\n".join(out)


def to_json(
    files: Sequence[FileResult], covs: Sequence[Coverage], load_errors: Sequence[str]
) -> dict[str, Any]:
    """JSON-ready results."""
    c = counts(files)
    return {
        "schema_version": 1,
        "ok": not load_errors and c["failed"] == 0 and c["errors"] == 0,
        **c,
        "load_errors": list(load_errors),
        "files": [
            {
                "path": f.path,
                "policy": f.policy,
                "cases": [
                    {
                        "name": x.name,
                        "scenario": x.scenario,
                        "status": x.status,
                        "messages": x.messages,
                        "seconds": round(x.seconds, 6),
                        "steps": x.steps,
                    }
                    for x in f.cases
                ],
            }
            for f in files
        ],
        "coverage": [cov.to_dict() for cov in covs],
    }


def to_junit(files: Sequence[FileResult], load_errors: Sequence[str] = ()) -> str:
    """JUnit XML: one testsuite per file, one testcase per test or scenario."""
    root = ET.Element("testsuites", name="charter test")
    total = counts(files)
    root.set("tests", str(total["total"] + len(load_errors)))
    root.set("failures", str(total["failed"]))
    root.set("errors", str(total["errors"] + len(load_errors)))
    for f in files:
        c = counts([f])
        suite = ET.SubElement(
            root,
            "testsuite",
            name=f.path,
            tests=str(c["total"]),
            failures=str(c["failed"]),
            errors=str(c["errors"]),
            time=f"{sum(x.seconds for x in f.cases):.6f}",
        )
        for x in f.cases:
            tc = ET.SubElement(suite, "testcase", name=x.name, classname=f.path, time=f"{x.seconds:.6f}")
            if x.status == "failed":
                el = ET.SubElement(tc, "failure", message=x.messages[0] if x.messages else "failed")
                el.text = "\n".join(x.messages)
            elif x.status == "error":
                el = ET.SubElement(tc, "error", message=x.messages[0] if x.messages else "error")
                el.text = "\n".join(x.messages)
    if load_errors:
        suite = ET.SubElement(
            root,
            "testsuite",
            name="load",
            tests=str(len(load_errors)),
            failures="0",
            errors=str(len(load_errors)),
        )
        for i, msg in enumerate(load_errors):
            tc = ET.SubElement(suite, "testcase", name=f"load error {i + 1}", classname="load")
            ET.SubElement(tc, "error", message=msg.splitlines()[0] if msg else "load error").text = msg
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
