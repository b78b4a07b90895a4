"""The AST builder's rule half: rules, their clauses, selectors, windows, triggers and outcomes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from lark import Token, v_args
from lark.tree import Meta

from charter.enums import ActionKind, Calendar, Mode, RuleKind, Scope, TriggerKind
from charter.syntax import ast
from charter.syntax.build_base import AstBase, unquote


class RuleParts(AstBase):
    """Transformer methods for rules and everything inside them."""

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
    def c_amount(self, meta: Meta, ch: list[Token]) -> ast.AmountClause:
        tok = ch[0]
        return ast.AmountClause(
            text=str(tok).rstrip(), text_span=self._tok_span(tok), span=self._meta_span(meta)
        )

    @v_args(meta=True)
    def c_param(self, meta: Meta, ch: list[Any]) -> ast.ParamClause:
        return ast.ParamClause(name=self._name(ch[0]), type=ch[1], default=ch[2], span=self._meta_span(meta))

    def _grant_cel(self, meta: Meta, kind: str, tok: Token) -> ast.GrantCelClause:
        return ast.GrantCelClause(
            clause=kind,  # type: ignore[arg-type]
            text=str(tok).rstrip(),
            text_span=self._tok_span(tok),
            span=self._meta_span(meta),
        )

    @v_args(meta=True)
    def c_covers(self, meta: Meta, ch: list[Token]) -> ast.GrantCelClause:
        return self._grant_cel(meta, "covers", ch[0])

    @v_args(meta=True)
    def c_bound(self, meta: Meta, ch: list[Token]) -> ast.GrantCelClause:
        return self._grant_cel(meta, "bound", ch[0])

    @v_args(meta=True)
    def c_uses(self, meta: Meta, ch: list[Token]) -> ast.GrantCelClause:
        return self._grant_cel(meta, "uses", ch[0])

    @v_args(meta=True)
    def c_signal(self, meta: Meta, ch: list[Any]) -> ast.SignalClause:
        where = str(ch[1]).rstrip() if ch[1] is not None else None
        where_span = self._tok_span(ch[1]) if ch[1] is not None else self._meta_span(meta)
        return ast.SignalClause(
            kind=self._name(ch[0]), where=where, where_span=where_span, span=self._meta_span(meta)
        )

    @v_args(meta=True)
    def c_after(self, meta: Meta, ch: list[Any]) -> ast.SequenceClause:
        where, where_span = self._where(meta, ch[2])
        return ast.SequenceClause(
            clause="after",
            event=ch[0],
            within=ch[1],
            where=where,
            where_span=where_span,
            span=self._meta_span(meta),
        )

    @v_args(meta=True)
    def c_before(self, meta: Meta, ch: list[Any]) -> ast.SequenceClause:
        where, where_span = self._where(meta, ch[1])
        return ast.SequenceClause(
            clause="before", event=ch[0], where=where, where_span=where_span, span=self._meta_span(meta)
        )

    def _where(self, meta: Meta, tok: Token | None) -> tuple[str | None, Any]:
        """The text and span of a history clause's ``where`` condition (None: it has none)."""
        if tok is None:
            return None, self._meta_span(meta)
        return str(tok).rstrip(), self._tok_span(tok)

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
    def c_redeem(self, meta: Meta, ch: list[Token]) -> ast.DurationClause:
        return ast.DurationClause(
            clause="redeem within", duration=self._duration(ch[0]), span=self._meta_span(meta)
        )

    @v_args(meta=True)
    def c_stop(self, meta: Meta, ch: list[Any]) -> ast.ScopeClause:
        return ast.ScopeClause(clause="stop", scope=Scope(ch[0]), span=self._meta_span(meta))

    @v_args(meta=True)
    def c_scope(self, meta: Meta, ch: list[Any]) -> ast.ScopeClause:
        by = self._name(ch[1]) if len(ch) > 1 and ch[1] is not None else None
        return ast.ScopeClause(clause="scope", scope=Scope(ch[0]), by=by, span=self._meta_span(meta))

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
    def t_denied(self, meta: Meta, ch: list[Token]) -> ast.Trigger:
        return self._trigger(meta, TriggerKind.DENIED, Decimal(self._int(ch[0])), within=ch[1])

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
        fields = ch[1] if len(ch) > 1 and ch[1] is not None else ()
        return ast.OutcomeSpec(kind="label", labels=ch[0], fields=fields, span=self._meta_span(meta))
