"""Compiler stage 1 (resolve): symbol table, clause checks per rule kind, unknown names, duplicates."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from charter.compiler.load import Loaded
from charter.diagnostics import Code, Diagnostic, Span, did_you_mean, error
from charter.enums import MaskKind, RuleKind
from charter.syntax import ast

COMMON = {"actor", "action", "when", "unless", "reason", "mode", "on error"}
MATCHING = COMMON | {"signal", "after", "before"}
#: Argument types a mask path may go inside (``args.card.number``); masking a list edits each element.
_NESTED_TYPES = {"map", "list", "dyn", "any"}

#: Which clauses each rule kind accepts, and which it requires.
ALLOWED: dict[RuleKind, set[str]] = {
    RuleKind.PERMIT: MATCHING,
    RuleKind.FORBID: MATCHING,
    RuleKind.HALT: MATCHING | {"stop"},
    RuleKind.ESCALATE: MATCHING | {"to", "severity"},
    RuleKind.APPROVAL: MATCHING
    | {"approvers", "quorum", "separation of duties", "expires after", "redeem within", "on timeout"},
    RuleKind.BUDGET: COMMON | {"scope", "limit", "timezone", "on exceed", "stop", "to", "amount"},
    RuleKind.RATE: COMMON | {"scope", "limit", "on exceed", "stop", "to"},
    RuleKind.TRIPWIRE: COMMON - {"on error"} | {"trigger", "then", "to", "stop", "amount"},
    RuleKind.RESULT: COMMON | {"then", "to", "stop"},
}
REQUIRED: dict[RuleKind, tuple[str, ...]] = {
    RuleKind.APPROVAL: ("approvers",),
    RuleKind.BUDGET: ("scope", "limit"),
    RuleKind.RATE: ("scope", "limit"),
    RuleKind.TRIPWIRE: ("trigger",),
    RuleKind.RESULT: ("then",),
}
REPEATABLE = {"when", "unless", "signal", "after", "before"}

#: The order clauses are listed in (docs/language.md, "Which clauses each kind accepts").
CLAUSE_ORDER = (
    "actor",
    "action",
    "when",
    "unless",
    "reason",
    "mode",
    "on error",
    "signal",
    "after",
    "before",
    "stop",
    "to",
    "severity",
    "approvers",
    "quorum",
    "separation of duties",
    "expires after",
    "redeem within",
    "on timeout",
    "scope",
    "limit",
    "amount",
    "timezone",
    "on exceed",
    "trigger",
    "then",
)


def clause_table() -> str:
    """The Markdown table of which clauses each rule kind accepts and requires, from ALLOWED and
    REQUIRED (docs/language.md embeds it; tests/unit/test_docs_from_code.py keeps them equal)."""
    kinds = list(RuleKind)
    assert set(CLAUSE_ORDER) == set().union(*ALLOWED.values()), "a clause is missing from CLAUSE_ORDER"

    def cell(kind: RuleKind, clause: str) -> str:
        if clause in REQUIRED.get(kind, ()):
            return "**R**"
        return "✓" if clause in ALLOWED[kind] else "—"

    rows: list[tuple[list[str], list[str]]] = []
    for clause in CLAUSE_ORDER:
        cells = [cell(k, clause) for k in kinds]
        if rows and rows[-1][1] == cells:
            rows[-1][0].append(clause)
        else:
            rows.append(([clause], cells))
    out = [
        "| clause | " + " | ".join(k.value for k in kinds) + " |",
        "|---" * (len(kinds) + 1) + "|",
    ]
    for clauses, cells in rows:
        out.append("| " + ", ".join(f"`{c}`" for c in clauses) + " | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


_REQUIRED_HELP = {
    "approvers": "name the group that must approve, e.g. approvers treasury",
    "scope": "say what the limit is counted per, e.g. scope agent",
    "limit": "give the limit, e.g. limit 50 USD per day",
    "trigger": "say what trips it, e.g. trigger repeated call more than 5 times within 2m",
    "then": "say what happens, e.g. then halt agent",
}


@dataclass
class AgentDecl:
    """An agent from the policy or an inventory."""

    id: str
    roles: list[str]
    parent: str | None
    attrs: dict[str, Any]
    span: Span
    #: the inventory file it came from (None when declared in a policy file)
    from_inventory: str | None = None


@dataclass
class RuleEntry:
    """A rule with the module it came from and its clauses grouped by name."""

    rule: ast.Rule
    module: ast.Module
    extends: ast.Extends | None
    clauses: dict[str, list[Any]]

    def one(self, name: str) -> Any:
        """The single clause of that name, or None."""
        found = self.clauses.get(name)
        return found[0] if found else None


@dataclass
class Symbols:
    """Everything a policy declares, across its files."""

    module_names: dict[str, Span] = field(default_factory=dict)
    units: dict[str, Span] = field(default_factory=dict)
    roles: dict[str, Span] = field(default_factory=dict)
    attributes: dict[str, ast.Attribute] = field(default_factory=dict)
    context: dict[str, ast.ContextField] = field(default_factory=dict)
    agents: dict[str, AgentDecl] = field(default_factory=dict)
    tools: dict[str, ast.Tool] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)
    group_spans: dict[str, Span] = field(default_factory=dict)
    signals: dict[str, ast.Signal] = field(default_factory=dict)
    rank: ast.Rank | None = None
    stops: ast.Stops | None = None
    escalations: dict[str, ast.Escalation] = field(default_factory=dict)
    rules: list[RuleEntry] = field(default_factory=list)
    tags: dict[str, list[str]] = field(default_factory=dict)
    categories: dict[str, list[str]] = field(default_factory=dict)
    used: set[tuple[str, str]] = field(default_factory=set)
    #: ``mask``/``hash`` declarations, and the argument paths they name once checked (path -> kind, span)
    mask_decls: list[ast.Mask] = field(default_factory=list)
    masks: dict[tuple[str, ...], tuple[MaskKind, Span]] = field(default_factory=dict)
    #: named constants and named conditions (docs/language.md, "Constants and named conditions")
    constants: dict[str, ast.ConstDecl] = field(default_factory=dict)
    conditions: dict[str, ast.ConditionDecl] = field(default_factory=dict)
    #: the values of ``const NAME: T from "FILE"``, read by the load stage, by constant name
    constant_files: dict[str, Any] = field(default_factory=dict)
    #: run grant kinds (docs/language.md, "Run grants"), checked by charter.compiler.grants
    grants: dict[str, ast.GrantDecl] = field(default_factory=dict)

    @property
    def signal_sources(self) -> set[str]:
        """Every declared signal source."""
        return {s.source.value for s in self.signals.values() if s.source is not None}


class Resolver:
    """Builds the symbol table and checks names; collects diagnostics instead of raising."""

    def __init__(self, loaded: Loaded):
        self.loaded = loaded
        self.sym = Symbols()
        self.diags: list[Diagnostic] = []

    # ---- helpers ----------------------------------------------------------------------------
    def _dup(self, what: str, name: ast.Name, first: Span) -> None:
        self.diags.append(
            error(
                Code.E202_DUPLICATE,
                f"{what} '{name.value}' is declared twice",
                name.span,
                f"the first declaration is at {first}",
            )
        )

    def _declare(self, table: dict[str, Any], what: str, name: ast.Name, value: Any) -> None:
        if name.value in table:
            prev = table[name.value]
            first = prev if isinstance(prev, Span) else getattr(prev, "span", name.span)
            self._dup(what, name, first)
            return
        table[name.value] = value

    def unknown(self, what: str, name: ast.Name, known: Iterable[str], extra: str | None = None) -> None:
        """Report an unknown name with a did-you-mean hint."""
        hint = did_you_mean(name.value, known) or extra
        self.diags.append(error(Code.E201_UNKNOWN_NAME, f"unknown {what} '{name.value}'", name.span, hint))

    def check(self, what: str, name: ast.Name, table: Iterable[str], extra: str | None = None) -> bool:
        """True if the name is known; otherwise report it."""
        known = table if isinstance(table, (dict, set, frozenset)) else set(table)
        if name.value in known:
            self.sym.used.add((what, name.value))
            return True
        self.unknown(what, name, known, extra)
        return False

    # ---- declarations -----------------------------------------------------------------------
    def declarations(self) -> None:
        """First pass: collect every declaration of every module."""
        s = self.sym
        for module in self.loaded.modules:
            headers = [i for i in module.items if isinstance(i, ast.Header)]
            for extra_header in headers[1:]:
                self.diags.append(
                    error(Code.E206_BAD_HEADER, "a file has at most one policy header", extra_header.span)
                )
            if headers and module.items[0] is not headers[0]:
                self.diags.append(
                    error(
                        Code.E206_BAD_HEADER,
                        "the policy header must come first in the file",
                        headers[0].span,
                        "move 'policy ...' to the top of the file",
                    )
                )
            if headers:
                self._declare(s.module_names, "policy", headers[0].name, headers[0].name.span)
            for item in module.items:
                self._declaration(item)
        for inv in self.loaded.inventories:
            span = inv.span or Span.point(inv.path)
            for raw in inv.agents:
                aid = str(raw["id"])
                if aid in s.agents:
                    self._dup("agent", ast.Name(value=aid, span=span), s.agents[aid].span)
                    continue
                roles = raw.get("roles", []) or []
                if isinstance(roles, str):
                    roles = [roles]
                attrs = raw.get("attributes", {}) or {}
                decl = AgentDecl(aid, [str(r) for r in roles], raw.get("parent"), dict(attrs), span)
                decl.from_inventory = inv.path
                s.agents[aid] = decl
            for g, members in inv.groups.items():
                if g in s.groups:
                    self._dup("group", ast.Name(value=g, span=span), s.group_spans[g])
                    continue
                s.groups[g] = members
                s.group_spans[g] = span
        for tool in s.tools.values():
            for tag in tool.tags:
                s.tags.setdefault(tag.value, []).append(tool.name.value)
            if tool.category is not None:
                s.categories.setdefault(tool.category.value, []).append(tool.name.value)

    def _declaration(self, item: ast.Item) -> None:
        s = self.sym
        if isinstance(item, ast.Units):
            for n in item.names:
                self._declare(s.units, "unit", n, n.span)
        elif isinstance(item, ast.Roles):
            for n in item.names:
                self._declare(s.roles, "role", n, n.span)
        elif isinstance(item, ast.Mask):
            s.mask_decls.append(item)
        elif isinstance(item, ast.Attribute):
            self._declare(s.attributes, "attribute", item.name, item)
        elif isinstance(item, ast.ContextField):
            self._declare(s.context, "context field", item.name, item)
        elif isinstance(item, ast.Agent):
            attrs = {a.name.value: a.value for a in item.attrs}
            decl = AgentDecl(
                item.name.value,
                [r.value for r in item.roles],
                item.parent.value if item.parent else None,
                attrs,
                item.name.span,
            )
            self._declare(s.agents, "agent", item.name, decl)
        elif isinstance(item, ast.Tool):
            self._declare(s.tools, "tool", item.name, item)
        elif isinstance(item, ast.Group):
            if item.name.value in s.groups:
                self._dup("group", item.name, s.group_spans[item.name.value])
            else:
                s.groups[item.name.value] = [m.value for m in item.members]
                s.group_spans[item.name.value] = item.name.span
        elif isinstance(item, ast.Signal):
            self._declare(s.signals, "signal", item.name, item)
        elif isinstance(item, ast.Rank):
            if s.rank is not None:
                self.diags.append(
                    error(
                        Code.E202_DUPLICATE,
                        "signal ranking is declared twice",
                        item.span,
                        f"the first ranking is at {s.rank.span}",
                    )
                )
            else:
                s.rank = item
        elif isinstance(item, ast.Stops):
            if s.stops is not None:
                self.diags.append(
                    error(
                        Code.E202_DUPLICATE,
                        "the stops block is declared twice",
                        item.span,
                        f"the first is at {s.stops.span}",
                    )
                )
            else:
                s.stops = item
        elif isinstance(item, ast.Escalation):
            self._declare(s.escalations, "escalation", item.name, item)
        elif isinstance(item, ast.GrantDecl):
            self._declare(s.grants, "grant kind", item.name, item)
        elif isinstance(item, (ast.ConstDecl, ast.ConditionDecl)):
            # One namespace: a condition reads constants and calls conditions by the same kind of name.
            other = s.conditions if isinstance(item, ast.ConstDecl) else s.constants
            if item.name.value in other:
                self._dup("name", item.name, other[item.name.value].name.span)
            elif isinstance(item, ast.ConstDecl):
                self._declare(s.constants, "constant", item.name, item)
            else:
                self._declare(s.conditions, "condition", item.name, item)

    # ---- rules ------------------------------------------------------------------------------
    def rules(self) -> None:
        """Second pass: group each rule's clauses, check them and the names they use."""
        seen: dict[str, Span] = {}
        for module in self.loaded.modules:
            header = next((i for i in module.items if isinstance(i, ast.Header)), None)
            extends = header.extends if header else None
            if extends is not None:
                self.check("policy", extends.parent, self.sym.module_names)
                if extends.subject_kind == "agent":
                    self.check("agent", extends.subject, self.sym.agents)
            for item in module.items:
                if not isinstance(item, ast.Rule):
                    continue
                if item.id.value in seen:
                    self._dup("rule", item.id, seen[item.id.value])
                    continue
                seen[item.id.value] = item.id.span
                entry = self._rule(item, module, extends)
                if entry is not None:
                    self.sym.rules.append(entry)

    def _rule(self, rule: ast.Rule, module: ast.Module, extends: ast.Extends | None) -> RuleEntry | None:
        grouped: dict[str, list[Any]] = {}
        ok = True
        allowed = ALLOWED[rule.kind]
        for clause in rule.clauses:
            name = clause.clause
            if name not in allowed:
                ok = False
                self.diags.append(
                    error(
                        Code.E106_BAD_CLAUSE,
                        f"'{name}' is not allowed in a {rule.kind.value} rule",
                        clause.span,
                        "allowed here: " + ", ".join(sorted(allowed)),
                    )
                )
                continue
            if name in grouped and name not in REPEATABLE:
                ok = False
                self.diags.append(
                    error(
                        Code.E107_DUPLICATE_CLAUSE,
                        f"'{name}' appears twice in rule '{rule.id.value}'",
                        clause.span,
                        f"the first is at {grouped[name][0].span}",
                    )
                )
                continue
            grouped.setdefault(name, []).append(clause)
        for req in REQUIRED.get(rule.kind, ()):
            if req not in grouped:
                ok = False
                helptext = _REQUIRED_HELP.get(req)
                for cond in grouped.get("when", []) + grouped.get("unless", []):
                    if re.search(rf"\s{re.escape(req)}\s", " " + cond.text + " "):
                        helptext = (
                            f"'{req}' is inside the condition on line {cond.span.line}: a condition "
                            f"ends at the end of its line, so start '{req}' on a new line"
                        )
                article = "an" if req[0] in "aeiou" else "a"
                self.diags.append(
                    error(
                        Code.E108_MISSING_CLAUSE,
                        f"{rule.kind.value} rule '{rule.id.value}' needs {article} '{req}' clause",
                        rule.id.span,
                        helptext,
                    )
                )
        entry = RuleEntry(rule, module, extends, grouped)
        self._names(entry)
        return entry if ok else None

    def _target(self, sel: ast.TargetSel | None, delegate: bool = False) -> None:
        s = self.sym
        if sel is None or sel.by == "any":
            return
        for n in sel.names:
            if sel.by == "name":
                if delegate:
                    self.check("agent", n, s.agents)
                else:
                    self.check("tool", n, s.tools, "declare it with: tool NAME { ... }")
            elif sel.by == "tag":
                self.check("tag", n, s.tags, "no declared tool carries this tag")
            elif sel.by == "category":
                self.check("category", n, s.categories, "no declared tool has this category")
            elif sel.by == "role":
                self.check("role", n, s.roles)

    def _names(self, entry: RuleEntry) -> None:
        s = self.sym
        for c in entry.clauses.get("actor", []):
            sel: ast.ActorSel = c.selector
            for n in sel.names:
                if sel.by == "role":
                    self.check("role", n, s.roles)
                else:
                    self.check("agent", n, s.agents)
        for c in entry.clauses.get("action", []):
            asel: ast.ActionSel = c.selector
            self._target(asel.target, delegate=asel.kind is not None and asel.kind.value == "delegate")
        for c in entry.clauses.get("signal", []):
            self.check("signal", c.kind, s.signals, "declare it with: signal KIND { from SOURCE }")
        for name in ("after", "before"):
            for c in entry.clauses.get(name, []):
                ev: ast.EventSel = c.event
                if ev.by == "labelled":
                    continue
                self._target(ev.target, delegate=ev.by == "delegate")
        ap = entry.one("approvers")
        if ap is not None:
            self.check("group", ap.name, s.groups, "declare it with: group NAME { members a, b }")
        to = entry.one("to")
        if to is not None:
            known = set(s.escalations) | set(s.groups)
            self.check("escalation target", to.name, known, "name an escalation chain or a group")
        lim = entry.one("limit")
        if lim is not None and lim.unit is not None and entry.rule.kind is RuleKind.BUDGET:
            self.check("unit", lim.unit, s.units, "declare it with: units NAME")
        trig = entry.one("trigger")
        if trig is not None and trig.trigger.unit is not None:
            self.check("unit", trig.trigger.unit, s.units, "declare it with: units NAME")
        for oname in ("on exceed", "then", "on timeout", "on error"):
            oc = entry.one(oname)
            if oc is not None and oc.outcome.group is not None:
                self.check("group", oc.outcome.group, s.groups)

    def mask_paths(self) -> None:
        """``mask``/``hash`` paths: each names an argument some tool declares (``args.NAME``), and
        goes deeper (``args.NAME.FIELD``) only into a map or list argument."""
        s = self.sym
        arg_types: dict[str, set[str]] = {}
        for tool in s.tools.values():
            for a in tool.args:
                arg_types.setdefault(a.name.value, set()).add(a.type.name)
        for decl in s.mask_decls:
            for n in decl.paths:
                parts = n.value.split(".")
                if parts[0] != "args" or len(parts) < 2:
                    self.diags.append(
                        error(
                            Code.E402_BAD_VALUE,
                            f"{decl.kind.value} path '{n.value}' does not name an argument",
                            n.span,
                            "write args.NAME (or args.NAME.FIELD inside a map or list argument)",
                        )
                    )
                    continue
                arg = ast.Name(value=parts[1], span=n.span)
                if not self.check("argument", arg, arg_types, "no declared tool has it: arg NAME: TYPE"):
                    continue
                if len(parts) > 2 and not arg_types[parts[1]] & _NESTED_TYPES:
                    kinds = " or ".join(sorted(arg_types[parts[1]]))
                    self.diags.append(
                        error(
                            Code.E402_BAD_VALUE,
                            f"args.{parts[1]} is {kinds}: it has no field '{parts[2]}'",
                            n.span,
                            f"{decl.kind.value} args.{parts[1]} edits the whole value",
                        )
                    )
                    continue
                path = tuple(parts[1:])
                if path in s.masks:
                    self._dup(f"{decl.kind.value} path", n, s.masks[path][1])
                    continue
                s.masks[path] = (decl.kind, n.span)

    def other_names(self) -> None:
        """Names used by declarations: agent roles and parents, ranks, stops operators."""
        s = self.sym
        for module in self.loaded.modules:
            for item in module.items:
                if isinstance(item, ast.Agent):
                    for r in item.roles:
                        self.check("role", r, s.roles)
                    if item.parent is not None:
                        self.check("agent", item.parent, s.agents)
        for a in s.agents.values():
            if a.from_inventory is None:
                continue
            for role in a.roles:
                if role not in s.roles:
                    self.unknown(
                        f"role in inventory {a.from_inventory} (agent {a.id})",
                        ast.Name(value=role, span=a.span),
                        s.roles,
                    )
            if a.parent is not None and a.parent not in s.agents:
                self.unknown(
                    f"parent in inventory {a.from_inventory} (agent {a.id})",
                    ast.Name(value=str(a.parent), span=a.span),
                    s.agents,
                )
        if s.rank is not None:
            sources = s.signal_sources
            for n in s.rank.names:
                self.check("signal source", n, sources, "sources are named in signal declarations")
        if s.stops is not None and s.stops.operators is not None:
            self.check("group", s.stops.operators, s.groups)
        # parent cycles
        for a in s.agents.values():
            seen = {a.id}
            cur = a.parent
            while cur is not None and cur in s.agents:
                if cur in seen:
                    self.diags.append(
                        error(
                            Code.E203_INCLUDE_CYCLE,
                            f"agent '{a.id}' is its own ancestor",
                            a.span,
                            "remove one parent link",
                        )
                    )
                    break
                seen.add(cur)
                cur = s.agents[cur].parent


def resolve(loaded: Loaded) -> tuple[Symbols, list[Diagnostic]]:
    """Run the resolve stage."""
    r = Resolver(loaded)
    r.sym.constant_files = dict(loaded.constant_files)
    r.declarations()
    r.other_names()
    r.mask_paths()
    r.rules()
    return r.sym, r.diags
