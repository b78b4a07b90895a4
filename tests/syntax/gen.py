"""Generators of valid policies: an AST plus a messily laid out text that parses to it."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from hypothesis import strategies as st

from charter.enums import ActionKind, Calendar, Mode, RuleKind, Scope, TriggerKind
from charter.syntax import ast
from charter.syntax.transform import parse_duration_text

T = TypeVar("T")

KEYWORDS = {
    "amount",
    "const",
    "condition",
    "policy",
    "extends",
    "for",
    "agent",
    "workflow",
    "include",
    "agents",
    "from",
    "units",
    "roles",
    "attribute",
    "context",
    "list",
    "of",
    "map",
    "role",
    "parent",
    "tool",
    "category",
    "tags",
    "arg",
    "secret",
    "group",
    "members",
    "signal",
    "clears",
    "rank",
    "stops",
    "operators",
    "resume",
    "requires",
    "escalation",
    "to",
    "finally",
    "permit",
    "forbid",
    "halt",
    "escalate",
    "budget",
    "rate",
    "tripwire",
    "require",
    "approval",
    "on",
    "result",
    "actor",
    "action",
    "when",
    "unless",
    "where",
    "after",
    "before",
    "reason",
    "mode",
    "error",
    "approvers",
    "quorum",
    "separation",
    "duties",
    "expires",
    "timeout",
    "severity",
    "stop",
    "scope",
    "limit",
    "timezone",
    "exceed",
    "trigger",
    "then",
    "enforce",
    "shadow",
    "off",
    "global",
    "org",
    "tenant",
    "run",
    "any",
    "call",
    "delegate",
    "model",
    "message",
    "tagged",
    "labelled",
    "within",
    "steps",
    "per",
    "hour",
    "day",
    "week",
    "month",
    "repeated",
    "more",
    "than",
    "times",
    "delegation",
    "depth",
    "ping-pong",
    "spend",
    "fan-out",
    "denied",
    "allow",
    "deny",
    "ignore",
    "label",
    "true",
    "false",
}
_WORDS = [
    "kb",
    "web",
    "risk",
    "pay",
    "ops",
    "data",
    "ehr",
    "git",
    "llm",
    "alpha",
    "beta",
    "x",
    "team_a",
    "Q3",
    "_tmp",
    "research",
    "sre",
    "email",
    "read",
    "fetch",
    "chain",
]
_SEPS = [".", "-"]
_COMMENTS = [
    "# note",
    "#",
    "## double",
    "# it's a 'quote'",
    '# "quoted" text',
    "# { brace",
    "# } close",
    "# when x > 1",
    "# ünïcødé ✓",
    "#!shebang-like",
    "# trailing   ",
    "# permit fake { actor any }",
    "# a\tb",
]
_STR_CHARS = [*list("abcXYZ 019#{}[]()'<>,.:;!?-_/"), '"', "\\", "\t", "é", "✓", "\n"]
_TYPES = ["int", "string", "bool", "double", "timestamp", "duration", "uint"]
_UNITS_ALL = ["USD", "EUR", "tokens", "calls"]
_DURS = ["1s", "30s", "5m", "2h", "1d", "1w", "250ms", "1h30m", "90s", "24h"]
_CEL_ATOMS = [
    "actor.clearance",
    "args.amount",
    "args.currency",
    "run.depth",
    "env",
    "score",
    "result.failed",
    "action.labels",
    "args.memo",
    "context.region",
]
_CEL_LITS = [
    "1",
    "0",
    "3",
    "100",
    "1.5",
    "true",
    "false",
    '"USD"',
    "'eu'",
    '"a#b{"',
    "'}]'",
    '"x\\"y"',
    "null",
]
_CEL_OPS = ["&&", "||", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "in"]


class Chooser:
    """The random decisions a generator makes (seeded random or hypothesis draws)."""

    def choice(self, seq: Sequence[T]) -> T:
        raise NotImplementedError

    def randint(self, lo: int, hi: int) -> int:
        raise NotImplementedError

    def chance(self, p: float) -> bool:
        return self.randint(0, 999) < int(p * 1000)


class RandomChooser(Chooser):
    """Decisions from a seeded :class:`random.Random`."""

    def __init__(self, rnd: random.Random):
        self.rnd = rnd

    def choice(self, seq: Sequence[T]) -> T:
        return seq[self.rnd.randrange(len(seq))]

    def randint(self, lo: int, hi: int) -> int:
        return self.rnd.randint(lo, hi)


class DrawChooser(Chooser):
    """Decisions drawn by hypothesis (so failures shrink)."""

    def __init__(self, draw: Callable[[Any], Any]):
        self.draw = draw

    def choice(self, seq: Sequence[T]) -> T:
        return seq[self.draw(st.integers(0, len(seq) - 1))]

    def randint(self, lo: int, hi: int) -> int:
        return int(self.draw(st.integers(lo, hi)))


@dataclass
class Generated:
    """A generated policy: the AST it must parse to, and its (messy) text."""

    module: ast.Module
    text: str
    comments: list[str]


# ---- tokens -------------------------------------------------------------------------------------


@dataclass
class Tok:
    """One token of the messy text; ``cel`` tokens must be followed by a line break."""

    text: str
    cel: bool = False


def _punct(t: str) -> bool:
    return t in {"{", "}", ",", ":", ">", "[", "]"}


class Gen:
    """Builds a random module and its tokens side by side."""

    def __init__(self, c: Chooser, comments: bool = True, max_items: int = 8):
        self.c = c
        self.use_comments = comments
        self.max_items = max_items
        self.toks: list[Tok] = []

    # ---- small values ------------------------------------------------------------------------
    def name(self) -> str:
        while True:
            parts = [self.c.choice(_WORDS)]
            for _ in range(self.c.randint(0, 2)):
                parts.append(self.c.choice(_SEPS) + self.c.choice([*_WORDS, "1", "v2"]))
            if self.c.chance(0.2):
                parts.append(str(self.c.randint(0, 99)))
            n = "".join(parts)
            if n not in KEYWORDS and not n[0].isdigit():
                return n

    def names(self, lo: int = 1, hi: int = 4) -> list[str]:
        return [self.name() for _ in range(self.c.randint(lo, hi))]

    def string(self) -> tuple[str, str]:
        """(value, literal) with random escapes."""
        value = "".join(self.c.choice(_STR_CHARS) for _ in range(self.c.randint(0, 12)))
        out = []
        for ch in value:
            if ch == "\\":
                out.append("\\\\")
            elif ch == '"':
                out.append('\\"')
            elif ch == "\n":
                out.append("\\n")
            elif ch == "\t":
                out.append(self.c.choice(["\\t", "\t"]))
            elif ch in "aX" and self.c.chance(0.2):
                out.append("\\" + ch)  # unknown escape: the character itself
            else:
                out.append(ch)
        return value, '"' + "".join(out) + '"'

    def number(self, integer: bool = False, negative: bool = True) -> tuple[Decimal, str]:
        whole = self.c.randint(0, 10 ** self.c.randint(1, 9))
        text = str(whole)
        if self.c.chance(0.2) and len(text) > 3:
            text = text[0] + "_" + text[1:]
        if self.c.chance(0.1):
            text = "0" + text
        if not integer and self.c.chance(0.3):
            text += "." + str(self.c.randint(0, 999)).rjust(self.c.randint(1, 3), "0")
        if negative and not integer and self.c.chance(0.15):
            text = "-" + text
        return Decimal(text.replace("_", "")), text

    def duration(self) -> ast.Duration:
        text = self.c.choice(_DURS)
        return ast.Duration(text=text, seconds=parse_duration_text(text))

    def type_ref(self, depth: int = 0) -> tuple[ast.TypeRef, list[str]]:
        if depth < 2 and self.c.chance(0.25):
            inner, words = self.type_ref(depth + 1)
            kind = self.c.choice(["list", "map"])
            return ast.TypeRef(name=kind, element=inner), [kind, "of", *words]
        t = self.c.choice(_TYPES)
        return ast.TypeRef(name=t), [t]

    def emit(self, *words: str) -> None:
        self.toks.extend(Tok(w) for w in words)

    def emit_names(self, names: list[str]) -> tuple[ast.Name, ...]:
        for i, n in enumerate(names):
            if i:
                self.emit(",")
            self.emit(n)
        return tuple(ast.Name(value=n) for n in names)

    # ---- CEL ----------------------------------------------------------------------------------
    def cel_expr(self, depth: int) -> list[str]:
        """A CEL expression as pieces; '\\n' marks where a line break may go."""
        r = self.c.randint(0, 9)
        if depth <= 0 or r < 3:
            return [self.c.choice(_CEL_ATOMS + _CEL_LITS)]
        if r < 6:
            op = self.c.choice(_CEL_OPS)
            brk = ["\n"] if op != "in" else []
            return [*self.cel_expr(depth - 1), f" {op}", *brk, " ", *self.cel_expr(depth - 1)]
        if r < 7:
            return ["(", "\n", *self.cel_expr(depth - 1), ")"]
        if r < 8:
            items: list[str] = ["["]
            for i in range(self.c.randint(0, 3)):
                if i:
                    items += [",", "\n", " "]
                items += self.cel_expr(depth - 1)
            return [*items, "]"]
        if r < 9:
            return [f"size({self.c.choice(_CEL_ATOMS)})", " ", self.c.choice(["<", ">=", "=="]), " ", "3"]
        meth = self.c.choice(["startsWith", "endsWith", "contains"])
        return [f"{self.c.choice(_CEL_ATOMS)}.{meth}(", "\n", self.c.choice(_CEL_LITS), ")"]

    def cel(self) -> str:
        pieces = self.cel_expr(self.c.randint(0, 4))
        depth = 0
        out: list[str] = []
        multiline = self.c.chance(0.3)
        for p in pieces:
            if p == "\n":
                if multiline and self.c.chance(0.5):
                    out.append(self.c.choice([" \n", "\n", "\n  ", "\n\t    ", "  \n        "]))
                continue
            depth += p.count("(") + p.count("[") - p.count(")") - p.count("]")
            out.append(p)
        text = "".join(out).strip()
        # A condition may not end with a line break or begin with whitespace.
        return text

    # ---- declarations -------------------------------------------------------------------------
    def header(self) -> ast.Header:
        name = self.name()
        self.emit("policy", name)
        ext = None
        if self.c.chance(0.3):
            parent, kind, subject = self.name(), self.c.choice(["agent", "workflow"]), self.name()
            self.emit("extends", parent, "for", kind, subject)
            ext = ast.Extends(
                parent=ast.Name(value=parent), subject_kind=kind, subject=ast.Name(value=subject)
            )
        return ast.Header(name=ast.Name(value=name), extends=ext)

    def value(self, depth: int = 0) -> tuple[Any, None]:
        r = self.c.randint(0, 5 if depth < 2 else 3)
        if r == 0:
            v, lit = self.string()
            self.emit(lit)
            return v, None
        if r == 1:
            n, lit = self.number()
            self.emit(lit)
            return n, None
        if r == 2:
            b = self.c.chance(0.5)
            self.emit("true" if b else "false")
            return b, None
        if r == 3:
            v, lit = self.string()
            self.emit(lit)
            return v, None
        self.emit("[")
        vals = []
        for i in range(self.c.randint(0, 3)):
            if i:
                self.emit(",")
            vals.append(self.value(depth + 1)[0])
        self.emit("]")
        return tuple(vals), None

    def interleave(self, groups: list[list[Callable[[], None]]]) -> None:
        """Run the emitters of each list in order, the lists interleaved at random."""
        queues = [list(g) for g in groups if g]
        while queues:
            q = self.c.choice(queues)
            q.pop(0)()
            if not q:
                queues.remove(q)

    def agent(self) -> ast.Agent:
        name = self.name()
        self.emit("agent", name, "{")
        role_groups = [self.names(1, 3) for _ in range(self.c.randint(0, 2))]
        parent = self.name() if self.c.chance(0.4) else None
        attrs: list[ast.AgentAttr] = []

        def role(g: list[str]) -> Callable[[], None]:
            return lambda: (self.emit("role"), self.emit_names(g), None)[-1]

        def attr() -> None:
            key = self.name()
            self.emit(key)
            v, _ = self.value()
            attrs.append(ast.AgentAttr(name=ast.Name(value=key), value=v))

        attr_fns = [attr for _ in range(self.c.randint(0, 3))]
        parent_fns = [lambda: self.emit("parent", parent or "")] if parent else []
        self.interleave([[role(g) for g in role_groups], parent_fns, attr_fns])
        self.emit("}")
        roles = tuple(ast.Name(value=n) for g in role_groups for n in g)
        return ast.Agent(
            name=ast.Name(value=name),
            roles=roles,
            parent=ast.Name(value=parent) if parent else None,
            attrs=tuple(attrs),
        )

    def tool(self) -> ast.Tool:
        name = self.name()
        self.emit("tool", name, "{")
        category = self.name() if self.c.chance(0.7) else None
        tag_groups = [self.names(1, 3) for _ in range(self.c.randint(0, 2))]
        args: list[ast.ToolArg] = []

        def arg() -> None:
            an = self.name()
            t, words = self.type_ref()
            secret = self.c.chance(0.2)
            self.emit("arg", an, ":", *words, *(["secret"] if secret else []))
            args.append(ast.ToolArg(name=ast.Name(value=an), type=t, secret=secret))

        def tags(g: list[str]) -> Callable[[], None]:
            return lambda: (self.emit("tags"), self.emit_names(g), None)[-1]

        cat_fns = [lambda: self.emit("category", category or "")] if category else []
        self.interleave([cat_fns, [tags(g) for g in tag_groups], [arg for _ in range(self.c.randint(0, 3))]])
        self.emit("}")
        return ast.Tool(
            name=ast.Name(value=name),
            category=ast.Name(value=category) if category else None,
            tags=tuple(ast.Name(value=n) for g in tag_groups for n in g),
            args=tuple(args),
        )

    def item(self) -> Any:
        k = self.c.randint(0, 13)
        if k == 0:
            v, lit = self.string()
            self.emit("include", lit)
            return ast.Include(path=v)
        if k == 1:
            v, lit = self.string()
            self.emit("agents", "from", lit)
            return ast.AgentsFrom(path=v)
        if k == 2:
            kw = self.c.choice(["units", "roles"])
            self.emit(kw)
            names = self.emit_names(self.names(1, 30 if self.c.chance(0.1) else 4))
            return ast.Units(names=names) if kw == "units" else ast.Roles(names=names)
        if k == 3:
            kw = self.c.choice(["attribute", "context"])
            n = self.name()
            t, words = self.type_ref()
            self.emit(kw, n, ":", *words)
            cls = ast.Attribute if kw == "attribute" else ast.ContextField
            return cls(name=ast.Name(value=n), type=t)
        if k == 4:
            return self.agent()
        if k == 5:
            return self.tool()
        if k == 6:
            n = self.name()
            self.emit("group", n, "{", "members")
            members = self.emit_names(self.names())
            self.emit("}")
            return ast.Group(name=ast.Name(value=n), members=members)
        if k == 7:
            n = self.name()
            self.emit("signal", n, "{")
            source = self.name() if self.c.chance(0.7) else None
            clears = self.c.chance(0.4)
            self.interleave(
                [
                    [lambda: self.emit("from", source or "")] if source else [],
                    [lambda: self.emit("clears")] if clears else [],
                ]
            )
            self.emit("}")
            return ast.Signal(
                name=ast.Name(value=n), source=ast.Name(value=source) if source else None, clears=clears
            )
        if k == 8:
            names = self.names(2, 5)
            self.emit("rank")
            for i, nm in enumerate(names):
                if i:
                    self.emit(">")
                self.emit(nm)
            return ast.Rank(names=tuple(ast.Name(value=n) for n in names))
        if k == 9:
            self.emit("stops", "{")
            ops = self.name() if self.c.chance(0.7) else None
            resume = self.number(integer=True) if self.c.chance(0.6) else None
            self.interleave(
                [
                    [lambda: self.emit("operators", ops or "")] if ops else [],
                    [lambda: self.emit("resume", "requires", resume[1] if resume else "")] if resume else [],
                ]
            )
            self.emit("}")
            return ast.Stops(
                operators=ast.Name(value=ops) if ops else None,
                resume_requires=int(resume[0]) if resume else None,
            )
        if k == 10:
            n = self.name()
            self.emit("escalation", n, "{")
            steps = []
            for _ in range(self.c.randint(0, 3)):
                target = self.name()
                self.emit("to", target)
                d = None
                if self.c.chance(0.7):
                    d = self.duration()
                    self.emit("for", d.text)
                steps.append(ast.EscalationStep(target=ast.Name(value=target), timeout=d))
            final = None
            if self.c.chance(0.7):
                final = self.c.choice(["allow", "deny", "halt", "escalate"])
                self.emit("finally", final)
            self.emit("}")
            return ast.Escalation(name=ast.Name(value=n), steps=tuple(steps), final=final)
        return self.rule()

    # ---- rules --------------------------------------------------------------------------------
    def target(self, optional: bool) -> ast.TargetSel | None:
        r = self.c.randint(0, 5 if optional else 4)
        if r == 5:
            return None
        if r == 0:
            self.emit("any")
            return ast.TargetSel(by="any")
        by, word = [
            ("name", None),
            ("tag", "tagged"),
            ("category", "category"),
            ("role", "role"),
            ("name", None),
        ][r]
        if word:
            self.emit(word)
        return ast.TargetSel(by=by, names=self.emit_names(self.names(1, 3)))  # type: ignore[arg-type]

    def outcome(self, allowed: Sequence[str]) -> ast.OutcomeSpec:
        kind = self.c.choice(allowed)
        if kind == "halt":
            self.emit("halt")
            scope = self.c.choice([None, *Scope])
            if scope is not None:
                self.emit(scope.value)
            return ast.OutcomeSpec(kind="halt", scope=scope)
        if kind == "require_approval":
            self.emit("require", "approval")
            g = None
            if self.c.chance(0.5):
                g = self.name()
                self.emit("from", g)
            return ast.OutcomeSpec(kind="require_approval", group=ast.Name(value=g) if g else None)
        if kind == "label":
            self.emit("label")
            return ast.OutcomeSpec(kind="label", labels=self.emit_names(self.names(1, 2)))
        self.emit(kind)
        return ast.OutcomeSpec(kind=kind)  # type: ignore[arg-type]

    def clause(self, name: str, kind: RuleKind) -> Any:
        if name == "actor":
            self.emit("actor")
            by = self.c.choice(["any", "role", "agent"])
            if by == "any":
                self.emit("any")
                return ast.ActorClause(selector=ast.ActorSel(by="any"))
            self.emit(by)
            names = self.emit_names(self.names())
            return ast.ActorClause(selector=ast.ActorSel(by=by, names=names))
        if name == "action":
            self.emit("action")
            k = self.c.choice([None, *ActionKind])
            if k is None:
                self.emit("any")
                return ast.ActionClause(selector=ast.ActionSel(kind=None))
            self.emit(k.value)
            t = self.target(optional=k is not ActionKind.CALL)
            return ast.ActionClause(selector=ast.ActionSel(kind=k, target=t))
        if name in ("when", "unless"):
            text = self.cel()
            self.emit(name)
            self.toks.append(Tok(text, cel=True))
            return ast.ConditionClause(clause=name, text=text)  # type: ignore[arg-type]
        if name == "signal":
            k = self.name()
            self.emit("signal", k)
            where = None
            if self.c.chance(0.5):
                where = self.cel()
                self.emit("where")
                self.toks.append(Tok(where, cel=True))
            return ast.SignalClause(kind=ast.Name(value=k), where=where)
        if name in ("after", "before"):
            self.emit(name)
            by = self.c.choice(["call", "delegate", "labelled"])
            self.emit(by)
            if by == "labelled":
                ev = ast.EventSel(by="labelled", labels=self.emit_names(self.names(1, 2)))
            else:
                ev = ast.EventSel(by=by, target=self.target(optional=by == "delegate"))  # type: ignore[arg-type]
            within = None
            if name == "after" and self.c.chance(0.5):
                if self.c.chance(0.5):
                    n, lit = self.number(integer=True)
                    self.emit("within", lit, "steps")
                    within = ast.Within(steps=int(n))
                else:
                    d = self.duration()
                    self.emit("within", d.text)
                    within = ast.Within(duration=d)
            return ast.SequenceClause(clause=name, event=ev, within=within)  # type: ignore[arg-type]
        if name == "reason":
            v, lit = self.string()
            self.emit("reason", lit)
            return ast.ReasonClause(text=v)
        if name == "mode":
            m = self.c.choice(list(Mode))
            self.emit("mode", m.value)
            return ast.ModeClause(mode=m)
        if name in ("on error", "on timeout", "on exceed", "then"):
            self.emit(*name.split())
            allowed = ["allow", "deny", "ignore", "halt", "escalate", "require_approval"]
            if name == "then":
                allowed = [*allowed, "label"]
            return ast.OutcomeClause(clause=name, outcome=self.outcome(allowed))  # type: ignore[arg-type]
        if name in ("approvers", "to", "severity"):
            levels = ["low", "medium", "high", "critical"]
            n = self.c.choice(levels) if name == "severity" else self.name()
            self.emit(name, n)
            return ast.NameClause(clause=name, name=ast.Name(value=n))  # type: ignore[arg-type]
        if name == "quorum":
            n, lit = self.number(integer=True)
            self.emit("quorum", lit)
            return ast.NumberClause(value=int(n))
        if name == "separation of duties":
            on = self.c.chance(0.5)
            self.emit("separation", "of", "duties", "on" if on else "off")
            return ast.SwitchClause(on=on)
        if name == "expires after":
            d = self.duration()
            self.emit("expires", "after", d.text)
            return ast.DurationClause(duration=d)
        if name == "redeem within":
            d = self.duration()
            self.emit("redeem", "within", d.text)
            return ast.DurationClause(clause="redeem within", duration=d)
        if name in ("scope", "stop"):
            s = self.c.choice(list(Scope))
            self.emit(name, s.value)
            by = None
            if name == "scope" and self.c.chance(0.3):
                by = ast.Name(value="args." + self.name())
                self.emit("by", by.value)
            return ast.ScopeClause(clause=name, scope=s, by=by)  # type: ignore[arg-type]
        if name == "limit":
            n, lit = self.number()
            self.emit("limit", lit)
            unit = None
            if self.c.chance(0.7):
                unit = self.c.choice(_UNITS_ALL)
                self.emit(unit)
            window = None
            if self.c.chance(0.7):
                if self.c.chance(0.5):
                    cal = self.c.choice(list(Calendar))
                    self.emit("per", cal.value)
                    window = ast.Window(calendar=cal)
                else:
                    d = self.duration()
                    self.emit("per", d.text)
                    window = ast.Window(rolling=d)
            unit_name = ast.Name(value=unit) if unit else None
            return ast.LimitClause(amount=n, unit=unit_name, window=window)
        if name == "amount":
            text = self.cel()
            self.emit("amount")
            self.toks.append(Tok(text, cel=True))
            return ast.AmountClause(text=text)
        if name == "timezone":
            v, lit = self.string()
            self.emit("timezone", lit)
            return ast.TimezoneClause(tz=v)
        if name == "trigger":
            self.emit("trigger")
            tk = self.c.choice(list(TriggerKind))
            if tk is TriggerKind.VELOCITY:
                n, lit = self.number(negative=False)
                unit = self.c.choice(_UNITS_ALL)
                d = self.duration()
                self.emit("spend", "more", "than", lit, unit, "within", d.text)
                return ast.TriggerClause(
                    trigger=ast.Trigger(kind=tk, threshold=n, unit=ast.Name(value=unit), within=d)
                )
            n, lit = self.number(integer=True)
            d = self.duration()
            within: ast.Duration | None = d
            if tk is TriggerKind.REPEAT:
                self.emit("repeated", "call", "more", "than", lit, "times", "within", d.text)
            elif tk is TriggerKind.DEPTH:
                self.emit("delegation", "depth", "more", "than", lit)
                within = None
            elif tk is TriggerKind.PINGPONG:
                self.emit("ping-pong", "more", "than", lit, "times")
                if self.c.chance(0.5):
                    self.emit("within", d.text)
                else:
                    within = None
            elif tk is TriggerKind.DENIED:
                self.emit("denied", "more", "than", lit, "times", "within", d.text)
            else:
                self.emit("fan-out", "more", "than", lit, "agents", "within", d.text)
            return ast.TriggerClause(trigger=ast.Trigger(kind=tk, threshold=n, within=within))
        raise AssertionError(name)

    def rule(self) -> ast.Rule:
        from charter.compiler.resolve import ALLOWED, REPEATABLE, REQUIRED

        kind = self.c.choice(list(RuleKind))
        rid = self.name()
        if kind is RuleKind.APPROVAL:
            self.emit("require", "approval", rid, "{")
        elif kind is RuleKind.RESULT:
            self.emit("on", "result", rid, "{")
        else:
            self.emit(kind.value, rid, "{")
        allowed = sorted(ALLOWED[kind])
        names = list(REQUIRED.get(kind, ()))
        for _ in range(self.c.randint(0, 6)):
            n = self.c.choice(allowed)
            if n in REPEATABLE or n not in names:
                names.append(n)
        order = []
        while names:
            order.append(names.pop(self.c.randint(0, len(names) - 1)))
        clauses = tuple(self.clause(n, kind) for n in order)
        self.emit("}")
        return ast.Rule(kind=kind, id=ast.Name(value=rid), clauses=clauses)

    # ---- module and layout --------------------------------------------------------------------
    def module(self) -> ast.Module:
        items: list[Any] = []
        if self.c.chance(0.7):
            items.append(self.header())
        for _ in range(self.c.randint(0, self.max_items)):
            items.append(self.item())
        return ast.Module(path="<gen>", items=tuple(items))

    def comment(self) -> str:
        return self.c.choice(_COMMENTS)

    def layout(self) -> tuple[str, list[str]]:
        """Join the tokens with random whitespace and comments."""
        out: list[str] = []
        comments: list[str] = []
        if self.use_comments and self.c.chance(0.3):
            cm = self.comment()
            comments.append(cm)
            out.append(cm + "\n" + self.c.choice(["", "\n"]))
        prev: Tok | None = None
        for tok in self.toks:
            if prev is not None:
                out.append(self.sep(prev, tok, comments))
            out.append(tok.text)
            prev = tok
        if prev is not None and prev.cel:
            out.append("\n")
        if self.use_comments and self.c.chance(0.3):
            cm = self.comment()
            comments.append(cm)
            out.append(self.c.choice([" ", "\n", "\n\n"]) + cm)
        if self.c.chance(0.7):
            out.append("\n")
        return "".join(out), comments

    def sep(self, prev: Tok, tok: Tok, comments: list[str]) -> str:
        r = self.c.randint(0, 19)
        if self.use_comments and r == 0:
            cm = self.comment()
            comments.append(cm)
            return self.c.choice([" ", "  ", ""]) + cm + self.c.choice(["\n", "\n\n", "\n    "])
        if prev.cel:
            if tok.text == "}" and r < 4:
                return self.c.choice([" ", ""])
            return self.c.choice(["\n", " \n", "\n  ", "\n\n", "\t\n\t"])
        if r < 4 and (_punct(prev.text) or _punct(tok.text)):
            return ""
        if r < 6:
            return self.c.choice(["\n", "\n  ", "\n\n", " \n   "])
        return self.c.choice([" ", " ", "  ", "\t"])


def generate(c: Chooser, comments: bool = True, max_items: int = 8) -> Generated:
    """One valid policy and its messy text."""
    g = Gen(c, comments, max_items)
    module = g.module()
    text, found = g.layout()
    return Generated(module, text, found)


def random_policy(seed: int, comments: bool = True, max_items: int = 8) -> Generated:
    """A reproducible random policy for ``seed``."""
    return generate(RandomChooser(random.Random(seed)), comments, max_items)


@st.composite
def policies(draw: Callable[[Any], Any], comments: bool = True, max_items: int = 8) -> Generated:
    """Hypothesis strategy of valid policies (AST and text) that shrink on failure."""
    return generate(DrawChooser(draw), comments, max_items)
