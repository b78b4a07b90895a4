"""Compiler stage 2a (typecheck): named constants and named conditions, checked and prepared for inlining.

Constants get their type (declared, or the literal's) and a plain value; named conditions are
checked once, in dependency order (a cycle is E203), against their typed parameters and the
request-wide roots (not ``args``: E311); every condition of the policy then sees both through one
:class:`charter.cel.Definitions` (docs/language.md, "Constants and named conditions").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from charter.cel import (
    CelCompileError,
    CelType,
    Constant,
    Definition,
    Definitions,
    Limits,
    ProblemKind,
    define,
)
from charter.cel.library import GLOBALS, MACROS
from charter.cel.parser import RESERVED_WORDS, ParseFailure, parse
from charter.cel.provenance import SOURCE_TYPE
from charter.cel.syntax import Call, Node, children
from charter.cel.values import TYPE_NAMES
from charter.diagnostics import Code, Diagnostic, Span, error
from charter.syntax import ast

#: Most elements of an inline list constant (a longer list belongs in a file).
MAX_INLINE_ELEMENTS = 512

#: Names a constant, condition or parameter may not take: the request roots every condition
#: reads (and those some places add), and the words CEL reserves.
RESERVED = frozenset(
    {
        "actor",
        "action",
        "args",
        "tool",
        "context",
        "cost",
        "signals",
        "run",
        "result",
        "estimate",
        "history",
        "earlier",
        "grant",
        "labels",
        "sources",
        "granted",
        "true",
        "false",
        "null",
        "in",
    }
    | RESERVED_WORDS
)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SCALARS = {
    "string": CelType.STRING,
    "int": CelType.INT,
    "double": CelType.DOUBLE,
    "number": CelType.DOUBLE,
    "bool": CelType.BOOL,
    "any": CelType.DYN,
}


def _bad_name(what: str, name: ast.Name, diags: list[Diagnostic], function: bool = False) -> bool:
    """E207 when conditions could not read ``name`` (or it would hide a root or a function)."""
    n = name.value
    if not _IDENT.fullmatch(n):
        fixed = re.sub(r"[^A-Za-z0-9_]", "_", n)
        diags.append(
            error(
                Code.E207_BAD_NAME,
                f"'{n}' cannot be the name of a {what}",
                name.span,
                f"a {what} is read by conditions, which see '-' and '.' as operators: write {fixed}, not {n}",
            )
        )
        return True
    if n in RESERVED or n in TYPE_NAMES or (function and (n in GLOBALS or n in MACROS)):
        diags.append(
            error(
                Code.E207_BAD_NAME,
                f"the {what} name '{n}' is taken",
                name.span,
                f"'{n}' already means something in conditions: choose another name",
            )
        )
        return True
    return False


def _literal_type(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Decimal):
        return "double" if "." in str(value) else "int"
    if isinstance(value, float):
        return "double"
    if isinstance(value, int):
        return "int"
    return None


def _convert(value: Any, scalar: str) -> tuple[bool, Any]:
    """(ok, the plain value) for a literal or file value of a scalar type."""
    if scalar == "any":
        kind = _literal_type(value)
        return (False, None) if kind is None else _convert(value, kind)
    if scalar == "string":
        return (True, value) if isinstance(value, str) else (False, None)
    if scalar == "bool":
        return (True, value) if isinstance(value, bool) else (False, None)
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return False, None
    if scalar == "int":
        if isinstance(value, Decimal):
            if "." in str(value) or value != value.to_integral_value():
                return False, None
            value = int(value)
        if not isinstance(value, int) or not -(2**63) <= value < 2**63:
            return False, None
        return True, value
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        return False, None
    return True, number


def _constant(decl: ast.ConstDecl, value: Any, diags: list[Diagnostic]) -> Constant | None:
    ref = decl.type
    if ref is None:
        if isinstance(value, tuple):
            kinds = {_literal_type(v) for v in value}
            kinds = {"double"} if kinds == {"int", "double"} else kinds
            elem = kinds.pop() if len(kinds) == 1 else ("string" if not value else None)
            if elem is None:
                diags.append(
                    error(
                        Code.E303_CEL_TYPE,
                        f"the list of constant '{decl.name.value}' mixes types",
                        decl.span,
                        "declare its type, e.g. const x: list of string = [...]",
                    )
                )
                return None
            ref = ast.TypeRef(name="list", element=ast.TypeRef(name=elem))
        else:
            ref = ast.TypeRef(name=_literal_type(value) or "any")
    collection = ref.name in ("list", "set")
    elem_ref = ref.element if collection else ref
    scalar = elem_ref.name if elem_ref is not None else "any"
    if scalar not in _SCALARS or (elem_ref is not None and elem_ref.element is not None):
        diags.append(
            error(
                Code.E303_CEL_TYPE,
                f"a constant cannot be of type {_type_text(ref)}",
                ref.span if ref.span.path != "<none>" else decl.span,
                "constants are texts, numbers, true/false, or lists and sets of those",
            )
        )
        return None
    values = list(value) if isinstance(value, (tuple, list)) else None
    if collection != (values is not None):
        want = f"a list of {scalar} values" if collection else f"one {scalar} value"
        diags.append(
            error(
                Code.E303_CEL_TYPE,
                f"constant '{decl.name.value}' is {_type_text(ref)}, so its value must be {want}",
                decl.span,
            )
        )
        return None
    if values is not None and decl.file is None and len(values) > MAX_INLINE_ELEMENTS:
        diags.append(
            error(
                Code.E304_CEL_TOO_COMPLEX,
                f"constant '{decl.name.value}' has {len(values)} "
                f"values (at most {MAX_INLINE_ELEMENTS} inline)",
                decl.span,
                'put them in a file: const NAME: set of string from "NAME.yaml"',
            )
        )
        return None
    out: Any
    if values is not None:
        out = []
        for v in values:
            ok, plain = _convert(v, scalar)
            if not ok:
                diags.append(
                    error(
                        Code.E303_CEL_TYPE,
                        f"constant '{decl.name.value}': {_show(v)} is not {scalar}",
                        decl.span,
                    )
                )
                return None
            out.append(plain)
        if ref.name == "set":
            out = list(dict.fromkeys(out))
        return Constant(CelType.LIST(_SCALARS[scalar]), out)
    ok, out = _convert(value, scalar)
    if not ok:
        diags.append(
            error(
                Code.E303_CEL_TYPE, f"constant '{decl.name.value}': {_show(value)} is not {scalar}", decl.span
            )
        )
        return None
    return Constant(_SCALARS[scalar], out)


def _show(v: Any) -> str:
    if isinstance(v, str):
        return '"' + v[:40] + '"'
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)[:40]


def _type_text(ref: ast.TypeRef) -> str:
    return ref.name if ref.element is None else f"{ref.name} of {_type_text(ref.element)}"


def _calls(text: str, names: Mapping[str, Any]) -> list[str]:
    """The named conditions a body calls (empty when it does not parse: define reports that)."""
    try:
        node = parse(text, Limits())
    except (ParseFailure, RecursionError):
        return []
    out: list[str] = []
    stack: list[Node] = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Call) and n.name in names:
            out.append(n.name)
        stack.extend(children(n))
    return out


def _offset(span: Span, text: str, start: int, end: int) -> Span:
    from charter.compiler.typecheck import offset_span

    return offset_span(span, text, start, end)


def definitions(
    constants: Mapping[str, ast.ConstDecl],
    conditions: Mapping[str, ast.ConditionDecl],
    files: Mapping[str, Any],
    roots: Mapping[str, CelType],
    cel_type: Any,
    diags: list[Diagnostic],
) -> Definitions:
    """Check every constant and named condition; the ones without errors, ready to inline."""
    consts: dict[str, Constant] = {}
    for name, const_decl in constants.items():
        if _bad_name("constant", const_decl.name, diags):
            continue
        if const_decl.file is not None and name not in files:
            continue  # the load stage reported the file
        found = _constant(const_decl, files[name] if const_decl.file is not None else const_decl.value, diags)
        if found is not None:
            consts[name] = found
    env = {k: v for k, v in roots.items() if k != "args"}
    order = _order(conditions, diags)
    prepared: dict[str, Definition] = {}
    for name in order:
        decl = conditions[name]
        bad = _bad_name("condition", decl.name, diags, function=True)
        params: list[tuple[str, CelType]] = []
        for p in decl.params:
            bad = _bad_name("parameter", p.name, diags) or bad
            if p.name.value in consts:
                diags.append(
                    error(
                        Code.E202_DUPLICATE,
                        f"parameter '{p.name.value}' hides the constant '{p.name.value}'",
                        p.name.span,
                        "rename the parameter",
                    )
                )
                bad = True
            if p.name.value in (q for q, _ in params):
                diags.append(
                    error(Code.E202_DUPLICATE, f"parameter '{p.name.value}' is declared twice", p.name.span)
                )
                bad = True
            if p.type.name == "source" and p.type.element is None:
                t = SOURCE_TYPE  # what sources(v) lists: a type for parameters only
            elif p.type.name == "set" and p.type.element:
                t = CelType.LIST(cel_type(p.type.element, diags))
            else:
                t = cel_type(p.type, diags)
            params.append((p.name.value, t))
        if bad:
            continue
        try:
            prepared[name] = define(name, tuple(params), decl.body, env, Definitions(consts, dict(prepared)))
        except CelCompileError as exc:
            for prob in exc.problems or []:
                where = _offset(decl.body_span, decl.body, prob.start, prob.end)
                word = decl.body[prob.start : prob.end]
                if prob.kind is ProblemKind.UNKNOWN_NAME and word == "args":
                    read = re.match(r"\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)", decl.body[prob.end :])
                    arg = f"args.{read.group(1)}" if read else "args.NAME"
                    diags.append(
                        error(
                            Code.E311_CONDITION_READS_ARGS,
                            f"named condition '{name}' reads args",
                            where,
                            "a condition is typed once, args per rule: pass the "
                            f"argument as a parameter, and call {name}({arg})",
                        )
                    )
                    continue
                if prob.kind is ProblemKind.UNKNOWN_NAME and word in conditions and word not in prepared:
                    continue  # a condition that failed itself (already reported)
                code = {
                    ProblemKind.UNKNOWN_NAME: Code.E302_CEL_UNKNOWN_NAME,
                    ProblemKind.TYPE: Code.E303_CEL_TYPE,
                    ProblemKind.TOO_COMPLEX: Code.E304_CEL_TOO_COMPLEX,
                    ProblemKind.UNSUPPORTED: Code.E305_CEL_UNSUPPORTED,
                    ProblemKind.NOT_BOOL: Code.E306_CEL_NOT_BOOL,
                    ProblemKind.BAD_CALL: Code.E308_CEL_BAD_CALL,
                    ProblemKind.BAD_PATTERN: Code.E309_CEL_BAD_PATTERN,
                }.get(prob.kind, Code.E301_CEL_SYNTAX)
                diags.append(error(code, prob.message, where, prob.help))
            if not exc.problems:
                diags.append(error(Code.E304_CEL_TOO_COMPLEX, "the condition is too complex", decl.body_span))
    return Definitions(consts, prepared)


def _order(conditions: Mapping[str, ast.ConditionDecl], diags: list[Diagnostic]) -> list[str]:
    """Conditions with every callee first; the conditions of a cycle are reported (E203) and left out."""
    calls = {name: _calls(d.body, conditions) for name, d in conditions.items()}
    order: list[str] = []
    state: dict[str, int] = {}  # 1: visiting, 2: done
    cyclic: set[str] = set()
    for start in conditions:
        if state.get(start):
            continue
        # Iterative depth-first search: a hostile policy may chain thousands of conditions.
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = [start]
        state[start] = 1
        while stack:
            name, i = stack[-1]
            callees = calls[name]
            if i < len(callees):
                stack[-1] = (name, i + 1)
                nxt = callees[i]
                if state.get(nxt) == 1:
                    loop = path[path.index(nxt) :]
                    if nxt not in cyclic:
                        decl = conditions[nxt]
                        chain = " -> ".join([*loop, nxt])
                        diags.append(
                            error(
                                Code.E203_INCLUDE_CYCLE,
                                f"named conditions call each other in a loop: {chain}",
                                decl.name.span,
                                "a condition cannot call itself, directly or through others",
                            )
                        )
                    cyclic.update(loop)
                elif not state.get(nxt):
                    state[nxt] = 1
                    stack.append((nxt, 0))
                    path.append(nxt)
                continue
            stack.pop()
            path.pop()
            state[name] = 2
            if name not in cyclic and not any(c in cyclic for c in callees):
                order.append(name)
            else:
                cyclic.add(name)
    return order
