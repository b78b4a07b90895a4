"""A tree-less LALR driver over a Lark-built parser: Lark's tables and lexer, values built on reduce.

Lark's own LALR loop builds a parse tree (a Tree per reduction, with positions propagated by a
wrapper per node) that a Transformer then walks again. Lark can call a transformer during the
parse instead, but not one that needs positions, and charter's AST needs them everywhere. This
driver runs the same LALR tables and the same per-state (contextual) lexers, and on each reduce
calls a builder method with the reduction's positions and filtered children (exactly as Lark's tree builder
filters them: anonymous tokens dropped, ``_rules`` spliced, ``[x]`` placeholders as None) and a
:class:`Meta` computed the way Lark propagates positions. It also records each value's parse-tree
depth, so a caller can bound it as it would bound the tree's.

It handles well-formed input only: on any lexing or parsing error it raises :class:`NoFastPath`,
and callers parse the text again with Lark's own parser, whose exceptions carry the details their
diagnostics are built from. A builder may raise :class:`NoFastPath` too (for input it cannot build
without the tree).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from typing import Any

import lark
from lark import Lark, Token
from lark.parse_tree_builder import maybe_create_child_filter
from lark.parsers.lalr_analysis import Shift


def cache_file(text: str, prefix: str) -> str | None:
    """Where a parser built from grammar ``text`` is cached between processes (None: no cache dir)."""
    base = os.environ.get("CHARTER_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "charter"
    )
    try:
        os.makedirs(base, exist_ok=True)
    except OSError:
        return None
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return os.path.join(base, f"{prefix}-{digest}-lark{lark.__version__}.cache")


def cached_lark(text: str, prefix: str, **options: Any) -> Lark:
    """A Lark LALR parser for grammar ``text``, its analysis cached on disk (seconds → ms).

    Lark checks the cached file against the grammar and the options, and rebuilds it when they
    differ; an unreadable or unwritable cache just means building the parser here.
    """
    cache = cache_file(text, prefix)
    try:
        return Lark(text, cache=cache or False, **options)
    except (OSError, EOFError, ValueError):
        return Lark(text, **options)


class NoFastPath(Exception):
    """The input needs Lark's own parser (a syntax error, or a shape the builder leaves to it)."""


class Meta:
    """The positions of a reduction, with the attributes of ``lark.tree.Meta``."""

    __slots__ = ("column", "empty", "end_column", "end_line", "end_pos", "line", "start_pos")

    def __init__(self, first: Pos | None, last: Pos | None) -> None:
        if first is None or last is None:
            self.empty = True
            return
        self.empty = False
        self.start_pos, self.line, self.column = first[0], first[1], first[2]
        self.end_pos, self.end_line, self.end_column = last[3], last[4], last[5]


#: (start_pos, line, column, end_pos, end_line, end_column) of a token or a reduction.
Pos = tuple[int, int, int, int, int, int]


class Inline:
    """The value of an inlined rule (``_name``): its children are spliced into the parent's."""

    __slots__ = ("children",)

    def __init__(self, children: list[Any]) -> None:
        self.children = children


#: A builder callback: the positions of the reduction and its filtered children (the argument
#: order of a Lark transformer method decorated with ``v_args(meta=True)``).
Build = Callable[[Meta, list[Any]], Any]


class _StateLexer:
    """One parser state's lexer: its compiled scanner regexes and token callbacks."""

    __slots__ = ("callbacks", "ignore", "newline", "regexes", "skip")

    def __init__(self, basic: Any) -> None:
        scanner = basic.scanner  # builds the scanner (and the keyword callbacks) if not built yet
        self.regexes = [mre.match for mre in scanner._mres]
        self.callbacks: dict[str, Callable[[Token], Token]] = dict(basic.callback)
        self.ignore: frozenset[str] = basic.ignore_types
        self.newline: frozenset[str] = basic.newline_types
        #: ignored terminals without a callback: dropped before a token is even made
        self.skip = frozenset(self.ignore - set(self.callbacks))


