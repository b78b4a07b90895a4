"""Compiler stage 2c (typecheck): run grant kinds (``grant KIND { ... }``) checked and compiled.

A grant kind declares what a run grant may cover (``action``, required), its typed ``param``s,
``covers`` conditions (read the request and ``grant.*``), ``bound`` conditions (read only
``grant.*``, constants and named conditions: E307 otherwise), ``uses`` and ``reason``
(docs/language.md, "Run grants"). ``granted("KIND")`` in a rule must name a declared kind (E302,
with a did-you-mean); a rule whose actions cannot meet the kind's ``action`` is W501.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from charter.cel import CelType
from charter.cel.syntax import Call, Lit, Node, children
from charter.compiler.resolve import Symbols
from charter.compiler.typecheck import (
    ConditionCompiler,
    Environments,
    args_type,
    cel_type,
    offset_span,
)
from charter.diagnostics import Code, Diagnostic, Span, did_you_mean, error, warning
from charter.engine import policy as ir
from charter.engine.grants import convert_param
from charter.enums import ActionKind
from charter.syntax import ast

#: The clauses a grant kind accepts (``action`` is required; the rest of a rule's clauses are not).
GRANT_CLAUSES = frozenset({"action", "param", "covers", "bound", "uses", "reason"})
#: Request roots a ``bound`` may not read: it is checked when the grant is declared.
REQUEST_ROOTS = frozenset({"args", "actor", "action", "tool", "context", "cost", "signals", "run"})
_SCALARS = {"string", "int", "double", "number", "bool", "any"}


def granted_calls(node: Node) -> Iterator[Call]:
    """Every ``granted(...)`` call in a checked condition."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Call) and n.name == "granted":
            yield n
        stack.extend(children(n))


def check_granted(
    text: str, node: Node, span: Span, kinds: Mapping[str, Any], diags: list[Diagnostic], in_grant: bool
) -> None:
    """E302 for ``granted(x)`` whose x is not a text literal naming a declared grant kind; E307 in a grant."""
    for call in granted_calls(node):
        inside = 0 <= call.start < call.end <= len(text)
        where = offset_span(span, text, call.start, call.end) if inside else span
        if in_grant:
            diags.append(
                error(
                    Code.E307_CEL_WRONG_PLACE,
                    "granted() is only available in rules, budgets, rates and tripwires",
                    where,
                    "a grant's own conditions read grant.<param>, not other grants",
                )
            )
            continue
        arg = call.args[0] if len(call.args) == 1 else None
        if not isinstance(arg, Lit) or not isinstance(arg.value, str):
            diags.append(
                error(
                    Code.E302_CEL_UNKNOWN_NAME,
                    "granted() takes the name of a grant kind as a text literal",
                    where,
                    'e.g. granted("send-mail")',
                )
            )
            continue
        if arg.value not in kinds:
            hint = did_you_mean(arg.value, kinds) or (
                "declared grant kinds: " + ", ".join(sorted(kinds))
                if kinds
                else "declare one: grant KIND { action call TOOL ... }"
            )
            diags.append(error(Code.E302_CEL_UNKNOWN_NAME, f"unknown grant kind '{arg.value}'", where, hint))


def _selector(decl: ast.GrantDecl, sym: Symbols) -> tuple[ir.Selector, list[str] | None]:
    """The grant's action selector and the declared tools it targets (None: any tool)."""
    act = next((c for c in decl.clauses if c.clause == "action"), None)
    if act is None or act.selector.kind is None:
        return ir.Selector(), None
    sel: ast.ActionSel = act.selector
    target = ir.Target()
    tools: list[str] | None = None
    if sel.target is not None and sel.target.by != "any":
        names = set(sel.target.tool_names(sym.tags, sym.categories))
        roles = {n.value for n in sel.target.names} if sel.target.by == "role" else set()
        target = ir.Target(any=False, names=frozenset(names), roles=frozenset(roles))
        if sel.kind is ActionKind.CALL and not roles:
            tools = sorted(names)
    return ir.Selector(kind=sel.kind, target=target), tools


def _param(p: ast.ParamClause, diags: list[Diagnostic]) -> tuple[ir.GrantParam, CelType] | None:
    t = p.type
    many = t.name in ("list", "set")
    scalar_ref = t.element if many and t.element is not None else t
    if scalar_ref.name not in _SCALARS or scalar_ref.element is not None:
        diags.append(
            error(
                Code.E201_UNKNOWN_NAME,
                f"a grant param is a string, int, double, bool or any, or a set or list of one; "
                f"not '{_type_text(t)}'",
                t.span,
                "e.g. param to: set of string = []",
            )
        )
        return None
    scalar = "double" if scalar_ref.name == "number" else scalar_ref.name
    default = None
    if p.default is not None:
        ok, default = convert_param(_plain(p.default), scalar, many)
        if not ok:
            diags.append(
                error(
                    Code.E303_CEL_TYPE,
                    f"the default of param '{p.name.value}' is not of type {_type_text(t)}",
                    p.span,
                    "give a value of the declared type, e.g. [] for a set",
                )
            )
            return None
    param = ir.GrantParam(p.name.value, _type_text(t), scalar, many, p.default is None, default)
    return param, cel_type(t, diags)


