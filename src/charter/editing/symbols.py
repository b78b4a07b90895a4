"""The symbol index: every declaration and every reference to it, with spans, from the typed AST.

Declarations and references are found by *extractors*, one per AST node type, registered with
``@extractor(NodeType)``. The index walks every node of every module and asks the extractor of its
type for the occurrences it holds, so a new kind of declaration plugs in with a ``SymbolKind``
member and one extractor (named conditions: ``extractor(ast.Condition)`` yielding a declaration,
plus ``CEL_NAME_KINDS.add(SymbolKind.CONDITION)`` so that conditions naming it are references).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from charter.diagnostics import Span
from charter.editing.text import LineIndex, contains
from charter.syntax import ast


class SymbolKind(enum.Enum):
    """What a name declares; the value is how people call it."""

    POLICY = "policy"
    FILE = "file"
    UNIT = "unit"
    ROLE = "role"
    ATTRIBUTE = "attribute"
    CONTEXT = "context field"
    AGENT = "agent"
    TOOL = "tool"
    TOOL_ARG = "tool argument"
    TAG = "tag"
    CATEGORY = "category"
    GROUP = "group"
    ESCALATION = "escalation chain"
    SIGNAL = "signal"
    SIGNAL_SOURCE = "signal source"
    RULE = "rule"
    CONSTANT = "constant"
    CONDITION = "condition"
    GRANT = "grant kind"


#: Kinds whose declared names a condition may use as bare identifiers.
CEL_NAME_KINDS: set[SymbolKind] = {SymbolKind.CONSTANT, SymbolKind.CONDITION}

Key = tuple[SymbolKind, str]


@dataclass(frozen=True)
class Occurrence:
    """A name in the source: a declaration of a symbol, or a reference to one."""

    kind: SymbolKind
    name: str
    span: Span
    declaration: bool = False
    #: the declaring node (for hover), when the occurrence is a declaration in a policy file
    node: Any = field(default=None, compare=False, repr=False)
    #: for references: other (kind, name) it may mean, tried in order when resolving (``to X``
    #: names a chain or a group; ``args.x`` an argument of any tool the rule selects)
    alternatives: tuple[Key, ...] = ()

    @property
    def key(self) -> Key:
        """(kind, name): what the occurrence is about."""
        return (self.kind, self.name)


@dataclass
class Walk:
    """What an extractor knows about where it is."""

    path: str
    lines: LineIndex
    index: SymbolIndex
    rule: ast.Rule | None = None
    #: True in the second pass, when every declaration is known
    resolving: bool = False


Extractor = Callable[[Any, Walk], Iterable[Occurrence]]
_EXTRACTORS: dict[type[BaseModel], list[Extractor]] = {}


def extractor(node_type: type[BaseModel]) -> Callable[[Extractor], Extractor]:
    """Register a function giving the occurrences a node of ``node_type`` holds."""

    def register(fn: Extractor) -> Extractor:
        _EXTRACTORS.setdefault(node_type, []).append(fn)
        return fn

    return register


def _decl(kind: SymbolKind, name: ast.Name, node: Any = None) -> Occurrence:
    return Occurrence(kind, name.value, name.span, True, node)


def _ref(kind: SymbolKind, name: ast.Name, *alternatives: Key) -> Occurrence:
    return Occurrence(kind, name.value, name.span, False, None, alternatives)


class SymbolIndex:
    """Declarations and references of one policy (all its files), queried by position or key."""

    def __init__(self) -> None:
        self._by_file: dict[str, list[Occurrence]] = {}
        self._decls: dict[Key, list[Occurrence]] = {}
        self._refs: dict[Key, list[Occurrence]] = {}
        self.tags: dict[str, list[str]] = {}
        self.categories: dict[str, list[str]] = {}
        self.tool_args: dict[str, dict[str, str]] = {}

    # ---- building ---------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        modules: Iterable[ast.Module],
        sources: Mapping[str, str],
        extra: Iterable[Occurrence] = (),
    ) -> SymbolIndex:
        """Index modules (their paths are keys of ``sources``) plus extra declarations."""
        index = cls()
        mods = list(modules)
        for occ in extra:
            index._add(occ)
        lines = {m.path: LineIndex(sources.get(m.path, "")) for m in mods}
        for resolving in (False, True):
            for m in mods:
                walk = Walk(m.path, lines[m.path], index, resolving=resolving)
                for occ in _walk(m, walk):
                    if occ.declaration != resolving:
                        index._add(occ if occ.declaration else index._resolve(occ))
        for occs in index._by_file.values():
            occs.sort(key=lambda o: (o.span.line, o.span.column))
        return index

    def _add(self, occ: Occurrence) -> None:
        self._by_file.setdefault(occ.span.path, []).append(occ)
        table = self._decls if occ.declaration else self._refs
        table.setdefault(occ.key, []).append(occ)
        if occ.declaration and occ.kind is SymbolKind.TOOL and isinstance(occ.node, ast.Tool):
            tool: ast.Tool = occ.node
            for tag in tool.tags:
                self.tags.setdefault(tag.value, []).append(tool.name.value)
            if tool.category is not None:
                self.categories.setdefault(tool.category.value, []).append(tool.name.value)
            self.tool_args[tool.name.value] = {a.name.value: _type_text(a.type) for a in tool.args}

    def _resolve(self, occ: Occurrence) -> Occurrence:
        """A reference with alternatives becomes the first of them that is declared."""
        if not occ.alternatives or occ.key in self._decls:
            return occ
        for kind, name in occ.alternatives:
            if (kind, name) in self._decls:
                return Occurrence(kind, name, occ.span, False, None, ())
        return occ

    # ---- queries ----------------------------------------------------------------------------
    def at(self, path: str, line: int, column: int) -> Occurrence | None:
        """The occurrence under a position (the innermost, when spans nest)."""
        found = [o for o in self._by_file.get(path, ()) if contains(o.span, line, column)]
        if not found:
            return None
        return min(found, key=lambda o: (o.span.end - o.span.start, not o.declaration))

    def declarations(self, key: Key) -> list[Occurrence]:
        """Where a symbol is declared (several places for tags and categories)."""
        return list(self._decls.get(key, ()))

    def references(self, key: Key, include_declaration: bool = False) -> list[Occurrence]:
        """Every reference to a symbol, optionally with its declarations first."""
        refs = list(self._refs.get(key, ()))
        return (self.declarations(key) + refs) if include_declaration else refs

    def names(self, kind: SymbolKind) -> list[str]:
        """Declared names of one kind, sorted."""
        return sorted({name for k, name in self._decls if k is kind})

    def in_file(self, path: str) -> list[Occurrence]:
        """Every occurrence in one file, in source order."""
        return list(self._by_file.get(path, ()))

    def files(self) -> list[str]:
        """Files that have occurrences."""
        return sorted(self._by_file)


def _type_text(t: ast.TypeRef) -> str:
    if t.element is None:
        return t.name
    return f"{t.name} of {_type_text(t.element)}"


def _walk(node: Any, walk: Walk) -> Iterator[Occurrence]:
    """Every occurrence in a node and its children, depth first."""
    if isinstance(node, BaseModel):
        for fn in _EXTRACTORS.get(type(node), ()):
            yield from fn(node, walk)
        if isinstance(node, ast.Rule):
            walk.rule = node
        for name in type(node).model_fields:
            if name == "span" or name.endswith("_span"):
                continue
            yield from _walk(getattr(node, name), walk)
        if isinstance(node, ast.Rule):
            walk.rule = None
    elif isinstance(node, tuple):
        for child in node:
            yield from _walk(child, walk)


# ---- declarations ---------------------------------------------------------------------------
@extractor(ast.Header)
def _header(node: ast.Header, walk: Walk) -> Iterator[Occurrence]:
    yield _decl(SymbolKind.POLICY, node.name, node)
    ext = node.extends
    if ext is not None:
        yield _ref(SymbolKind.POLICY, ext.parent)
        if ext.subject_kind == "agent":
            yield _ref(SymbolKind.AGENT, ext.subject)


@extractor(ast.Include)
def _include(node: ast.Include, walk: Walk) -> Iterator[Occurrence]:
    target = str(Path(walk.path).parent / node.path)
    yield Occurrence(SymbolKind.FILE, _normal(target), node.span, False)


def _normal(path: str) -> str:
    """A file's key: the path as the loader shows it (relative to the working directory)."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(p.resolve())