class _Lexers(dict[int, _StateLexer]):
    """Per-state lexers, built on first use (as Lark builds its scanners) and shared by states."""

    def __init__(self, basics: dict[int, Any]) -> None:
        super().__init__()
        self.basics = basics
        self.by_basic: dict[int, _StateLexer] = {}

    def __missing__(self, state: int) -> _StateLexer:
        basic = self.basics[state]
        found = self.by_basic.get(id(basic))
        if found is None:
            found = self.by_basic[id(basic)] = _StateLexer(basic)
        self[state] = found
        return found


#: Per rule: expansion length, goto symbol, child filter (None: keep all), callback, whether the
#: rule passes a single child through (``?rule``), whether it is inlined (``_rule``).
_Bound = tuple[int, str, "Callable[[list[Any]], list[Any]] | None", Build, bool, bool]


class Driver:
    """Parses text with a Lark LALR parser's tables, calling a callback per rule on each reduce.

    Rules marked ``?`` with a single child pass the child through, as Lark does. Built once per
    grammar; parsing keeps all its state local, so one driver serves every thread.
    """

    def __init__(
        self,
        parser: Lark,
        start: str,
        maybe_placeholders: bool,
        skip: str | None = None,
        track_depth: bool = False,
    ) -> None:
        """``skip``: a regex of ignored text (whitespace, comments) to pass over before each token.

        Only for grammars where no other terminal can match where an ignored one does, so that
        skipping first lexes exactly as Lark does; it saves a lexer round per ignored token.
        ``track_depth``: compute the parse tree's depth (otherwise :meth:`Bound.parse` gives 0).
        """
        self.track_depth = track_depth
        frontend = parser.parser
        self.skip = re.compile(skip).match if skip is not None else None
        table = frontend.parser.parser.parse_table
        self.start_state: int = table.start_states[start]
        self.end_state: int = table.end_states[start]
        rule_index: dict[Any, int] = {}
        self.rules: list[tuple[int, str, Callable[[list[Any]], list[Any]] | None, str, bool]] = []
        self.actions: dict[int, dict[str, tuple[bool, int]]] = {}
        for state, row in table.states.items():
            out: dict[str, tuple[bool, int]] = {}
            for term, (action, arg) in row.items():
                if action is Shift:
                    out[term] = (True, arg)
                else:
                    if arg not in rule_index:
                        rule_index[arg] = len(self.rules)
                        self.rules.append(self._rule(arg, maybe_placeholders))
                    out[term] = (False, rule_index[arg])
            self.actions[state] = out
        self.lexers = _Lexers(dict(frontend.lexer.lexers))

    @staticmethod
    def _rule(
        rule: Any, maybe_placeholders: bool
    ) -> tuple[int, str, Callable[[list[Any]], list[Any]] | None, str, bool]:
        opts = rule.options
        empty: Any = opts.empty_indices if maybe_placeholders else None
        keep = maybe_create_child_filter(rule.expansion, opts.keep_all_tokens, False, empty)
        filt = keep(_identity) if keep is not None else None
        expand1 = bool(opts.expand1 and not rule.alias)
        name = rule.alias or opts.template_source or rule.origin.name
        return (len(rule.expansion), rule.origin.name, filt, name, expand1)

    def bind(self, lookup: Callable[[str], Build | None]) -> Bound:
        """A parser calling ``lookup(name)``'s callback for each rule name or alias.

        Without a callback, a ``_rule`` gives an :class:`Inline` (Lark inlines those) and any
        other rule raises :class:`NoFastPath`.
        """
        rules = [
            (size, origin, filt, _callback(lookup, name), expand1, origin.startswith("_"))
            for size, origin, filt, name, expand1 in self.rules
        ]
        return Bound(self, rules)

    def parse(self, text: str, lookup: Callable[[str], Build | None]) -> tuple[Any, int]:
        """``bind(lookup).parse(text)``."""
        return self.bind(lookup).parse(text)


