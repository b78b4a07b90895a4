"""Prints a policy AST in the one canonical style (``charter fmt``), keeping every comment."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from charter.diagnostics import Diagnostic
from charter.syntax import ast

#: Indentation of one block level.
INDENT = "  "
#: Name lists longer than this wrap after a comma, aligned under the first name.
MAX_WIDTH = 100

#: Top-level one-line declarations that stay together (no blank line) when consecutive.
_GROUPED = (
    ast.Include,
    ast.AgentsFrom,
    ast.Units,
    ast.Roles,
    ast.Attribute,
    ast.ContextField,
    ast.ConstDecl,
    ast.ConditionDecl,
    ast.Mask,
)

_NUMBER = r"(-?[0-9][0-9_]*(?:\.[0-9][0-9_]*)?)"
_INT = r"([0-9][0-9_]*)"
_VALUE_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|' + _NUMBER)
_TAKES_NAME = re.compile(r"(?:(?:^|[\s{])(?:from|operators|to|for|finally)|,)$")


def quote(text: str) -> str:
    """A double-quoted string literal whose value is ``text``."""
    body = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\t", "\\t")
        .replace("\r", "\\r")
    )
    return f'"{body}"'


def _indent_width(line: str) -> int:
    expanded = line.expandtabs(4)
    return len(expanded) - len(expanded.lstrip())


def _num_text(value: Decimal | int) -> str:
    if isinstance(value, Decimal):
        text = format(value, "f")
        return text
    return str(value)


@dataclass
class _Line:
    """One printed line (a multi-line condition is one _Line) and where it came from."""

    text: str
    indent: int
    start: int | None = None
    end: int | None = None
    close: bool = False
    leading: list[tuple[str, bool]] = field(default_factory=list)  # (comment, blank line after)
    trailing: str | None = None


@dataclass
class _Block:
    """The printed lines of one top-level item."""

    item: Any
    lines: list[_Line]


class _Printer:
    """Builds the lines of a module, then places its comments."""

    def __init__(self, module: ast.Module, source: str):
        self.module = module
        self.source = source
        self.code = self._blank_comments(source, module.comments)

    # ---- source helpers -------------------------------------------------------------------
    @staticmethod
    def _blank_comments(source: str, comments: tuple[ast.Comment, ...]) -> str:
        if not comments or not source:
            return source
        parts: list[str] = []
        pos = 0
        for c in comments:
            s, e = c.span.start, c.span.end
            if s < pos or e > len(source):
                continue
            parts.append(source[pos:s])
            parts.append(" " * (e - s))
            pos = e
        parts.append(source[pos:])
        return "".join(parts)

    def _has(self, node: ast.Node | None) -> bool:
        if node is None or not self.source:
            return False
        sp = node.span
        return sp.path != "<none>" and 0 <= sp.start < sp.end <= len(self.source)

    def _slice(self, node: ast.Node) -> str | None:
        return self.code[node.span.start : node.span.end] if self._has(node) else None

    def _as_written(self, node: ast.Node, pattern: str, value: Decimal | int) -> str:
        """The number in ``node`` as the source wrote it, when it is there and means ``value``."""
        text = self._slice(node)
        if text is not None:
            m = re.search(pattern, text)
            if m is not None:
                written = m.group(1)
                try:
                    if Decimal(written.replace("_", "")) == Decimal(value):
                        return written
                except ArithmeticError:  # pragma: no cover - the pattern admits digits only
                    pass
        return _num_text(value)

    def _kw_start(self, name: ast.Node, keyword: str) -> int | None:
        """Where the keyword just before ``name`` starts (comments skipped)."""
        if not self._has(name):
            return None
        before = self.code[: name.span.start].rstrip()
        if before.endswith(keyword):
            return len(before) - len(keyword)
        return name.span.start

    def _find_kw(self, item: ast.Node, pattern: str) -> int | None:
        """Offset of a keyword clause inside a block item that has no span of its own."""
        text = self._slice(item)
        if text is None:
            return None
        for m in re.finditer(r"(?<![\w.\-])" + pattern + r"(?![\w.\-])", text):
            before = text[: m.start()].rstrip()
            if not _TAKES_NAME.search(before):
                return item.span.start + m.start()
        return None

    def _brace(self, item: ast.Node, after: int) -> int | None:
        if not self._has(item):
            return None
        pos = self.code.find("{", after, item.span.end)
        return pos if pos >= 0 else None

    # ---- values ---------------------------------------------------------------------------
    def _names(self, prefix: str, names: tuple[ast.Name, ...], indent: int, sep: str = ", ") -> str:
        words = [n.value for n in names]
        one = prefix + sep.join(words)
        if len(INDENT) * indent + len(one) <= MAX_WIDTH or sep != ", ":
            return one
        pad = " " * (len(INDENT) * indent + len(prefix))
        lines: list[str] = []
        cur = prefix
        for i, w in enumerate(words):
            piece = w + ("," if i < len(words) - 1 else "")
            width = len(INDENT) * indent + len(cur) + 1 + len(piece)
            if cur not in (prefix, pad) and width > MAX_WIDTH:
                lines.append(cur)
                cur = pad + piece
            else:
                cur = cur + ("" if cur in (prefix, pad) else " ") + piece
        lines.append(cur)
        return "\n".join(lines)

    def _value(self, value: Any, numbers: list[str]) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return quote(value)
        if isinstance(value, Decimal):
            if numbers:
                written = numbers.pop(0)
                if Decimal(written.replace("_", "")) == value:
                    return written
                numbers.clear()
            return _num_text(value)
        if isinstance(value, tuple):
            return "[" + ", ".join(self._value(v, numbers) for v in value) + "]"
        return str(value)  # pragma: no cover - the transformer builds no other values

    def _attr_numbers(self, attr: ast.AgentAttr) -> list[str]:
        if not self._has(attr):
            return []
        text = self.source[attr.name.span.end : attr.span.end] if self._has(attr.name) else ""
        return [m.group(1) for m in _VALUE_TOKEN.finditer(text) if m.group(1)]

    @staticmethod
    def _type(t: ast.TypeRef) -> str:
        if t.element is not None:
            return f"{t.name} of {_Printer._type(t.element)}"
        return t.name

    def _target(self, t: ast.TargetSel | None, indent: int, prefix: str) -> str:
        if t is None:
            return prefix.rstrip()
        if t.by == "any":
            return prefix + "any"
        word = {"name": "", "tag": "tagged ", "category": "category ", "role": "role "}[t.by]
        return self._names(prefix + word, t.names, indent)

    def _outcome(self, o: ast.OutcomeSpec, indent: int, prefix: str) -> str:
        if o.kind == "halt":
            return prefix + "halt" + (f" {o.scope.value}" if o.scope is not None else "")
        if o.kind == "require_approval":
            return prefix + "require approval" + (f" from {o.group.value}" if o.group else "")
        if o.kind == "label":
            text = self._names(prefix + "label ", o.labels, indent)
            # the fields stay on the last line of the labels ("on" starts them only there)
            return text + " on " + ", ".join(f.value for f in o.fields) if o.fields else text
        return prefix + o.kind

    def _condition(self, keyword: str, text: str, indent: int) -> str:
        lines = text.strip().split("\n")
        first = lines[0].strip()
        rest = [ln.rstrip() for ln in lines[1:]]
        low = min((_indent_width(ln) for ln in rest if ln.strip()), default=0)
        base = len(INDENT) * (indent + 1)
        out = [f"{keyword} {first}"]
        for ln in rest:
            if not ln.strip():
                out.append("")
                continue
            out.append(" " * (base + _indent_width(ln) - low) + ln.strip())
        return "\n".join(out)

    # ---- clauses --------------------------------------------------------------------------
    def _clause(self, c: Any, indent: int) -> str:
        if isinstance(c, ast.ActorClause):
            sel = c.selector
            if sel.by == "any":
                return "actor any"
            return self._names(f"actor {sel.by} ", sel.names, indent)
        if isinstance(c, ast.ActionClause):
            a = c.selector
            if a.kind is None:
                return "action any"
            return self._target(a.target, indent, f"action {a.kind.value} ")
        if isinstance(c, ast.AmountClause):
            return self._condition("amount", c.text, indent)
        if isinstance(c, ast.GrantCelClause):
            return self._condition(c.clause, c.text, indent)
        if isinstance(c, ast.ParamClause):
            text = f"param {c.name.value}: {self._type(c.type)}"
            if c.default is not None:
                numbers: list[str] = []
                if self._has(c) and self._has(c.name):
                    tail = self.code[c.name.span.end : c.span.end]
                    numbers = [m.group(1) for m in _VALUE_TOKEN.finditer(tail) if m.group(1)]
                text += " = " + self._value(c.default, numbers)
            return text
        if isinstance(c, ast.ConditionClause):
            return self._condition(c.clause, c.text, indent)
        if isinstance(c, ast.SignalClause):
            head = f"signal {c.kind.value}"
            if c.where is None:
                return head
            return self._condition(head + " where", c.where, indent)
        if isinstance(c, ast.SequenceClause):
            ev = c.event
            if ev.by == "labelled":
                text = self._names(f"{c.clause} labelled ", ev.labels, indent)
            else:
                text = self._target(ev.target, indent, f"{c.clause} {ev.by} ")
            if c.within is not None:
                if c.within.duration is not None:
                    text += f" within {c.within.duration.text}"
                else:
                    steps = self._as_written(c.within, r"within\s+" + _INT, c.within.steps or 0)
                    text += f" within {steps} steps"
            if c.where is not None:
                return self._condition(text + " where", c.where, indent)
            return text
        if isinstance(c, ast.ReasonClause):
            return f"reason {quote(c.text)}"
        if isinstance(c, ast.ModeClause):
            return f"mode {c.mode.value}"
        if isinstance(c, ast.OutcomeClause):
            return self._outcome(c.outcome, indent, f"{c.clause} ")
        if isinstance(c, ast.NameClause):
            return f"{c.clause} {c.name.value}"
        if isinstance(c, ast.NumberClause):
            return "quorum " + self._as_written(c, r"quorum\s+" + _INT, c.value)
        if isinstance(c, ast.SwitchClause):
            return f"separation of duties {'on' if c.on else 'off'}"
        if isinstance(c, ast.DurationClause):
            return f"{c.clause} {c.duration.text}"
        if isinstance(c, ast.ScopeClause):
            by = f" by {c.by.value}" if c.by is not None else ""
            return f"{c.clause} {c.scope.value}{by}"
        if isinstance(c, ast.LimitClause):
            text = "limit " + self._as_written(c, r"limit\s+" + _NUMBER, c.amount)
            if c.unit is not None:
                text += f" {c.unit.value}"
            if c.window is not None:
                if c.window.calendar is not None:
                    text += f" per {c.window.calendar.value}"
                elif c.window.rolling is not None:
                    text += f" per {c.window.rolling.text}"
            return text
        if isinstance(c, ast.TimezoneClause):
            return f"timezone {quote(c.tz)}"
        if isinstance(c, ast.TriggerClause):
            return "trigger " + self._trigger(c.trigger)
        raise TypeError(f"unknown clause {type(c).__name__}")  # pragma: no cover

    def _trigger(self, t: ast.Trigger) -> str:
        pat = r"than\s+" + (_NUMBER if t.kind.value == "spend-velocity" else _INT)
        n = self._as_written(t, pat, t.threshold)
        within = f" within {t.within.text}" if t.within is not None else ""
        kind = t.kind.value
        if kind == "repeated-call":
            return f"repeated call more than {n} times{within}"
        if kind == "delegation-depth":
            return f"delegation depth more than {n}"
        if kind == "ping-pong":
            return f"ping-pong more than {n} times{within}"
        if kind == "spend-velocity":
            unit = t.unit.value if t.unit is not None else ""
            return f"spend more than {n} {unit}{within}"
        if kind == "denied":
            return f"denied more than {n} times{within}"
        return f"fan-out more than {n} agents{within}"

    # ---- items ----------------------------------------------------------------------------
    def _start(self, node: ast.Node | None) -> int | None:
        return node.span.start if node is not None and self._has(node) else None

    def _end(self, node: ast.Node | None) -> int | None:
        return node.span.end if node is not None and self._has(node) else None

    def _block(self, item: Any, head: str, name: ast.Node | None, body: list[_Line]) -> list[_Line]:
        start = self._start(item)
        after = name.span.end if name is not None and self._has(name) else (start or 0)
        brace = self._brace(item, after)
        open_line = _Line(head + " {", 0, start, brace + 1 if brace is not None else None)
        end = self._end(item)
        close = _Line("}", 0, end - 1 if end is not None else None, end, close=True)
        if all(b.start is not None for b in body):
            body = sorted(body, key=lambda b: b.start or 0)
        return [open_line, *body, close]

    def _name_groups(self, names: tuple[ast.Name, ...]) -> list[tuple[ast.Name, ...]]:
        """Split a merged name list back into the lists the source wrote (``role a`` ``role b``)."""
        if not names or not all(self._has(n) for n in names):
            return [names] if names else []
        groups: list[list[ast.Name]] = [[names[0]]]
        for prev, cur in itertools.pairwise(names):
            between = self.code[prev.span.end : cur.span.start].strip()
            if between == ",":
                groups[-1].append(cur)
            else:
                groups.append([cur])
        return [tuple(g) for g in groups]

    def _sub(self, text: str, start: int | None, end: int | None = None) -> _Line:
        if end is None and start is not None:
            end = start + 1
        return _Line(text, 1, start, end)

    def _item(self, item: Any) -> list[_Line]:
        start, end = self._start(item), self._end(item)
        if isinstance(item, ast.Header):
            text = f"policy {item.name.value}"
            if item.extends is not None:
                e = item.extends
                text += f" extends {e.parent.value} for {e.subject_kind} {e.subject.value}"
            return [_Line(text, 0, start, end)]
        if isinstance(item, ast.Include):
            return [_Line(f"include {quote(item.path)}", 0, start, end)]
        if isinstance(item, ast.AgentsFrom):
            return [_Line(f"agents from {quote(item.path)}", 0, start, end)]
        if isinstance(item, ast.Units):
            return [_Line(self._names("units ", item.names, 0), 0, start, end)]
        if isinstance(item, ast.Roles):
            return [_Line(self._names("roles ", item.names, 0), 0, start, end)]
        if isinstance(item, ast.Mask):
            return [_Line(self._names(f"{item.kind.value} ", item.paths, 0), 0, start, end)]
        if isinstance(item, ast.Attribute):
            return [_Line(f"attribute {item.name.value}: {self._type(item.type)}", 0, start, end)]
        if isinstance(item, ast.ContextField):
            return [_Line(f"context {item.name.value}: {self._type(item.type)}", 0, start, end)]
        if isinstance(item, ast.Rank):
            return [_Line(self._names("rank ", item.names, 0, " > "), 0, start, end)]
        if isinstance(item, ast.Agent):
            body: list[_Line] = []
            for g in self._name_groups(item.roles):
                body.append(
                    self._sub(self._names("role ", g, 1), self._kw_start(g[0], "role"), self._end(g[-1]))
                )
            if item.parent is not None:
                at = self._kw_start(item.parent, "parent")
                body.append(self._sub(f"parent {item.parent.value}", at, self._end(item.parent)))
            for a in item.attrs:
                value = self._value(a.value, self._attr_numbers(a))
                body.append(self._sub(f"{a.name.value} {value}", self._start(a), self._end(a)))
            return self._block(item, f"agent {item.name.value}", item.name, body)
        if isinstance(item, ast.Tool):
            body = []
            if item.category is not None:
                body.append(
                    self._sub(
                        f"category {item.category.value}",
                        self._kw_start(item.category, "category"),
                        self._end(item.category),
                    )
                )
            for g in self._name_groups(item.tags):
                body.append(
                    self._sub(self._names("tags ", g, 1), self._kw_start(g[0], "tags"), self._end(g[-1]))
                )
            for arg in item.args:
                text = f"arg {arg.name.value}: {self._type(arg.type)}"
                text += " secret" if arg.secret else ""
                body.append(self._sub(text, self._start(arg), self._end(arg)))
            for res in item.results:
                text = f"result {res.name.value}: {self._type(res.type)}"
                text += " secret" if res.secret else ""
                body.append(self._sub(text, self._start(res), self._end(res)))
            return self._block(item, f"tool {item.name.value}", item.name, body)
        if isinstance(item, ast.Group):
            at = self._kw_start(item.members[0], "members") if item.members else None
            members = self._names("members ", item.members, 1)
            body = [self._sub(members, at, self._end(item.members[-1]))]
            return self._block(item, f"group {item.name.value}", item.name, body)
        if isinstance(item, ast.Signal):
            body = []
            if item.source is not None:
                at = self._kw_start(item.source, "from")
                body.append(self._sub(f"from {item.source.value}", at, self._end(item.source)))
            if item.clears:
                body.append(self._sub("clears", self._find_kw(item, "clears")))
            return self._block(item, f"signal {item.name.value}", item.name, body)
        if isinstance(item, ast.Stops):
            body = []
            if item.operators is not None:
                body.append(
                    self._sub(
                        f"operators {item.operators.value}",
                        self._kw_start(item.operators, "operators"),
                        self._end(item.operators),
                    )
                )
            if item.resume_requires is not None:
                n = self._as_written(item, r"resume\s+requires\s+" + _INT, item.resume_requires)
                body.append(self._sub(f"resume requires {n}", self._find_kw(item, "resume")))
            return self._block(item, "stops", None, body)
        if isinstance(item, ast.Escalation):
            body = []
            for step in item.steps:
                text = f"to {step.target.value}"
                text += f" for {step.timeout.text}" if step.timeout else ""
                body.append(self._sub(text, self._start(step), self._end(step)))
            if item.final is not None:
                body.append(self._sub(f"finally {item.final}", self._find_kw(item, "finally")))
            return self._block(item, f"escalation {item.name.value}", item.name, body)
        if isinstance(item, ast.ConstDecl):
            text = f"const {item.name.value}"
            text += f": {self._type(item.type)}" if item.type is not None else ""
            if item.file is not None:
                text += f" from {quote(item.file)}"
            else:
                numbers: list[str] = []
                if self._has(item) and self._has(item.name):
                    tail = self.code[item.name.span.end : item.span.end]
                    numbers = [m.group(1) for m in _VALUE_TOKEN.finditer(tail) if m.group(1)]
                text += " = " + self._value(item.value, numbers)
            return [_Line(text, 0, start, end)]
        if isinstance(item, ast.ConditionDecl):
            params = ", ".join(f"{p.name.value}: {self._type(p.type)}" for p in item.params)
            return [
                _Line(
                    self._condition(f"condition {item.name.value}({params}) =", item.body, 0), 0, start, end
                )
            ]
        if isinstance(item, ast.GrantDecl):
            lines = [_Line(self._clause(c, 1), 1, self._start(c), self._end(c)) for c in item.clauses]
            block = self._block(item, f"grant {item.name.value}", item.name, [])
            return [block[0], *lines, block[1]]
        if isinstance(item, ast.Rule):
            kind = item.kind.value
            lines = [_Line(self._clause(c, 1), 1, self._start(c), self._end(c)) for c in item.clauses]
            block = self._block(item, f"{kind} {item.id.value}", item.id, [])
            return [block[0], *lines, block[1]]
        raise TypeError(f"unknown item {type(item).__name__}")  # pragma: no cover

    # ---- comments -------------------------------------------------------------------------
    def _place_comments(self, blocks: list[_Block]) -> list[tuple[str, bool, int]]:
        """Attach each comment to a line; returns the comments left for the end of the file."""
        anchored = [ln for b in blocks for ln in b.lines if ln.start is not None]
        eof: list[tuple[str, bool, int]] = []
        src = self.source
        for c in sorted(self.module.comments, key=lambda c: c.span.start):
            text = c.text.rstrip()
            p = c.span.start
            if not src or not (0 <= p < c.span.end <= len(src)):
                eof.append((text, False, len(src)))
                continue
            line_start = src.rfind("\n", 0, p) + 1
            trailing = bool(self.code[line_start:p].strip())
            rest = src[c.span.end :].lstrip(" \t\r")
            gap = rest.startswith("\n") and rest[1:].lstrip(" \t\r").startswith("\n")
            before = [ln for ln in anchored if (ln.start or 0) < p]
            if trailing and before:
                target = max(before, key=lambda ln: ln.start or 0)
                if target.trailing is not None:
                    target.leading.append((target.trailing, False))
                target.trailing = text
                continue
            inside = [ln for ln in before if not ln.close and ln.end is not None and p < ln.end]
            after = [ln for ln in anchored if (ln.start or 0) > p]
            if inside:
                max(inside, key=lambda ln: ln.start or 0).leading.append((text, False))
            elif after:
                min(after, key=lambda ln: ln.start or 0).leading.append((text, gap))
            else:
                eof.append((text, gap, p))
        return eof

    # ---- output ---------------------------------------------------------------------------
    def render(self) -> str:
        """The whole module as text."""
        blocks = [_Block(item, self._item(item)) for item in self.module.items]
        eof = self._place_comments(blocks)
        out: list[str] = []
        prev: Any = None
        for block in blocks:
            first = block.lines[0]
            if prev is not None:
                grouped = type(prev) is type(block.item) and isinstance(block.item, _GROUPED)
                if not grouped or first.leading:
                    out.append("")
            for ln in block.lines:
                pad = INDENT * (ln.indent + (1 if ln.close else 0))
                for text, gap in ln.leading:
                    out.append(pad + text)
                    if gap:
                        out.append("")
                body = INDENT * ln.indent + ln.text
                if ln.trailing is not None:
                    body += "  " + ln.trailing
                out.append(body)
            prev = block.item
        if eof and out:
            ends = [e for e in map(self._end, self.module.items) if e is not None]
            code_end = max(ends, default=0)
            if self.source.count("\n", code_end, eof[0][2]) >= 2:
                out.append("")
        for text, gap, _ in eof:
            out.append(text)
            if gap:
                out.append("")
        while out and out[-1] == "":
            out.pop()
        return "\n".join(out) + "\n" if out else ""


def format_module(module: ast.Module, source: str) -> str:
    """The module printed in the canonical style; ``source`` (its text) supplies comments and
    numbers as written. Pass ``""`` to print a module built in code."""
    return _Printer(module, source).render()


def format_source(text: str, path: str = "<string>") -> tuple[str | None, tuple[Diagnostic, ...]]:
    """Formatted text and no diagnostics, or None and the diagnostics when it does not parse."""
    from charter.syntax.parser import parse_text

    result = parse_text(text, path)
    if result.module is None:
        return None, result.diagnostics
    return format_module(result.module, result.source), result.diagnostics


def format_text(text: str, path: str = "<string>") -> str | None:
    """Formatted text, or None when the input does not parse (see :func:`format_source`)."""
    return format_source(text, path)[0]
