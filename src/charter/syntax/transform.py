"""Turns the Lark parse tree into the typed AST; the only place that knows the tree's shape."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from lark import Token, Transformer, v_args
from lark.tree import Meta

from charter.diagnostics import Span
from charter.enums import ActionKind, Calendar, Mode, RuleKind, Scope, TriggerKind
from charter.syntax import ast

_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: Longest duration accepted anywhere (10 years); longer ones are a typo (documented in
#: docs/diagnostics.md, E105).
MAX_DURATION_SECONDS = 3650 * 86400


class SyntaxProblem(Exception):
    """A semantic problem found while building the AST (bad number, duplicate clause...)."""

    def __init__(self, code: str, message: str, span: Span, help: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.span = span
        self.help = help


def parse_duration_text(text: str) -> float:
    """Seconds in a duration literal like ``1h30m``."""
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))


def unquote(text: str) -> str:
    """The value of a double-quoted string literal."""
    body = text[1:-1]
    out = []
    i = 0
    escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "r": "\r"}
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            out.append(escapes.get(body[i + 1], body[i + 1]))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


class ToAst(Transformer[Token, Any]):
    """Lark transformer producing :mod:`charter.syntax.ast` nodes with spans."""

    def __init__(self, path: str):
        super().__init__(visit_tokens=False)
        self.path = path

    # ---- spans ----------------------------------------------------------------------------
    def _tok_span(self, tok: Token) -> Span:
        return Span(
            self.path,
            tok.line or 1,
            tok.column or 1,
            tok.end_line or tok.line or 1,
            tok.end_column or tok.column or 1,
            tok.start_pos or 0,
            tok.end_pos or 0,
        )

    def _meta_span(self, meta: Meta) -> Span:
        if getattr(meta, "empty", True):
            return Span(self.path, 1, 1, 1, 1)
        return Span(
            self.path,
            meta.line,
            meta.column,
            meta.end_line,
            meta.end_column,
            meta.start_pos,
            meta.end_pos,
        )

    def _name(self, tok: Token) -> ast.Name:
        return ast.Name(value=str(tok), span=self._tok_span(tok))

    def _duration(self, tok: Token) -> ast.Duration:
        text = str(tok)
        seconds = parse_duration_text(text)
        if seconds <= 0:
            raise SyntaxProblem(
                "E105",
                f"the duration {text} is zero",
                self._tok_span(tok),
                "use a positive duration such as 30s, 5m or 4h",
            )
        if seconds > MAX_DURATION_SECONDS:
            raise SyntaxProblem(
                "E105",
                f"the duration {text} is too long",
                self._tok_span(tok),
                f"durations go up to {MAX_DURATION_SECONDS // 86400}d (10 years)",
            )
        return ast.Duration(text=text, seconds=seconds, span=self._tok_span(tok))

    def _number(self, tok: Token) -> Decimal:
        try:
            return Decimal(str(tok).replace("_", ""))
        except InvalidOperation as exc:  # pragma: no cover - the lexer only lets digits through
            raise SyntaxProblem("E104", f"'{tok}' is not a number", self._tok_span(tok)) from exc

    def _int(self, tok: Token) -> int:
        text = str(tok).replace("_", "")
        if len(text) > 18:
            raise SyntaxProblem(
                "E104",
                f"the number {tok} is too large",
                self._tok_span(tok),
                "use a number below 10^18",
            )
        return int(text)

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
    def roles(self, meta: Meta, ch: list[Any]) -> ast.Roles:
        return ast.Roles(names=ch[0], span=self._meta_span(meta))

    @v_args(meta=True)
    def attribute(self, meta: Meta, ch: list[Any]) -> ast.Attribute:
        return ast.Attribute(name=self._name(ch[0]), type=ch[1], span=self._meta_span(meta))

    @v_args(meta=True)
    def context_decl(self, meta: Meta, ch: list[Any]) -> ast.ContextField:
        return ast.ContextField(name=self._name(ch[0]), type=ch[1], span=self._meta_span(meta))

    @v_args(meta=True)
    def type_name(self, meta: Meta, ch: list[Token]) -> ast.TypeRef:
        return ast.TypeRef(name=str(ch[0]), span=self._meta_span(meta))

    @v_args(meta=True)
    def type_list(self, meta: Meta, ch: list[Any]) -> ast.TypeRef:
        return ast.TypeRef(name="list", element=ch[0], span=self._meta_span(meta))

    @v_args(meta=True)
    def type_map(self, meta: Meta, ch: list[Any]) -> ast.TypeRef:
        return ast.TypeRef(name="map", element=ch[0], span=self._meta_span(meta))

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
            else:
                args.append(payload)
        return ast.Tool(name=name, category=category, tags=tags, args=tuple(args), span=self._meta_span(meta))

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
    @v_args(meta=True)
    def rule(self, meta: Meta, ch: list[Any]) -> ast.Rule:
        kind = RuleKind(str(ch[0]))
        return ast.Rule(kind=kind, id=self._name(ch[1]), clauses=tuple(ch[2:]), span=self._meta_span(meta))

    def rule_kind(self, ch: list[Token]) -> str:
        return str(ch[0])

    @v_args(meta=True)
    def approval_rule(self, meta: Meta, ch: list[Any]) -> ast.Rule:
        return ast.Rule(
            kind=RuleKind.APPROVAL,
            id=self._name(ch[0]),
            clauses=tuple(ch[1:]),
            span=self._meta_span(meta),
        )

    @v_args(meta=True)
    def result_rule(self, meta: Meta, ch: list[Any]) -> ast.Rule:
        return ast.Rule(
            kind=RuleKind.RESULT,
            id=self._name(ch[0]),
            clauses=tuple(ch[1:]),
            span=self._meta_span(meta),
        )

    # ---- clauses --------------------------------------------------------------------------
    @v_args(meta=True)
    def c_actor(self, meta: Meta, ch: list[Any]) -> ast.ActorClause:
        return ast.ActorClause(selector=ch[0], span=self._meta_span(meta))

    @v_args(meta=True)
    def c_action(self, meta: Meta, ch: list[Any]) -> ast.ActionClause:
        return ast.ActionClause(selector=ch[0], span=self._meta_span(meta))

    def _condition(self, meta: Meta, kind: str, tok: Token) -> ast.ConditionClause:
        text = str(tok).rstrip()
        span = self._tok_span(tok)
        return ast.ConditionClause(
            clause=kind,  # type: ignore[arg-type]
            text=text,
            text_span=span,
            span=self._meta_span(meta),
        )

    @v_args(meta=True)
    def c_when(self, meta: Meta, ch: list[Token]) -> ast.ConditionClause:
        return self._condition(meta, "when", ch[0])

    @v_args(meta=True)
    def c_unless(self, meta: Meta, ch: list[Token]) -> ast.ConditionClause:
        return self._condition(meta, "unless", ch[0])

    @v_args(meta=True)
    def c_signal(self, meta: Meta, ch: list[Any]) -> ast.SignalClause:
        where = str(ch[1]).rstrip() if ch[1] is not None else None
        where_span = self._tok_span(ch[1]) if ch[1] is not None else self._meta_span(meta)
        return ast.SignalClause(
            kind=self._name(ch[0]), where=where, where_span=where_span, span=self._meta_span(meta)
        )

    @v_args(meta=True)
    def c_after(self, meta: Meta, ch: list[Any]) -> ast.SequenceClause:
        return ast.SequenceClause(clause="after", event=ch[0], within=ch[1], span=self._meta_span(meta))

    @v_args(meta=True)
    def c_before(self, meta: Meta, ch: list[Any]) -> ast.SequenceClause:
        return ast.SequenceClause(clause="before", event=ch[0], span=self._meta_span(meta))

    @v_args(meta=True)
    def c_reason(self, meta: Meta, ch: list[Token]) -> ast.ReasonClause:
        return ast.ReasonClause(text=unquote(ch[0]), span=self._meta_span(meta))

    @v_args(meta=True)
    def c_mode(self, meta: Meta, ch: list[Any]) -> ast.ModeClause:
        return ast.ModeClause(mode=Mode(ch[0]), span=self._meta_span(meta))

    def mode(self, ch: list[Token]) -> str:
        return str(ch[0])

    def _outcome_clause(self, meta: Meta, kind: str, spec: ast.OutcomeSpec) -> ast.OutcomeClause:
        return ast.OutcomeClause(clause=kind, outcome=spec, span=self._meta_span(meta))  # type: ignore[arg-type]

    @v_args(meta=True)
    def c_on_error(self, meta: Meta, ch: list[Any]) -> ast.OutcomeClause:
        return self._outcome_clause(meta, "on error", ch[0])

    @v_args(meta=True)
    def c_on_timeout(self, meta: Meta, ch: list[Any]) -> ast.OutcomeClause:
        return self._outcome_clause(meta, "on timeout", ch[0])

    @v_args(meta=True)
    def c_on_exceed(self, meta: Meta, ch: list[Any]) -> ast.OutcomeClause:
        return self._outcome_clause(meta, "on exceed", ch[0])

    @v_args(meta=True)
    def c_then(self, meta: Meta, ch: list[Any]) -> ast.OutcomeClause:
        return self._outcome_clause(meta, "then", ch[0])

    def _name_clause(self, meta: Meta, kind: str, tok: Token) -> ast.NameClause:
        return ast.NameClause(clause=kind, name=self._name(tok), span=self._meta_span(meta))  # type: ignore[arg-type]

    @v_args(meta=True)
    def c_approvers(self, meta: Meta, ch: list[Token]) -> ast.NameClause:
        return self._name_clause(meta, "approvers", ch[0])

    @v_args(meta=True)
    def c_to(self, meta: Meta, ch: list[Token]) -> ast.NameClause:
        return self._name_clause(meta, "to", ch[0])

    @v_args(meta=True)
    def c_severity(self, meta: Meta, ch: list[Token]) -> ast.NameClause:
        return self._name_clause(meta, "severity", ch[0])

    @v_args(meta=True)
    def c_quorum(self, meta: Meta, ch: list[Token]) -> ast.NumberClause:
        return ast.NumberClause(value=self._int(ch[0]), span=self._meta_span(meta))

    @v_args(meta=True)
    def c_separation(self, meta: Meta, ch: list[Any]) -> ast.SwitchClause:
        return ast.SwitchClause(on=ch[0] == "on", span=self._meta_span(meta))

    def switch(self, ch: list[Token]) -> str:
        return str(ch[0])

    @v_args(meta=True)
    def c_expires(self, meta: Meta, ch: list[Token]) -> ast.DurationClause:
        return ast.DurationClause(duration=self._duration(ch[0]), span=self._meta_span(meta))

    @v_args(meta=True)
    def c_stop(self, meta: Meta, ch: list[Any]) -> ast.ScopeClause:
        return ast.ScopeClause(clause="stop", scope=Scope(ch[0]), span=self._meta_span(meta))

    @v_args(meta=True)
    def c_scope(self, meta: Meta, ch: list[Any]) -> ast.ScopeClause:
        return ast.ScopeClause(clause="scope", scope=Scope(ch[0]), span=self._meta_span(meta))

    def scope(self, ch: list[Token]) -> str:
        return str(ch[0])

    @v_args(meta=True)
    def c_limit(self, meta: Meta, ch: list[Any]) -> ast.LimitClause:
        unit = self._name(ch[1]) if ch[1] is not None else None
        return ast.LimitClause(
            amount=self._number(ch[0]), unit=unit, window=ch[2], span=self._meta_span(meta)
        )

    @v_args(meta=True)
    def window_calendar(self, meta: Meta, ch: list[Any]) -> ast.Window:
        return ast.Window(calendar=Calendar(ch[0]), span=self._meta_span(meta))

    def calendar(self, ch: list[Token]) -> str:
        return str(ch[0])

    @v_args(meta=True)
    def window_rolling(self, meta: Meta, ch: list[Token]) -> ast.Window:
        return ast.Window(rolling=self._duration(ch[0]), span=self._meta_span(meta))

    @v_args(meta=True)
    def c_timezone(self, meta: Meta, ch: list[Token]) -> ast.TimezoneClause:
        return ast.TimezoneClause(tz=unquote(ch[0]), span=self._meta_span(meta))

    @v_args(meta=True)
    def c_trigger(self, meta: Meta, ch: list[Any]) -> ast.TriggerClause:
        return ast.TriggerClause(trigger=ch[0], span=self._meta_span(meta))

    # ---- selectors ------------------------------------------------------------------------
    @v_args(meta=True)
    def actor_any(self, meta: Meta, ch: list[Any]) -> ast.ActorSel:
        return ast.ActorSel(by="any", span=self._meta_span(meta))

    @v_args(meta=True)
    def actor_roles(self, meta: Meta, ch: list[Any]) -> ast.ActorSel:
        return ast.ActorSel(by="role", names=ch[0], span=self._meta_span(meta))

    @v_args(meta=True)
    def actor_agents(self, meta: Meta, ch: list[Any]) -> ast.ActorSel:
        return ast.ActorSel(by="agent", names=ch[0], span=self._meta_span(meta))

    def _action(self, meta: Meta, kind: ActionKind | None, target: Any) -> ast.ActionSel:
        return ast.ActionSel(kind=kind, target=target, span=self._meta_span(meta))

    @v_args(meta=True)
    def act_any(self, meta: Meta, ch: list[Any]) -> ast.ActionSel:
        return self._action(meta, None, None)

    @v_args(meta=True)
    def act_call(self, meta: Meta, ch: list[Any]) -> ast.ActionSel:
        return self._action(meta, ActionKind.CALL, ch[0])

    @v_args(meta=True)
    def act_delegate(self, meta: Meta, ch: list[Any]) -> ast.ActionSel:
        return self._action(meta, ActionKind.DELEGATE, ch[0])

    @v_args(meta=True)
    def act_model(self, meta: Meta, ch: list[Any]) -> ast.ActionSel:
        return self._action(meta, ActionKind.MODEL, ch[0])

    @v_args(meta=True)
    def act_message(self, meta: Meta, ch: list[Any]) -> ast.ActionSel:
        return self._action(meta, ActionKind.MESSAGE, ch[0])

    @v_args(meta=True)
    def target_any(self, meta: Meta, ch: list[Any]) -> ast.TargetSel:
        return ast.TargetSel(by="any", span=self._meta_span(meta))

    @v_args(meta=True)
    def target_names(self, meta: Meta, ch: list[Any]) -> ast.TargetSel:
        return ast.TargetSel(by="name", names=ch[0], span=self._meta_span(meta))

    @v_args(meta=True)
    def target_tagged(self, meta: Meta, ch: list[Any]) -> ast.TargetSel:
        return ast.TargetSel(by="tag", names=ch[0], span=self._meta_span(meta))

    @v_args(meta=True)
    def target_category(self, meta: Meta, ch: list[Any]) -> ast.TargetSel:
        return ast.TargetSel(by="category", names=ch[0], span=self._meta_span(meta))

    @v_args(meta=True)
    def target_roles(self, meta: Meta, ch: list[Any]) -> ast.TargetSel:
        return ast.TargetSel(by="role", names=ch[0], span=self._meta_span(meta))

    @v_args(meta=True)
    def ev_call(self, meta: Meta, ch: list[Any]) -> ast.EventSel:
        return ast.EventSel(by="call", target=ch[0], span=self._meta_span(meta))

    @v_args(meta=True)
    def ev_delegate(self, meta: Meta, ch: list[Any]) -> ast.EventSel:
        return ast.EventSel(by="delegate", target=ch[0], span=self._meta_span(meta))

    @v_args(meta=True)
    def ev_labelled(self, meta: Meta, ch: list[Any]) -> ast.EventSel:
        return ast.EventSel(by="labelled", labels=ch[0], span=self._meta_span(meta))

    @v_args(meta=True)
    def within_steps(self, meta: Meta, ch: list[Token]) -> ast.Within:
        return ast.Within(steps=self._int(ch[0]), span=self._meta_span(meta))

    @v_args(meta=True)
    def within_time(self, meta: Meta, ch: list[Token]) -> ast.Within:
        return ast.Within(duration=self._duration(ch[0]), span=self._meta_span(meta))

    # ---- triggers and outcomes --------------------------------------------------------------
    def _trigger(
        self,
        meta: Meta,
        kind: TriggerKind,
        threshold: Decimal,
        unit: Token | None = None,
        within: Token | None = None,
    ) -> ast.Trigger:
        return ast.Trigger(
            kind=kind,
            threshold=threshold,
            unit=self._name(unit) if unit is not None else None,
            within=self._duration(within) if within is not None else None,
            span=self._meta_span(meta),
        )

    @v_args(meta=True)
    def t_repeat(self, meta: Meta, ch: list[Token]) -> ast.Trigger:
        return self._trigger(meta, TriggerKind.REPEAT, Decimal(self._int(ch[0])), within=ch[1])

    @v_args(meta=True)
    def t_depth(self, meta: Meta, ch: list[Token]) -> ast.Trigger:
        return self._trigger(meta, TriggerKind.DEPTH, Decimal(self._int(ch[0])))

    @v_args(meta=True)
    def t_pingpong(self, meta: Meta, ch: list[Token]) -> ast.Trigger:
        return self._trigger(meta, TriggerKind.PINGPONG, Decimal(self._int(ch[0])), within=ch[1])

    @v_args(meta=True)
    def t_velocity(self, meta: Meta, ch: list[Token]) -> ast.Trigger:
        return self._trigger(meta, TriggerKind.VELOCITY, self._number(ch[0]), ch[1], ch[2])

    @v_args(meta=True)
    def t_fanout(self, meta: Meta, ch: list[Token]) -> ast.Trigger:
        return self._trigger(meta, TriggerKind.FANOUT, Decimal(self._int(ch[0])), within=ch[1])

    @v_args(meta=True)
    def o_allow(self, meta: Meta, ch: list[Any]) -> ast.OutcomeSpec:
        return ast.OutcomeSpec(kind="allow", span=self._meta_span(meta))

    @v_args(meta=True)
    def o_deny(self, meta: Meta, ch: list[Any]) -> ast.OutcomeSpec:
        return ast.OutcomeSpec(kind="deny", span=self._meta_span(meta))

    @v_args(meta=True)
    def o_ignore(self, meta: Meta, ch: list[Any]) -> ast.OutcomeSpec:
        return ast.OutcomeSpec(kind="ignore", span=self._meta_span(meta))

    @v_args(meta=True)
    def o_halt(self, meta: Meta, ch: list[Any]) -> ast.OutcomeSpec:
        scope = Scope(ch[0]) if ch and ch[0] is not None else None
        return ast.OutcomeSpec(kind="halt", scope=scope, span=self._meta_span(meta))

    @v_args(meta=True)
    def o_escalate(self, meta: Meta, ch: list[Any]) -> ast.OutcomeSpec:
        return ast.OutcomeSpec(kind="escalate", span=self._meta_span(meta))

    @v_args(meta=True)
    def o_approval(self, meta: Meta, ch: list[Any]) -> ast.OutcomeSpec:
        group = self._name(ch[0]) if ch and ch[0] is not None else None
        return ast.OutcomeSpec(kind="require_approval", group=group, span=self._meta_span(meta))

    @v_args(meta=True)
    def o_label(self, meta: Meta, ch: list[Any]) -> ast.OutcomeSpec:
        return ast.OutcomeSpec(kind="label", labels=ch[0], span=self._meta_span(meta))
