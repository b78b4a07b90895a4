"""Hover: what a name declares (a tool's arguments, a group's members, a rule's effect and reason),
and in a condition the type of the expression under the cursor or a function's meaning."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from charter.cel import CelCompileError, CelType, compile_condition
from charter.compiler.lower import EFFECT
from charter.diagnostics import Span
from charter.editing.cel_catalog import BY_NAME
from charter.editing.complete import member_type, rule_environment
from charter.editing.context import analyse
from charter.editing.project import ProjectCompile
from charter.editing.symbols import Occurrence, SymbolKind
from charter.editing.text import CEL_PATH, LineIndex, word_at
from charter.syntax import ast


@dataclass(frozen=True)
class Hover:
    """Markdown to show, and the span it is about."""

    markdown: str
    span: Span | None


def hover(done: ProjectCompile, path: str, text: str, offset: int) -> Hover | None:
    """What to show for the position ``offset`` of the document ``path`` (its current ``text``)."""
    ctx = analyse(text, offset)
    lines = LineIndex(text)
    if ctx.in_condition:
        found = _condition(done, text, offset, lines, path)
        if found is not None:
            return found
    line, col = lines.position(offset)
    occ = done.index.at(path, line, col)
    if occ is None:
        return None
    body = _symbol(done, occ)
    return Hover(body, occ.span) if body else None


# ---- conditions ------------------------------------------------------------------------------
def _condition(done: ProjectCompile, text: str, offset: int, lines: LineIndex, path: str) -> Hover | None:
    ctx = analyse(text, offset)
    bounds = word_at(text, offset, CEL_PATH)
    if bounds is None:
        return None
    start, end = bounds
    # the path up to the word under the cursor (args.amount when hovering "args" shows args)
    tail = re.match(r"[A-Za-z0-9_]*", text[offset:end])
    end = offset + (tail.end() if tail else 0)
    expr = re.sub(r"\s+", "", text[start:end])
    span = lines.span(path, start, end)
    name = expr.rsplit(".", 1)[-1]
    after = text[end : end + 1]
    if after == "(" and name in BY_NAME:
        f = BY_NAME[name]
        return Hover(f"```\n{f.signature}\n```\n{f.doc}", span)
    env = rule_environment(ctx.block_text, ctx.rule, done.index, done.symbols)
    if not env:
        return None
    try:
        found: CelType | None = compile_condition(expr, env, expect_bool=False).result_type
    except CelCompileError:
        found = member_type(env, expr.split("."))
    if found is None:
        return None
    lines_out = [f"`{expr}`: **{_cel_type(found)}**"]
    if expr.startswith("args.") and expr.count(".") == 1:
        arg = expr.split(".", 1)[1]
        for tool, args in sorted(done.index.tool_args.items()):
            if arg in args and re.search(rf"(?<![\w.-]){re.escape(tool)}(?![\w.-])", ctx.block_text):
                lines_out.append(f"declared by tool `{tool}`: `arg {arg}: {args[arg]}`")
    return Hover("\n\n".join(lines_out), span)


# ---- declarations ----------------------------------------------------------------------------
def _symbol(done: ProjectCompile, occ: Occurrence) -> str:
    decls = done.index.declarations(occ.key)
    node = next((d.node for d in decls if d.node is not None), None)
    where = ", ".join(str(d.span) for d in decls) or "not declared"
    refs = len(done.index.references(occ.key))
    head = f"**{occ.kind.value}** `{occ.name.split('/')[-1]}`"
    body = _describe(done, occ, node)
    foot = f"declared at {where}; {refs} reference{'s' if refs != 1 else ''}"
    return "\n\n".join(x for x in (head, body, foot) if x)


def _describe(done: ProjectCompile, occ: Occurrence, node: Any) -> str:
    sym = done.symbols
    if occ.kind is SymbolKind.TOOL and isinstance(node, ast.Tool):
        parts = []
        if node.category is not None:
            parts.append(f"category `{node.category.value}`")
        if node.tags:
            parts.append("tags " + ", ".join(f"`{t.value}`" for t in node.tags))
        args = [f"| `{a.name.value}` | {_type(a.type)}{' (secret)' if a.secret else ''} |" for a in node.args]
        table = "\n".join(["| argument | type |", "|---|---|", *args]) if args else "no declared arguments"
        return "; ".join(parts) + ("\n\n" if parts else "") + table
    if occ.kind is SymbolKind.TOOL_ARG and isinstance(node, ast.ToolArg):
        tool = occ.name.split("/")[0]
        return (
            f"`arg {node.name.value}: {_type(node.type)}`{' secret' if node.secret else ''} of tool `{tool}`"
        )
    if occ.kind is SymbolKind.GROUP and sym is not None and occ.name in sym.groups:
        return "members: " + ", ".join(sym.groups[occ.name])
    if occ.kind is SymbolKind.ESCALATION and isinstance(node, ast.Escalation):
        steps = [
            f"to `{s.target.value}`" + (f" for {s.timeout.text}" if s.timeout else "") for s in node.steps
        ]
        return " → ".join([*steps, f"finally **{node.final or 'deny'}**"])
    if occ.kind in (SymbolKind.ATTRIBUTE, SymbolKind.CONTEXT) and isinstance(
        node, (ast.Attribute, ast.ContextField)
    ):
        root = "actor" if occ.kind is SymbolKind.ATTRIBUTE else "context"
        return f"`{root}.{node.name.value}`: {_type(node.type)}"
    if occ.kind is SymbolKind.AGENT and sym is not None and occ.name in sym.agents:
        a = sym.agents[occ.name]
        parts = [f"roles: {', '.join(a.roles) or '—'}"]
        if a.parent:
            parts.append(f"parent: `{a.parent}`")
        if a.attrs:
            parts.append("attributes: " + ", ".join(f"{k} = {v}" for k, v in a.attrs.items()))
        return "; ".join(parts)
    if occ.kind is SymbolKind.SIGNAL and isinstance(node, ast.Signal):
        src = f"from `{node.source.value}`" if node.source else "no source"
        return src + ("; clears other signals of its source" if node.clears else "")
    if occ.kind is SymbolKind.RULE and isinstance(node, ast.Rule):
        return _rule(done, node)
    return ""


def _rule(done: ProjectCompile, rule: ast.Rule) -> str:
    reason = next((c.text for c in rule.clauses if isinstance(c, ast.ReasonClause)), None)
    mode = next((c.mode.value for c in rule.clauses if isinstance(c, ast.ModeClause)), "enforce")
    effect = EFFECT[rule.kind].value if rule.kind in EFFECT else None
    policy = done.result.policy
    if policy is not None:
        for group in (policy.budgets, policy.rates):
            for b in group:
                if b.id == rule.id.value:
                    effect = f"{b.on_exceed.value} when exceeded"
        for t in policy.tripwires:
            if t.id == rule.id.value:
                effect = f"{t.outcome.value} when tripped"
        for r in policy.result_checks:
            if r.id == rule.id.value and r.outcome is not None:
                effect = f"{r.outcome.value} after the action"
    out = [f"`{rule.kind.value}` rule: effect **{effect or 'see its then clause'}**"]
    if mode != "enforce":
        out.append(f"mode **{mode}** (decides nothing; recorded in the trace)")
    out.append(f"reason: “{reason}”" if reason else "no reason (W506)")
    return "\n\n".join(out)


def _cel_type(t: CelType) -> str:
    """A CEL type for a person: a record shows its fields."""
    if t.kind == "object" and t.fields:
        return "record {" + ", ".join(f"{k}: {v}" for k, v in sorted(t.fields.items())) + "}"
    return str(t)


def _type(t: ast.TypeRef) -> str:
    return t.name if t.element is None else f"{t.name} of {_type(t.element)}"