class Bound:
    """A driver with its callbacks resolved: parses text into the start rule's value."""

    def __init__(self, driver: Driver, rules: list[_Bound]) -> None:
        self.driver = driver
        self.rules = rules

    def parse(self, text: str) -> tuple[Any, int]:
        """The start rule's value and the parse tree's depth (0 unless the driver tracks it)."""
        driver = self.driver
        actions = driver.actions
        lexers = driver.lexers
        rules = self.rules
        end_state = driver.end_state
        states = [driver.start_state]
        values: list[Any] = []
        poss: list[Pos | None] = []
        depths: list[int] = []
        track = driver.track_depth
        kdepth = 0
        pos, line, line_start, end = 0, 1, 0, len(text)
        token: Token | None = None
        skip = driver.skip
        while True:
            if skip is not None and pos < end:
                skipped = skip(text, pos)
                if skipped is not None and skipped.end() > pos:
                    newline = text.rfind("\n", pos, skipped.end())
                    if newline >= 0:
                        line += text.count("\n", pos, newline + 1)
                        line_start = newline + 1
                    pos = skipped.end()
            if pos < end:
                lexer = lexers[states[-1]]
                for match in lexer.regexes:
                    m = match(text, pos)
                    if m is not None:
                        break
                else:
                    raise NoFastPath("no token matches")
                kind = m.lastgroup
                assert kind is not None
                start, start_line, col = pos, line, pos - line_start + 1
                pos = m.end()
                if kind in lexer.newline:
                    value = m.group(0)
                    n = value.count("\n")
                    if n:
                        line += n
                        line_start = start + value.rindex("\n") + 1
                if kind in lexer.skip:
                    continue
                end_col = pos - line_start + 1
                token_pos = (start, start_line, col, pos, line, end_col)
                token = Token(kind, m.group(0), start, start_line, col, line, end_col, pos)
                callback = lexer.callbacks.get(kind)
                if callback is not None:
                    token = callback(token)
                    if kind in lexer.ignore:
                        continue
                    kind = token.type
                    # A callback may return a new token without positions (cel-python's does, for
                    # true/false); Lark then propagates its missing positions, and so does this.
                    token_pos = _token_pos(token)
            else:
                kind = "$END"
            while True:
                try:
                    shift, arg = actions[states[-1]][kind]
                except KeyError:
                    raise NoFastPath(f"unexpected {kind}") from None
                if shift:
                    if kind == "$END":  # pragma: no cover - Lark's tables reduce to the end state
                        raise NoFastPath("shift at the end")
                    states.append(arg)
                    values.append(token)
                    poss.append(token_pos)
                    if track:
                        depths.append(0)
                    break
                size, origin, filt, build, expand1, inlined = rules[arg]
                if size:
                    kids = values[-size:]
                    kpos = poss[-size:]
                    del states[-size:], values[-size:], poss[-size:]
                    if track:
                        kdepth = max(depths[-size:])
                        del depths[-size:]
                else:
                    kids, kpos, kdepth = [], [], 0
                first = last = None
                for p in kpos:
                    if p is not None:
                        first = p
                        break
                if first is not None:
                    for p in reversed(kpos):
                        if p is not None:
                            last = p
                            break
                children = filt(kids) if filt is not None else kids
                if expand1 and len(children) == 1:
                    # Lark passes the single child through; a tree's container grows to this
                    # reduction, a token keeps its own position.
                    value_ = children[0]
                    depth = kdepth
                    if isinstance(value_, Token):
                        first = last = _token_pos(value_)
                else:
                    value_ = build(Meta(first, last), children)
                    depth = kdepth if inlined else kdepth + 1
                poss.append(
                    None if first is None or last is None
                    else (first[0], first[1], first[2], last[3], last[4], last[5])
                )  # fmt: skip
                values.append(value_)
                if track:
                    depths.append(depth)
                states.append(actions[states[-1]][origin][1])
                if kind == "$END" and states[-1] == end_state:
                    return values[-1], depths[-1] if track else 0


def _token_pos(token: Token) -> Pos:
    return (
        token.start_pos or 0,
        token.line or 1,
        token.column or 1,
        token.end_pos or 0,
        token.end_line or 1,
        token.end_column or 1,
    )


def _callback(lookup: Callable[[str], Build | None], name: str) -> Build:
    found = lookup(name)
    if found is not None:
        return found
    if name.startswith("_"):
        return _inline
    return _missing


def _missing(meta: Meta, children: list[Any]) -> Any:
    raise NoFastPath("no callback for a rule")


def _identity(children: list[Any]) -> list[Any]:
    return children


def _inline(meta: Meta, children: list[Any]) -> Inline:
    return Inline(children)
