"""Compiler stage 4 (analyse), W508: declarations nothing in the policy refers to.

Checked: groups, escalation chains, signals (but not one that ``clears``: it acts by itself),
roles, units, attributes and context fields declared in policy files (tools have their own
warning, W505; inventory groups are not declarations). A name counts as used when a rule,
declaration or inventory (an agent's roles and attributes) names it, or when a condition reads
it (``actor.ATTR``, ``context.FIELD``, ``cost.UNIT``) or compares with it as a quoted string
(``"risk" in actor.roles``, ``s.kind == "conflict"``): roles and signal kinds are data that
conditions may test, and a warning must never be wrong about a policy that does so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from charter.cel import Compiled
from charter.compiler.resolve import Symbols
from charter.diagnostics import Code, Diagnostic, Span, warning
from charter.syntax import ast

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_QUOTED = re.compile(r"\"((?:[^\"\\\n]|\\.)*)\"|'((?:[^'\\\n]|\\.)*)'")


def _read(conditions: Iterable[Compiled], root: str) -> tuple[set[str], bool]:
    """Fields of ``root`` the conditions read, and whether one reads ``root`` as a whole."""
    fields: set[str] = set()
    whole = False
    prefix = root + "."
    for c in conditions:
        for ref in c.references:
            if ref == root:
                whole = True
            elif ref.startswith(prefix):
                fields.add(ref[len(prefix) :].split(".", 1)[0])
    return fields, whole


def unused(
    modules: list[ast.Module], sym: Symbols, conditions: list[Compiled], texts: Iterable[str]
) -> list[Diagnostic]:
    """W508 for every declaration nothing refers to, in declaration order."""
    texts = [*texts, *(c.body for c in sym.conditions.values())]
    quoted = {a or b for text in texts for a, b in _QUOTED.findall(text)}
    # Constants and named conditions are used when a condition names them (a word outside quotes).
    words = {w for text in texts for w in _WORD.findall(_QUOTED.sub(" ", text))}
    used = {(what, name) for what, name in sym.used}
    used |= {("group", name) for what, name in sym.used if what == "escalation target"}
    used |= {("escalation", name) for what, name in sym.used if what == "escalation target"}
    for chain in sym.escalations.values():
        used |= {("group", step.target.value) for step in chain.steps}
    for agent in sym.agents.values():
        used |= {("role", role) for role in agent.roles}
        used |= {("attribute", attr) for attr in agent.attrs}
    attrs, all_attrs = _read(conditions, "actor")
    fields, all_fields = _read(conditions, "context")
    costs, all_costs = _read(conditions, "cost")
    estimates, all_estimates = _read(conditions, "estimate")
    used |= {("attribute", a) for a in attrs} | {("context field", f) for f in fields}
    used |= {("unit", u) for u in costs | estimates}

    found: list[tuple[str, ast.Name]] = []
    for module in modules:
        for item in module.items:
            if isinstance(item, ast.Group):
                found.append(("group", item.name))
            elif isinstance(item, ast.Escalation):
                found.append(("escalation", item.name))
            elif isinstance(item, ast.Signal) and not item.clears:
                found.append(("signal", item.name))  # a signal that clears acts by itself
            elif isinstance(item, ast.Roles):
                found.extend(("role", n) for n in item.names)
            elif isinstance(item, ast.Units):
                found.extend(("unit", n) for n in item.names)
            elif isinstance(item, ast.Attribute):
                found.append(("attribute", item.name))
            elif isinstance(item, ast.ContextField):
                found.append(("context field", item.name))
            elif isinstance(item, ast.ConstDecl):
                found.append(("constant", item.name))
            elif isinstance(item, ast.ConditionDecl):
                found.append(("condition", item.name))
    whole = {"attribute": all_attrs, "context field": all_fields, "unit": all_costs or all_estimates}
    out: list[Diagnostic] = []
    for what, name in found:
        if (what, name.value) in used or whole.get(what, False):
            continue
        if what in ("role", "signal") and name.value in quoted:
            continue
        if what in ("constant", "condition") and name.value in words:
            continue
        out.append(_warning(what, name.value, name.span))
    return out


def _warning(what: str, name: str, span: Span) -> Diagnostic:
    kind = "escalation chain" if what == "escalation" else what
    return warning(
        Code.W508_UNUSED_DECLARATION,
        f"{kind} '{name}' is declared but nothing refers to it",
        span,
        "refer to it or remove the declaration (a typo elsewhere can leave it unused)",
    )