@extractor(ast.Units)
def _units(node: ast.Units, walk: Walk) -> Iterator[Occurrence]:
    for n in node.names:
        yield _decl(SymbolKind.UNIT, n, node)


@extractor(ast.Mask)
def _mask(node: ast.Mask, walk: Walk) -> Iterator[Occurrence]:
    """``mask args.NAME...``: a reference to argument NAME of every tool that declares it (so
    go-to-definition, find-references and rename of an argument reach the mask paths)."""
    if not walk.resolving:
        return
    for n in node.paths:
        parts = n.value.split(".")
        if len(parts) < 2 or parts[0] != "args" or n.span.line != n.span.end_line:
            continue
        col = n.span.column + len("args.")
        where = Span(n.span.path, n.span.line, col, n.span.line, col + len(parts[1]),
                     n.span.start + len("args."), n.span.start + len("args.") + len(parts[1]))  # fmt: skip
        for tool, args in walk.index.tool_args.items():
            if parts[1] in args:
                yield Occurrence(SymbolKind.TOOL_ARG, f"{tool}/{parts[1]}", where)


@extractor(ast.Roles)
def _roles(node: ast.Roles, walk: Walk) -> Iterator[Occurrence]:
    for n in node.names:
        yield _decl(SymbolKind.ROLE, n, node)


