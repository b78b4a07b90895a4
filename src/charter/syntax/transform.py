"""Turns the Lark parse tree into the typed AST; the only place that knows the tree's shape.

The builder is split in three: :mod:`build_base` (spans, literals), :mod:`build_rules` (rules and
their clauses) and this module (the declarations at the top level), joined in :class:`ToAst`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from lark import Token, v_args
from lark.tree import Meta

from charter.enums import MaskKind
from charter.syntax import ast
from charter.syntax.build_base import (
    MAX_DURATION_SECONDS,
    SyntaxProblem,
    parse_duration_text,
    unquote,
)
from charter.syntax.build_rules import RuleParts

__all__ = ["MAX_DURATION_SECONDS", "SyntaxProblem", "ToAst", "parse_duration_text", "unquote"]


class ToAst(RuleParts):
    """Lark transformer producing :mod:`charter.syntax.ast` nodes with spans."""

    # ---- top level ------------------------------------------------------------------------
    @v_args(meta=True)
    def start(self, meta: Meta, items: list[Any]) -> ast.Module:
        return ast.Module(path=self.path, items=tuple(items), span=self._meta_span(meta))

    @v_args(meta=True)
    def header(self, meta: Meta, ch: list[Any]) -> ast.Header:
        return ast.Header(name=self._name(ch[0]), extends=ch[1], span=self._meta_span(meta))

    @v_args(meta=True)
    def extends(self, meta: Meta, ch: list[Any]) -> ast.Extends:
        return ast.Extends(
            parent=self._name(ch[0]),
            subject_kind=str(ch[1]),  # type: ignore[arg-type]
            subject=self._name(ch[2]),
            span=self._meta_span(meta),
        )

    def subject_kind(self, ch: list[Token]) -> str:
        return str(ch[0])

    @v_args(meta=True)
    def include(self, meta: Meta, ch: list[Token]) -> ast.Include:
        return ast.Include(path=unquote(ch[0]), span=self._meta_span(meta))

    @v_args(meta=True)
    def agents_from(self, meta: Meta, ch: list[Token]) -> ast.AgentsFrom:
        return ast.AgentsFrom(path=unquote(ch[0]), span=self._meta_span(meta))

    def name_list(self, ch: list[Token]) -> tuple[ast.Name, ...]:
        return tuple(self._name(t) for t in ch)

    @v_args(meta=True)
    def units(self, meta: Meta, ch: list[Any]) -> ast.Units:
        return ast.Units(names=ch[0], span=self._meta_span(meta))

    @v_args(meta=True)
    def mask_decl(self, meta: Meta, ch: list[Any]) -> ast.Mask:
        return ast.Mask(kind=MaskKind.MASK, paths=ch[0], span=self._meta_span(meta))

    @v_args(meta=True)
    def hash_decl(self, meta: Meta, ch: list[Any]) -> ast.Mask:
        return ast.Mask(kind=MaskKind.HASH, paths=ch[0], span=self._meta_span(meta))

    @v_args(meta=True)
    def roles(self, meta: Meta, ch: list[Any]) -> ast.Roles:
        return ast.Roles(names=ch[0], span=self._meta_span(meta))

    @v_args(meta=True)
    def attribute(self, meta: Meta, ch: list[Any]) -> ast.Attribute:
        return ast.Attribute(name=self._name(ch[0]), type=ch[1], span=self._meta_span(meta))

    @v_args(meta=True)
    def context_decl(self, meta: Meta, ch: list[Any]) -> ast.ContextField:
        return ast.ContextField(name=self._name(ch[0]), type=ch[1], span=self._meta_span(meta))

    # ---- named constants and named conditions ---------------------------------------------
    @v_args(meta=True)
    def const_value(self, meta: Meta, ch: list[Any]) -> ast.ConstDecl:
        return ast.ConstDecl(name=self._name(ch[0]), type=ch[1], value=ch[2], span=self._meta_span(meta))

    @v_args(meta=True)
    def const_file(self, meta: Meta, ch: list[Any]) -> ast.ConstDecl:
        return ast.ConstDecl(
            name=self._name(ch[0]), type=ch[1], file=unquote(ch[2]), span=self._meta_span(meta)
        )

    @v_args(meta=True)
    def condition_decl(self, meta: Meta, ch: list[Any]) -> ast.ConditionDecl:
        body = ch[-1]
        params = tuple(p for p in ch[1:-1] if p is not None)
        return ast.ConditionDecl(
            name=self._name(ch[0]),
            params=params,
            body=str(body).rstrip(),
            body_span=self._tok_span(body),
            span=self._meta_span(meta),
        )

    @v_args(meta=True)
    def grant_decl(self, meta: Meta, ch: list[Any]) -> ast.GrantDecl:
        return ast.GrantDecl(name=self._name(ch[0]), clauses=tuple(ch[1:]), span=self._meta_span(meta))

    @v_args(meta=True)
    def cparam(self, meta: Meta, ch: list[Any]) -> ast.CondParam:
        return ast.CondParam(name=self._name(ch[0]), type=ch[1], span=self._meta_span(meta))

    @v_args(meta=True)
    def type_name(self, meta: Meta, ch: list[Token]) -> ast.TypeRef:
        return ast.TypeRef(name=str(ch[0]), span=self._meta_span(meta))

    @v_args(meta=True)
    def type_list(self, meta: Meta, ch: list[Any]) -> ast.TypeRef:
        return ast.TypeRef(name="list", element=ch[0], span=self._meta_span(meta))

    @v_args(meta=True)
    def type_map(self, meta: Meta, ch: list[Any]) -> ast.TypeRef:
        return ast.TypeRef(name="map", element=ch[0], span=self._meta_span(meta))

    @v_args(meta=True)
    def type_set(self, meta: Meta, ch: list[Any]) -> ast.TypeRef:
        return ast.TypeRef(name="set", element=ch[0], span=self._meta_span(meta))

    # ---- agents, tools, groups, signals ---------------------------------------------------
    @v_args(meta=True)
    def agent(self, meta: Meta, ch: list[Any]) -> ast.Agent:
        name = self._name(ch[0])
        roles: tuple[ast.Name, ...] = ()
        parent = None
        attrs: list[ast.AgentAttr] = []
        for kind, payload in ch[1:]:
            if kind == "roles":
                roles = roles + payload
            elif kind == "parent":
                if parent is not None:
                    raise SyntaxProblem("E107", f"agent '{name.value}' has two parents", payload.span)
                parent = payload
            else:
                attrs.append(payload)
        return ast.Agent(
            name=name, roles=roles, parent=parent, attrs=tuple(attrs), span=self._meta_span(meta)
        )

    def agent_roles(self, ch: list[Any]) -> tuple[str, Any]:
        return ("roles", ch[0])

    def agent_parent(self, ch: list[Token]) -> tuple[str, Any]:
        return ("parent", self._name(ch[0]))

    @v_args(meta=True)
    def agent_attr(self, meta: Meta, ch: list[Any]) -> tuple[str, Any]:
        return (
            "attr",
            ast.AgentAttr(name=self._name(ch[0]), value=ch[1], span=self._meta_span(meta)),
        )

    def v_string(self, ch: list[Token]) -> str:
        return unquote(ch[0])

    def v_number(self, ch: list[Token]) -> Decimal:
        return self._number(ch[0])

    def v_true(self, ch: list[Any]) -> bool:
        return True

    def v_false(self, ch: list[Any]) -> bool:
        return False

    def v_list(self, ch: list[Any]) -> tuple[Any, ...]:
        return tuple(c for c in ch if c is not None)

    @v_args(meta=True)
    def tool(self, meta: Meta, ch: list[Any]) -> ast.Tool:
        name = self._name(ch[0])
        category = None
        tags: tuple[ast.Name, ...] = ()
        args: list[ast.ToolArg] = []
        results: list[ast.ToolResult] = []
        for kind, payload in ch[1:]:
            if kind == "category":
                if category is not None:
                    raise SyntaxProblem(
                        "E107",
                        f"tool '{name.value}' has two categories",
                        payload.span,
                        "a tool has one category; use tags for more labels",
                    )
                category = payload
            elif kind == "tags":
                tags = tags + payload
            elif kind == "result":
                results.append(payload)
            else:
                args.append(payload)
        return ast.Tool(
            name=name,
            category=category,
            tags=tags,
            args=tuple(args),
            results=tuple(results),
            span=self._meta_span(meta),
        )

    def tool_category(self, ch: list[Token]) -> tuple[str, Any]:
        return ("category", self._name(ch[0]))

    def tool_tags(self, ch: list[Any]) -> tuple[str, Any]:
        return ("tags", ch[0])

    @v_args(meta=True)
    def tool_arg(self, meta: Meta, ch: list[Any]) -> tuple[str, Any]:
        return (
            "arg",
            ast.ToolArg(
                name=self._name(ch[0]),
                type=ch[1],
                secret=ch[2] is not None,
                span=self._meta_span(meta),
            ),
        )

    @v_args(meta=True)
    def tool_result(self, meta: Meta, ch: list[Any]) -> tuple[str, Any]:
        return (
            "result",
            ast.ToolResult(
                name=self._name(ch[0]),
                type=ch[1],
                secret=ch[2] is not None,
                span=self._meta_span(meta),
            ),
        )

    @v_args(meta=True)
    def group(self, meta: Meta, ch: list[Any]) -> ast.Group:
        return ast.Group(name=self._name(ch[0]), members=ch[1], span=self._meta_span(meta))

    @v_args(meta=True)
    def signal(self, meta: Meta, ch: list[Any]) -> ast.Signal:
        source = None
        clears = False
        for kind, payload in ch[1:]:
            if kind == "from":
                source = payload
            else:
                clears = True
        return ast.Signal(name=self._name(ch[0]), source=source, clears=clears, span=self._meta_span(meta))

    def signal_source(self, ch: list[Token]) -> tuple[str, Any]:
        return ("from", self._name(ch[0]))

    def signal_clears(self, ch: list[Any]) -> tuple[str, Any]:
        return ("clears", True)

    @v_args(meta=True)
    def rank(self, meta: Meta, ch: list[Token]) -> ast.Rank:
        return ast.Rank(names=tuple(self._name(t) for t in ch), span=self._meta_span(meta))

    @v_args(meta=True)
    def stops(self, meta: Meta, ch: list[Any]) -> ast.Stops:
        operators = None
        resume = None
        for kind, payload in ch:
            if kind == "operators":
                operators = payload
            else:
                resume = payload
        return ast.Stops(operators=operators, resume_requires=resume, span=self._meta_span(meta))

    def stops_operators(self, ch: list[Token]) -> tuple[str, Any]:
        return ("operators", self._name(ch[0]))

    def stops_resume(self, ch: list[Token]) -> tuple[str, Any]:
        return ("resume", self._int(ch[0]))

    @v_args(meta=True)
    def escalation(self, meta: Meta, ch: list[Any]) -> ast.Escalation:
        steps = tuple(c for c in ch[1:] if isinstance(c, ast.EscalationStep))
        final = ch[-1] if ch and isinstance(ch[-1], str) else None
        return ast.Escalation(name=self._name(ch[0]), steps=steps, final=final, span=self._meta_span(meta))

    @v_args(meta=True)
    def esc_step(self, meta: Meta, ch: list[Any]) -> ast.EscalationStep:
        timeout = self._duration(ch[1]) if ch[1] is not None else None
        return ast.EscalationStep(target=self._name(ch[0]), timeout=timeout, span=self._meta_span(meta))

    def esc_final(self, ch: list[Any]) -> str:
        return str(ch[0])

    def outcome(self, ch: list[Token]) -> str:
        return str(ch[0])

    # ---- rules ----------------------------------------------------------------------------
