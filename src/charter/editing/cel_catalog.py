"""The CEL functions, methods and macros conditions may use: signature, meaning and an example each.

One list serves completion, hover and the docs page ``docs/cel.md`` (generated from it; a test
keeps the page current, and another compiles every example against the real checker).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class CelForm(enum.Enum):
    """How a CEL function is called."""

    FUNCTION = "function"
    METHOD = "method"
    MACRO = "macro"


@dataclass(frozen=True)
class CelFunction:
    """One CEL function, method or macro."""

    name: str
    form: CelForm
    signature: str
    doc: str
    #: a condition using it, for the rule in docs/cel.md (checked against the preamble policy)
    example: str


CATALOG: tuple[CelFunction, ...] = (
    CelFunction("size", CelForm.FUNCTION, "size(x) -> int",
                "Length of a string (in code points), bytes, list or map.",
                "size(args.memo) <= 140"),
    CelFunction("int", CelForm.FUNCTION, "int(x) -> int",
                "Converts a number, string or timestamp to a whole number (rounds toward zero).",
                "int(args.amount) % 100 == 0"),
    CelFunction("uint", CelForm.FUNCTION, "uint(x) -> uint",
                "Converts to an unsigned whole number; a negative value is an error.",
                "uint(actor.clearance) >= 1u"),
    CelFunction("double", CelForm.FUNCTION, "double(x) -> double",
                "Converts a whole number or a string to a decimal number.",
                "double(actor.clearance) * 1000.0 < args.amount"),
    CelFunction("string", CelForm.FUNCTION, "string(x) -> string",
                "The text of a value.",
                'string(actor.clearance) == "3"'),
    CelFunction("bool", CelForm.FUNCTION, "bool(x) -> bool",
                'Converts "true" or "false" to a boolean.',
                'bool("true")'),
    CelFunction("bytes", CelForm.FUNCTION, "bytes(x) -> bytes",
                "The UTF-8 bytes of a string.",
                "size(bytes(args.memo)) < 1024"),
    CelFunction("timestamp", CelForm.FUNCTION, "timestamp(text) -> timestamp",
                "Parses an RFC 3339 time such as 2026-01-31T12:00:00Z.",
                'timestamp("2026-01-31T12:00:00Z") < timestamp("2026-02-01T00:00:00Z")'),
    CelFunction("duration", CelForm.FUNCTION, "duration(text) -> duration",
                "Parses a duration such as 90s, 1h30m.",
                'duration("1h30m") > duration("1h")'),
    CelFunction("dyn", CelForm.FUNCTION, "dyn(x) -> dyn",
                "Turns off static type checking for one value.",
                "dyn(args.amount) > 10"),
    CelFunction("has", CelForm.MACRO, "has(map.key) -> bool",
                "True when a map has the key (test before reading a key that may be missing).",
                "has(cost.USD) && cost.USD > 10.0"),
    CelFunction("contains", CelForm.METHOD, "text.contains(part) -> bool",
                "True when the text contains the part.",
                'args.memo.contains("refund")'),
    CelFunction("startsWith", CelForm.METHOD, "text.startsWith(prefix) -> bool",
                "True when the text starts with the prefix.",
                'args.payee.startsWith("ACME-")'),
    CelFunction("endsWith", CelForm.METHOD, "text.endsWith(suffix) -> bool",
                "True when the text ends with the suffix.",
                'args.payee.endsWith("-GMBH")'),
    CelFunction("matches", CelForm.METHOD, "text.matches(re2) -> bool",
                "True when an RE2 regular expression matches part of the text (256 characters at most).",
                'args.payee.matches("^[A-Z0-9-]+$")'),
    CelFunction("getFullYear", CelForm.METHOD, "t.getFullYear([tz]) -> int",
                "The year of a timestamp (UTC, or the named time zone).",
                'timestamp("2026-01-31T12:00:00Z").getFullYear() == 2026'),
    CelFunction("getMonth", CelForm.METHOD, "t.getMonth([tz]) -> int",
                "The month of a timestamp, 0 for January.",
                'timestamp("2026-01-31T12:00:00Z").getMonth() == 0'),
    CelFunction("getDate", CelForm.METHOD, "t.getDate([tz]) -> int",
                "The day of the month, 1-based.",
                'timestamp("2026-01-31T12:00:00Z").getDate() == 31'),
    CelFunction("getDayOfMonth", CelForm.METHOD, "t.getDayOfMonth([tz]) -> int",
                "The day of the month, 0-based.",
                'timestamp("2026-01-31T12:00:00Z").getDayOfMonth() == 30'),
    CelFunction("getDayOfWeek", CelForm.METHOD, "t.getDayOfWeek([tz]) -> int",
                "The day of the week, 0 for Sunday.",
                'timestamp("2026-01-31T12:00:00Z").getDayOfWeek() == 6'),
    CelFunction("getDayOfYear", CelForm.METHOD, "t.getDayOfYear([tz]) -> int",
                "The day of the year, 0-based.",
                'timestamp("2026-01-31T12:00:00Z").getDayOfYear() == 30'),
    CelFunction("getHours", CelForm.METHOD, "t.getHours([tz]) -> int",
                "The hour of a timestamp, or the whole hours of a duration.",
                'timestamp("2026-01-31T12:00:00Z").getHours("Europe/Paris") == 13'),
    CelFunction("getMinutes", CelForm.METHOD, "t.getMinutes([tz]) -> int",
                "The minutes of a timestamp, or the whole minutes of a duration.",
                'duration("1h30m").getMinutes() == 90'),
    CelFunction("getSeconds", CelForm.METHOD, "t.getSeconds([tz]) -> int",
                "The seconds of a timestamp, or the whole seconds of a duration.",
                'duration("90s").getSeconds() == 90'),
    CelFunction("getMilliseconds", CelForm.METHOD, "t.getMilliseconds([tz]) -> int",
                "The milliseconds of a timestamp or a duration.",
                'duration("1500ms").getMilliseconds() == 500'),
    CelFunction("all", CelForm.MACRO, "list.all(x, predicate) -> bool",
                "True when the predicate holds for every element.",
                "signals.all(s, s.score < 0.9)"),
    CelFunction("exists", CelForm.MACRO, "list.exists(x, predicate) -> bool",
                "True when the predicate holds for some element.",
                'signals.exists(s, s.source == "risk" && s.score >= 0.3)'),
    CelFunction("exists_one", CelForm.MACRO, "list.exists_one(x, predicate) -> bool",
                "True when the predicate holds for exactly one element.",
                'signals.exists_one(s, s.kind == "risk.anomaly")'),
    CelFunction("map", CelForm.MACRO, "list.map(x, expression) -> list",
                "The list of the expression's values for each element.",
                "signals.map(s, s.score).exists(v, v > 0.5)"),
    CelFunction("filter", CelForm.MACRO, "list.filter(x, predicate) -> list",
                "The elements for which the predicate holds.",
                "signals.filter(s, s.score >= 0.5).size() >= 2"),
)  # fmt: skip

BY_NAME: dict[str, CelFunction] = {f.name: f for f in CATALOG}


def markdown() -> str:
    """The docs page docs/cel.md: every function with its signature, meaning and a checked example."""
    out = [
        "# CEL functions",
        "",
        "<!-- generated by charter.editing.cel_catalog.markdown(); "
        "tests/editing/test_cel_catalog.py keeps it current -->",
        "",
        "Conditions (`when`, `unless`, `signal ... where`) are CEL expressions "
        "([language reference](language.md#conditions)). These are the functions, methods and macros "
        "they may call; anything else is rejected at compile time (E305). The language server "
        "offers them as completions and shows these descriptions on hover.",
        "",
    ]
    titles = {CelForm.FUNCTION: "Functions", CelForm.METHOD: "Methods", CelForm.MACRO: "Macros"}
    for form in CelForm:
        out += [f"## {titles[form]}", ""]
        for f in (f for f in CATALOG if f.form is form):
            out += [
                f"### `{f.name}`",
                "",
                f"`{f.signature}` — {f.doc}",
                "",
                "<!-- check: preamble -->",
                "```charter",
                f"forbid example-{f.name.lower().replace('_', '-')} {{",
                "  action call payments.transfer",
                f"  when {f.example}",
                f'  reason "An example of {f.name}."',
                "}",
                "```",
                "",
            ]
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":  # python -m charter.editing.cel_catalog  (rewrites docs/cel.md)
    import sys
    from pathlib import Path

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/cel.md")
    target.write_text(markdown(), encoding="utf-8")