@extractor(ast.Attribute)
def _attribute(node: ast.Attribute, walk: Walk) -> Iterator[Occurrence]:
    yield _decl(SymbolKind.ATTRIBUTE, node.name, node)


@extractor(ast.ContextField)
def _context(node: ast.ContextField, walk: Walk) -> Iterator[Occurrence]:
    yield _decl(SymbolKind.CONTEXT, node.name, node)


@extractor(ast.Agent)
def _agent(node: ast.Agent, walk: Walk) -> Iterator[Occurrence]:
    yield _decl(SymbolKind.AGENT, node.name, node)
    for r in node.roles:
        yield _ref(SymbolKind.ROLE, r)
    if node.parent is not None:
        yield _ref(SymbolKind.AGENT, node.parent)
    for a in node.attrs:
        yield _ref(SymbolKind.ATTRIBUTE, a.name)


@extractor(ast.Tool)
def _tool(node: ast.Tool, walk: Walk) -> Iterator[Occurrence]:
    yield _decl(SymbolKind.TOOL, node.name, node)
    if node.category is not None:
        yield _decl(SymbolKind.CATEGORY, node.category, node)
    for tag in node.tags:
        yield _decl(SymbolKind.TAG, tag, node)
    for arg in node.args:
        yield Occurrence(SymbolKind.TOOL_ARG, f"{node.name.value}/{arg.name.value}", arg.name.span, True, arg)


@extractor(ast.Group)
def _group(node: ast.Group, walk: Walk) -> Iterator[Occurrence]:
    yield _decl(SymbolKind.GROUP, node.name, node)


@extractor(ast.Signal)
def _signal(node: ast.Signal, walk: Walk) -> Iterator[Occurrence]:
    yield _decl(SymbolKind.SIGNAL, node.name, node)
    if node.source is not None:
        yield _decl(SymbolKind.SIGNAL_SOURCE, node.source, node)


