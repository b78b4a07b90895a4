"""CI report formats for `charter check`: SARIF 2.1.0 and JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from typing import Any

from charter import __version__
from charter.cli.lintconfig import LINTS
from charter.diagnostics import Code, Diagnostic, Severity

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
DOCS = "docs/diagnostics.md"


def rule_name(code: Code) -> str:
    """The SARIF rule name: the code's slug in PascalCase (``UnknownName``)."""
    return "".join(part.capitalize() for part in code.slug.split("-"))


def short_description(code: Code) -> str:
    """One sentence describing a code."""
    lint = LINTS.get(code.value)
    if lint is not None:
        return lint[1]
    return code.slug.replace("-", " ").capitalize() + "."


def _level(sev: Severity) -> str:
    return {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}[sev]


def to_sarif(diags: Sequence[Diagnostic], files: Iterable[str], help_base: str = "") -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run; every diagnostic code is a rule with stable id and metadata."""
    codes = list(Code)
    index = {c: i for i, c in enumerate(codes)}
    rules = [
        {
            "id": c.value,
            "name": rule_name(c),
            "shortDescription": {"text": short_description(c)},
            "helpUri": f"{help_base}{DOCS}#{c.value.lower()}",
            "defaultConfiguration": {"level": "warning" if c.value.startswith("W") else "error"},
        }
        for c in codes
    ]
    results = []
    for d in diags:
        sp = d.span
        region: dict[str, int] = {"startLine": max(1, sp.line), "startColumn": max(1, sp.column)}
        if sp.end_line >= sp.line:
            region["endLine"] = max(1, sp.end_line)
            if sp.end_column > 0 and (sp.end_line > sp.line or sp.end_column >= sp.column):
                region["endColumn"] = max(1, sp.end_column)
        text = d.message + (f" ({d.help})" if d.help else "")
        results.append(
            {
                "ruleId": d.code.value,
                "ruleIndex": index[d.code],
                "level": _level(d.severity),
                "message": {"text": text},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": sp.path}, "region": region}}],
            }
        )
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "charter",
                        "version": __version__,
                        "informationUri": f"{help_base}{DOCS}",
                        "rules": rules,
                    }
                },
                "artifacts": [{"location": {"uri": f}} for f in sorted(files)],
                "results": results,
            }
        ],
    }


def to_junit(diags: Sequence[Diagnostic], files: Iterable[str]) -> str:
    """JUnit XML: one testcase per checked file, one failure per error in it (warnings go to system-out)."""
    files = sorted(set(files) | {d.span.path for d in diags})
    errors = [d for d in diags if d.is_error]
    root = ET.Element(
        "testsuites",
        name="charter check",
        tests=str(len(files)),
        failures=str(sum(1 for f in files if any(d.span.path == f for d in errors))),
    )
    suite = ET.SubElement(
        root,
        "testsuite",
        name="charter check",
        tests=str(len(files)),
        failures=root.get("failures", "0"),
        errors="0",
    )
    for f in files:
        tc = ET.SubElement(suite, "testcase", name=f, classname="charter.check")
        for d in (d for d in errors if d.span.path == f):
            el = ET.SubElement(tc, "failure", message=f"{d.code.value} {d.message}", type=d.code.value)
            el.text = f"{d.span}: {d.code.value} {d.message}" + (f"\nhelp: {d.help}" if d.help else "")
        warns = [d for d in diags if d.span.path == f and not d.is_error]
        if warns:
            ET.SubElement(tc, "system-out").text = "\n".join(
                f"{d.span}: {d.code.value} warning: {d.message}" for d in warns
            )
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