def _plain(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if "." not in str(value) and value == int(value) else float(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _type_text(t: ast.TypeRef) -> str:
    return f"{t.name} of {_type_text(t.element)}" if t.element is not None else t.name


def _rewrite_bound(diags: list[Diagnostic], start: int, text: str) -> None:
    """E307 instead of E302 for a ``bound`` that reads a request root."""
    for i in range(start, len(diags)):
        d = diags[i]
        if d.code is not Code.E302_CEL_UNKNOWN_NAME or not d.message.startswith("unknown name '"):
            continue
        name = d.message[len("unknown name '") :].split("'", 1)[0]
        if name in REQUEST_ROOTS:
            diags[i] = error(
                Code.E307_CEL_WRONG_PLACE,
                f"a bound cannot read '{name}'",
                d.span,
                "a bound is checked when the grant is declared: "
                "it sees only grant.*, constants and conditions",
            )


def grant_kinds(
    sym: Symbols, envs: Environments, conds: ConditionCompiler, diags: list[Diagnostic]
) -> dict[str, ir.GrantKind]:
    """Check and compile every grant kind; the ones without errors."""
    out: dict[str, ir.GrantKind] = {}
    for name, decl in sym.grants.items():
        before = len(diags)
        for c in decl.clauses:
            if c.clause not in GRANT_CLAUSES:
                diags.append(
                    error(
                        Code.E106_BAD_CLAUSE,
                        f"'{c.clause}' is not allowed in a grant",
                        c.span,
                        "allowed here: " + ", ".join(sorted(GRANT_CLAUSES)),
                    )
                )
        singles = [c for c in decl.clauses if c.clause in ("action", "uses", "reason")]
        seen: set[str] = set()
        for c in singles:
            if c.clause in seen:
                diags.append(error(Code.E107_DUPLICATE_CLAUSE, f"a grant has one '{c.clause}'", c.span))
            seen.add(c.clause)
        if "action" not in seen:
            diags.append(
                error(
                    Code.E108_MISSING_CLAUSE,
                    f"grant '{name}' needs an 'action' clause",
                    decl.name.span,
                    "say what it can cover, e.g. action call mail.send",
                )
            )
        selector, tools = _selector(decl, sym)
        params: list[ir.GrantParam] = []
        fields: dict[str, CelType] = {}
        for c in decl.clauses:
            if isinstance(c, ast.ParamClause):
                if c.name.value in fields:
                    diags.append(
                        error(Code.E202_DUPLICATE, f"param '{c.name.value}' is declared twice", c.span)
                    )
                    continue
                found = _param(c, diags)
                if found is not None:
                    params.append(found[0])
                    fields[c.name.value] = found[1]
        grant_type = CelType.OBJECT(fields)
        request_env: dict[str, CelType] = envs.base(*args_type(tools, envs))
        request_env["grant"] = grant_type
        bound_env: dict[str, CelType] = {"grant": grant_type}
        covers: list[ir.GrantCheck] = []
        bounds: list[ir.GrantCheck] = []
        uses = None
        conds.in_grant = True
        try:
            for c in decl.clauses:
                if not isinstance(c, ast.GrantCelClause):
                    continue
                if c.clause == "covers":
                    compiled = conds.compile(c.text, request_env, c.text_span, diags)
                    if compiled is not None:
                        covers.append(ir.GrantCheck(c.text, compiled.fn, c.span.line))
                elif c.clause == "bound":
                    at = len(diags)
                    compiled = conds.compile(c.text, bound_env, c.text_span, diags)
                    _rewrite_bound(diags, at, c.text)
                    if compiled is not None:
                        bounds.append(ir.GrantCheck(c.text, compiled.fn, c.span.line))
                else:
                    at = len(diags)
                    compiled = conds.compile(c.text, bound_env, c.text_span, diags, numeric=True)
                    _rewrite_bound(diags, at, c.text)
                    if compiled is not None:
                        if compiled.result_type.kind not in ("int", "uint", "dyn"):
                            diags.append(
                                error(
                                    Code.E303_CEL_TYPE,
                                    f"uses must be a whole number, but this gives {compiled.result_type}",
                                    c.text_span,
                                    "e.g. uses 1 or uses grant.count",
                                )
                            )
                        else:
                            uses = compiled.fn
        finally:
            conds.in_grant = False
        if any(d.is_error for d in diags[before:]):
            continue
        reason = next((c.text for c in decl.clauses if isinstance(c, ast.ReasonClause)), "")
        sp = decl.span
        out[name] = ir.GrantKind(
            name,
            selector,
            tuple(params),
            tuple(covers),
            tuple(bounds),
            uses,
            reason,
            ir.Source(sp.path, sp.line, sp.column),
        )
    return out


def _meets(rule: ir.Selector, grant: ir.Selector) -> bool:
    """Whether some action a rule selects is one the grant kind can cover."""
    if rule.kind is not None and grant.kind is not None and rule.kind is not grant.kind:
        return False
    a, b = rule.target, grant.target
    if a.any or b.any:
        return True
    return bool(a.names & b.names) or bool(a.roles & b.roles)


def never_fires(rules: Any, kinds: Mapping[str, ir.GrantKind], spans: Mapping[str, Span]) -> list[Diagnostic]:
    """W501 for a rule whose ``granted("K")`` can never hold: its actions are not K's."""
    out: list[Diagnostic] = []
    for r in rules:
        for cond in getattr(r, "conditions", ()):
            checked = cond.checked
            if checked is None or "granted" not in cond.text:
                continue
            for call in granted_calls(checked.node):
                arg = call.args[0] if call.args else None
                kind = kinds.get(arg.value) if isinstance(arg, Lit) and isinstance(arg.value, str) else None
                if kind is None or cond.negate or _meets(r.selector, kind.selector):
                    continue
                span = spans.get(r.id)
                if span is None:
                    continue
                out.append(
                    warning(
                        Code.W501_NEVER_FIRES,
                        f"rule '{r.id}' never fires: granted(\"{kind.name}\") covers no action it selects",
                        span,
                        f"grant '{kind.name}' covers only its own 'action'; select those actions here",
                    )
                )
    return out