@extractor(ast.Rank)
def _rank(node: ast.Rank, walk: Walk) -> Iterator[Occurrence]:
    for n in node.names:
        yield _ref(SymbolKind.SIGNAL_SOURCE, n)


@extractor(ast.Stops)
def _stops(node: ast.Stops, walk: Walk) -> Iterator[Occurrence]:
    if node.operators is not None:
        yield _ref(SymbolKind.GROUP, node.operators)


@extractor(ast.Escalation)
def _escalation(node: ast.Escalation, walk: Walk) -> Iterator[Occurrence]:
    yield _decl(SymbolKind.ESCALATION, node.name, node)
    for step in node.steps:
        yield _ref(SymbolKind.GROUP, step.target)


@extractor(ast.Rule)
def _rule(node: ast.Rule, walk: Walk) -> Iterator[Occurrence]:
    yield _decl(SymbolKind.RULE, node.id, node)


@extractor(ast.ConstDecl)
def _const(node: ast.ConstDecl, walk: Walk) -> Iterator[Occurrence]:
    yield _decl(SymbolKind.CONSTANT, node.name, node)


@extractor(ast.ConditionDecl)
def _named_condition(node: ast.ConditionDecl, walk: Walk) -> Iterator[Occurrence]:
    yield _decl(SymbolKind.CONDITION, node.name, node)
    yield from _cel(node.body, node.body_span, walk)


@extractor(ast.GrantDecl)
def _grant(node: ast.GrantDecl, walk: Walk) -> Iterator[Occurrence]:
    yield _decl(SymbolKind.GRANT, node.name, node)


@extractor(ast.GrantCelClause)
def _grant_cel(node: ast.GrantCelClause, walk: Walk) -> Iterator[Occurrence]:
    yield from _cel(node.text, node.text_span, walk)


# ---- references inside rules ----------------------------------------------------------------
@extractor(ast.ActorSel)
def _actor(node: ast.ActorSel, walk: Walk) -> Iterator[Occurrence]:
    kind = SymbolKind.ROLE if node.by == "role" else SymbolKind.AGENT
    for n in node.names:
        yield _ref(kind, n)


_TARGET_KIND = {"tag": SymbolKind.TAG, "category": SymbolKind.CATEGORY, "role": SymbolKind.ROLE}


def _targets(sel: ast.TargetSel | None, delegate: bool) -> Iterator[Occurrence]:
    if sel is None:
        return
    for n in sel.names:
        if sel.by == "name":
            yield _ref(SymbolKind.AGENT if delegate else SymbolKind.TOOL, n)
        elif sel.by in _TARGET_KIND:
            yield _ref(_TARGET_KIND[sel.by], n)


@extractor(ast.ActionSel)
def _action(node: ast.ActionSel, walk: Walk) -> Iterator[Occurrence]:
    yield from _targets(node.target, delegate=node.kind is not None and node.kind.value == "delegate")


@extractor(ast.EventSel)
def _event(node: ast.EventSel, walk: Walk) -> Iterator[Occurrence]:
    yield from _targets(node.target, delegate=node.by == "delegate")


@extractor(ast.NameClause)
def _name_clause(node: ast.NameClause, walk: Walk) -> Iterator[Occurrence]:
    if node.clause == "approvers":
        yield _ref(SymbolKind.GROUP, node.name)
    elif node.clause == "to":
        yield _ref(SymbolKind.ESCALATION, node.name, (SymbolKind.GROUP, node.name.value))


@extractor(ast.OutcomeSpec)
def _outcome(node: ast.OutcomeSpec, walk: Walk) -> Iterator[Occurrence]:
    if node.group is not None:
        yield _ref(SymbolKind.GROUP, node.group)


