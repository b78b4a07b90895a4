"""The CEL functions, methods and macros conditions may use: signature, meaning and an example each.

One list serves completion, hover and the docs page ``docs/cel.md`` (generated from it; a test
keeps the page current, and another compiles every example against the real checker). Functions
and methods come from charter.cel's library (their overloads, text and examples are declared
there, beside their implementations); macros, which are not functions, are listed here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from charter.cel.library import ALL
from charter.cel.signatures import Function


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
    #: for a method: the kinds of value it is called on (``string``, ``list``, ``timestamp`` ...)
    receivers: tuple[str, ...] = ()


def _entry(f: Function) -> CelFunction:
    if f.variadic:
        signature = f"{f.name}(a, b, ...) -> {f.overloads[0].result}; {f.name}(list) -> number"
    elif f.member:
        signature = "; ".join(
            f"{o.params[0]}.{f.name}({', '.join(str(p) for p in o.params[1:])}) -> {o.result}"
            for o in f.overloads
        )
    else:
        signature = "; ".join(
            f"{f.name}({', '.join(str(p) for p in o.params)}) -> {o.result}" for o in f.overloads
        )
    receivers = tuple(dict.fromkeys(o.params[0].kind for o in f.overloads)) if f.member else ()
    form = CelForm.METHOD if f.member else CelForm.FUNCTION
    doc = f.doc[:1].upper() + f.doc[1:] + "." if f.doc else ""
    return CelFunction(f.name, form, signature, doc, f.examples[0], receivers)


_MACROS: tuple[CelFunction, ...] = (
    CelFunction("has", CelForm.MACRO, "has(map.key) -> bool",
                "True when a map has the key (test before reading a key that may be missing).",
                "has(cost.USD) && cost.USD > 10.0"),
    CelFunction("all", CelForm.MACRO, "list.all(x, predicate) -> bool; all(i, v, predicate)",
                "True when the predicate holds for every element (or index or key, and value).",
                "signals.all(s, s.score < 0.9)", ("list", "map")),
    CelFunction("exists", CelForm.MACRO, "list.exists(x, predicate) -> bool; exists(i, v, predicate)",
                "True when the predicate holds for some element.",
                'signals.exists(s, s.source == "risk" && s.score >= 0.3)', ("list", "map")),
    CelFunction("exists_one", CelForm.MACRO, "list.exists_one(x, predicate) -> bool",
                "True when the predicate holds for exactly one element.",
                'signals.exists_one(s, s.kind == "risk.anomaly")', ("list", "map")),
    CelFunction("existsOne", CelForm.MACRO, "list.existsOne(x, predicate) -> bool; (i, v, predicate)",
                "exists_one, as cel-go spells it.",
                'signals.existsOne(s, s.kind == "risk.anomaly")', ("list", "map")),
    CelFunction("map", CelForm.MACRO, "list.map(x, expression) -> list; map(x, filter, expression)",
                "The list of the expression's values for each element (that passes the filter).",
                "signals.map(s, s.score).exists(v, v > 0.5)", ("list", "map")),
    CelFunction("filter", CelForm.MACRO, "list.filter(x, predicate) -> list",
                "The elements for which the predicate holds.",
                "signals.filter(s, s.score >= 0.5).size() >= 2", ("list", "map")),
    CelFunction("sortBy", CelForm.MACRO, "list.sortBy(x, key) -> list",
                "The elements ordered by a key computed from each.",
                "signals.sortBy(s, s.score).size() >= 0", ("list",)),
    CelFunction("transformList", CelForm.MACRO, "list.transformList(i, v, [filter,] expression) -> list",
                "The list of the expression's values for each index (or key) and value.",
                "actor.roles.transformList(i, r, i).size() >= 0", ("list", "map")),
    CelFunction("transformMap", CelForm.MACRO, "map.transformMap(k, v, [filter,] expression) -> map",
                "The map with each value replaced by the expression's value.",
                "cost.transformMap(unit, amount, amount * 2.0).size() >= 0", ("list", "map")),
    CelFunction("transformMapEntry", CelForm.MACRO, "map.transformMapEntry(k, v, {key: value}) -> map",
                "The map of the entries the expression gives.",
                "cost.transformMapEntry(unit, amount, {unit: amount}).size() >= 0", ("list", "map")),
    CelFunction("optMap", CelForm.MACRO, "optional.optMap(x, expression) -> optional",
                "An optional of the expression's value, when the optional holds a value.",
                'args.?payee.optMap(p, p.size()).orValue(0) < 64', ("optional",)),
    CelFunction("optFlatMap", CelForm.MACRO, "optional.optFlatMap(x, optional expression) -> optional",
                "The optional the expression gives, when the optional holds a value.",
                'args.?payee.optFlatMap(p, optional.of(p)).hasValue() || true', ("optional",)),
)  # fmt: skip

CATALOG: tuple[CelFunction, ...] = (*(_entry(f) for f in ALL), *_MACROS)

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