@extractor(ast.SignalClause)
def _signal_clause(node: ast.SignalClause, walk: Walk) -> Iterator[Occurrence]:
    yield _ref(SymbolKind.SIGNAL, node.kind)
    if node.where is not None:
        yield from _cel(node.where, node.where_span, walk)


@extractor(ast.LimitClause)
def _limit(node: ast.LimitClause, walk: Walk) -> Iterator[Occurrence]:
    if node.unit is not None:
        yield _ref(SymbolKind.UNIT, node.unit)


@extractor(ast.ScopeClause)
def _scope(node: ast.ScopeClause, walk: Walk) -> Iterator[Occurrence]:
    """``scope S by args.ARG``: a reference to the argument of each selected tool declaring it."""
    by = node.by
    if by is None or not walk.resolving or not by.value.startswith("args."):
        return
    member = by.value[len("args.") :]
    where = walk.lines.span(walk.path, by.span.start + len("args."), by.span.end)
    for tool in dict.fromkeys(rule_tools(walk.rule, walk.index)):
        if member in walk.index.tool_args.get(tool, {}):
            yield Occurrence(SymbolKind.TOOL_ARG, f"{tool}/{member}", where)


@extractor(ast.Trigger)
def _trigger(node: ast.Trigger, walk: Walk) -> Iterator[Occurrence]:
    if node.unit is not None:
        yield _ref(SymbolKind.UNIT, node.unit)


@extractor(ast.ConditionClause)
def _condition(node: ast.ConditionClause, walk: Walk) -> Iterator[Occurrence]:
    yield from _cel(node.text, node.text_span, walk)


# ---- references inside conditions -----------------------------------------------------------
_STRINGS = re.compile(r"\"(?:[^\"\\\n]|\\.)*\"?|'(?:[^'\\\n]|\\.)*'?")
_PATH = re.compile(r"(?<![\w.])([A-Za-z_][A-Za-z0-9_]*)(?:\s*\.\s*([A-Za-z_][A-Za-z0-9_]*))?")
_ROOT_KIND = {"actor": SymbolKind.ATTRIBUTE, "context": SymbolKind.CONTEXT, "cost": SymbolKind.UNIT}


def rule_tools(rule: ast.Rule | None, index: SymbolIndex) -> list[str]:
    """Declared tools a rule's ``action call ...`` selects (tags and categories expanded)."""
    if rule is None:
        return []
    out: list[str] = []
    for clause in rule.clauses:
        if not isinstance(clause, ast.ActionClause):
            continue
        sel = clause.selector
        if sel.kind is None or sel.kind.value != "call" or sel.target is None:
            continue
        out.extend(sel.target.tool_names(index.tags, index.categories))
    return out


def _cel(text: str, span: Span, walk: Walk) -> Iterator[Occurrence]:
    """References a condition makes: ``actor.ATTR``, ``context.FIELD``, ``cost.UNIT``, ``args.ARG``."""
    if not walk.resolving:
        return
    blanked = _STRINGS.sub(lambda m: " " * len(m.group(0)), text)
    base = span.start
    for m in _PATH.finditer(blanked):
        root, member = m.group(1), m.group(2)
        named = next(
            (k for k in sorted(CEL_NAME_KINDS, key=lambda k: k.value) if (k, root) in walk.index._decls), None
        )
        if named is not None:  # a constant (``payees.size()`` too) or a named condition
            yield Occurrence(named, root, walk.lines.span(walk.path, base + m.start(1), base + m.end(1)))
            continue
        if member is None:
            continue
        where = walk.lines.span(walk.path, base + m.start(2), base + m.end(2))
        if root in _ROOT_KIND:
            yield Occurrence(_ROOT_KIND[root], member, where)
        elif root == "args":
            # one reference per selected tool that declares the argument (the same text)
            for tool in dict.fromkeys(rule_tools(walk.rule, walk.index)):
                if member in walk.index.tool_args.get(tool, {}):
                    yield Occurrence(SymbolKind.TOOL_ARG, f"{tool}/{member}", where)
