"""CEL to SMT: a checked CEL AST (charter.cel) encoded as z3 terms with CEL's error semantics."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import z3

from charter.cel.syntax import (
    Binary,
    Call,
    Comprehension,
    Cond,
    Has,
    Ident,
    Index,
    ListLit,
    Lit,
    Logic,
    Method,
    Node,
    Select,
    Unary,
)
from charter.cel.types import UInt
from charter.errors import Error

_SCALARS = ("bool", "string", "int", "double")
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
FALSE = z3.BoolVal(False)
TRUE = z3.BoolVal(True)

#: CEL functions and operators of docs/cel.md this module encodes exactly (the rest: uninterpreted).
ENCODED = (
    "&&", "||", "!", "? :", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "unary -",
    "in (list literal, role/tag/label lists, map keys)", "has()", "size(string)", "size(list literal)",
    "startsWith", "endsWith", "contains", "matches", "int(double)", "int(int)", "double(int)",
    "double(double)", "string(string)", "exists", "all", "exists_one", "math.abs", "math.sign",
    "math.greatest", "math.least", "math.ceil", "math.floor", "math.trunc", "indexOf(string)",
    "charAt", "substring",
)  # fmt: skip


class Unsupported(Error):
    """A CEL construct this encoding does not model; the reason names it."""


@dataclass(slots=True)
class V:
    """A symbolic CEL value: a kind, a z3 term (or a Python structure) and when it is an error."""

    kind: str  # bool int double string strset list obj map null
    term: Any
    err: z3.BoolRef = field(default_factory=lambda: FALSE)


@dataclass(slots=True)
class Obj:
    """An object or map root: field -> (present, value), resolved on demand."""

    get: Callable[[str], tuple[z3.BoolRef, V] | None]
    #: a map (``args``, ``cost``): ``key in m`` is presence; objects answer ``has`` likewise
    is_map: bool = False
    name: str = ""


@dataclass(slots=True)
class StrSet:
    """A list of strings known by membership (roles, tags, labels): const name -> z3 Bool."""

    member: Callable[[str], z3.BoolRef]
    name: str = ""


def _or(xs: list[z3.BoolRef]) -> z3.BoolRef:
    xs = [x for x in xs if not z3.is_false(x)]
    if not xs:
        return FALSE
    return xs[0] if len(xs) == 1 else z3.Or(*xs)


def _and(xs: list[z3.BoolRef]) -> z3.BoolRef:
    xs = [x for x in xs if not z3.is_true(x)]
    if not xs:
        return TRUE
    return xs[0] if len(xs) == 1 else z3.And(*xs)


class Encoder:
    """Encodes one condition's AST over the roots a case provides (see analysis/encode.py)."""

    def __init__(self, roots: Mapping[str, V], text: str):
        self.roots = roots
        self.text = text

    def encode(self, node: Node, scope: Mapping[str, V] | None = None) -> V:
        """The symbolic value of ``node``; raises Unsupported for what is not modelled."""
        return self._e(node, dict(scope or {}))

    # ---- dispatch ---------------------------------------------------------------------------------
    def _e(self, n: Node, sc: dict[str, V]) -> V:
        t = type(n)
        if t is Lit:
            return self._lit(n.value)  # type: ignore[attr-defined]
        if t is Ident:
            name = n.name  # type: ignore[attr-defined]
            if name in sc:
                return sc[name]
            if name in self.roots:
                return self.roots[name]
            raise Unsupported(f"the name '{name}'")
        if t is Select:
            assert isinstance(n, Select)
            if n.optional:
                raise Unsupported("optional field selection (.?)")
            return self._field(self._e(n.operand, sc), n.field)
        if t is Has:
            assert isinstance(n, Has)
            base = self._e(n.operand, sc)
            if base.kind != "obj":
                raise Unsupported("has() on a value that is not an object or a map")
            got = base.term.get(n.field)
            present = FALSE if got is None else got[0]
            return V("bool", present, base.err)
        if t is Index:
            assert isinstance(n, Index)
            if n.optional:
                raise Unsupported("optional index ([?])")
            base = self._e(n.operand, sc)
            key = self._e(n.index, sc)
            if base.kind == "obj" and key.kind == "string" and z3.is_string_value(key.term):
                v = self._field(base, key.term.as_string())
                return V(v.kind, v.term, _or([v.err, key.err]))
            if base.kind == "list" and key.kind == "int" and z3.is_int_value(key.term):
                i = key.term.as_long()
                if 0 <= i < len(base.term):
                    item: V = base.term[i]
                    return V(item.kind, item.term, _or([base.err, item.err]))
                return V("null", None, TRUE)
            raise Unsupported("indexing with a computed key")
        if t is Unary:
            assert isinstance(n, Unary)
            x = self._e(n.operand, sc)
            if n.op == "!":
                self._want(x, "bool", "!")
                return V("bool", z3.Not(x.term), x.err)
            if x.kind == "int":
                r = -x.term
                return V("int", r, _or([x.err, r > INT_MAX]))
            if x.kind == "double":
                return V("double", -x.term, x.err)
            raise Unsupported(f"unary {n.op} on {x.kind}")
        if t is Logic:
            assert isinstance(n, Logic)
            return self._logic(n.op, [self._e(o, sc) for o in n.operands])
        if t is Cond:
            assert isinstance(n, Cond)
            c = self._e(n.cond, sc)
            self._want(c, "bool", "?:")
            a, b = self._e(n.then, sc), self._e(n.other, sc)
            if a.kind != b.kind or a.kind not in ("bool", "int", "double", "string"):
                if {a.kind, b.kind} == {"int", "double"}:
                    raise Unsupported("a conditional mixing int and double")
                raise Unsupported(f"a conditional over {a.kind}/{b.kind}")
            return V(a.kind, z3.If(c.term, a.term, b.term), _or([c.err, z3.If(c.term, a.err, b.err)]))
        if t is Binary:
            assert isinstance(n, Binary)
            return self._binary(n.op, self._e(n.left, sc), n.right, sc)
        if t is ListLit:
            assert isinstance(n, ListLit)
            if n.optional:
                raise Unsupported("optional list elements")
            return V("list", [self._e(i, sc) for i in n.items])
        if t is Call:
            assert isinstance(n, Call)
            return self._call(n.name, [self._e(a, sc) for a in n.args])
        if t is Method:
            assert isinstance(n, Method)
            return self._method(self._e(n.target, sc), n.name, [self._e(a, sc) for a in n.args])
        if t is Comprehension:
            assert isinstance(n, Comprehension)
            return self._comprehension(n, sc)
        raise Unsupported(f"the construct {t.__name__}")

    # ---- pieces ------------------------------------------------------------------------------------
    @staticmethod
    def _want(v: V, kind: str, op: str) -> None:
        if v.kind != kind:
            raise Unsupported(f"'{op}' on a {v.kind}")

    @staticmethod
    def _lit(value: Any) -> V:
        if value is True or value is False:
            return V("bool", z3.BoolVal(value))
        if isinstance(value, UInt):
            raise Unsupported("unsigned integers")
        if isinstance(value, int):
            return V("int", z3.IntVal(value))
        if isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                raise Unsupported("NaN or infinite literals")
            return V("double", z3.RealVal(value))
        if isinstance(value, str):
            return V("string", z3.StringVal(value))
        if value is None:
            return V("null", None)
        raise Unsupported(f"{type(value).__name__} literals")

    @staticmethod
    def _field(base: V, name: str) -> V:
        if base.kind != "obj":
            raise Unsupported(f"selecting '{name}' on a {base.kind}")
        got = base.term.get(name)
        if got is None:  # no such field or key in any request of this case: an error
            return V("null", None, TRUE)
        present, v = got
        return V(v.kind, v.term, _or([base.err, v.err, z3.Not(present)]))

    @staticmethod
    def _logic(op: str, xs: list[V]) -> V:
        for x in xs:
            if x.kind != "bool":
                raise Unsupported(f"'{op}' on a {x.kind}")
        if op == "&&":
            decisive = _or([z3.And(z3.Not(x.err), z3.Not(x.term)) for x in xs])  # some false
            value = z3.Not(decisive)
        else:
            decisive = _or([z3.And(z3.Not(x.err), x.term) for x in xs])  # some true
            value = decisive
        err = z3.And(z3.Not(decisive), _or([x.err for x in xs]))
        return V("bool", value, z3.simplify(err) if not xs else err)

    def _num(self, a: V, b: V, op: str) -> tuple[str, Any, Any]:
        if a.kind == b.kind and a.kind in ("int", "double"):
            return a.kind, a.term, b.term
        if {a.kind, b.kind} == {"int", "double"}:
            if op in ("<", "<=", ">", ">=", "==", "!="):
                ta = z3.ToReal(a.term) if a.kind == "int" else a.term
                tb = z3.ToReal(b.term) if b.kind == "int" else b.term
                return "double", ta, tb
            raise Unsupported(f"'{op}' mixing int and double")
        raise Unsupported(f"'{op}' on {a.kind} and {b.kind}")

    def _binary(self, op: str, a: V, right: Node, sc: dict[str, V]) -> V:
        b = self._e(right, sc)
        err = _or([a.err, b.err])
        if op == "in":
            return self._in(a, b, err)
        if op in ("==", "!="):
            if a.kind in ("bool", "string") and a.kind == b.kind:
                eq = a.term == b.term
            elif a.kind in ("int", "double") and b.kind in ("int", "double"):
                _, x, y = self._num(a, b, op)
                eq = x == y
            elif a.kind == "null" or b.kind == "null":
                eq = z3.BoolVal(a.kind == b.kind)
            elif a.kind in ("bool", "string", "int", "double") and b.kind in (
                "bool",
                "string",
                "int",
                "double",
            ):
                eq = FALSE  # CEL: values of different types are never equal
            else:
                raise Unsupported(f"'{op}' on {a.kind} and {b.kind}")
            return V("bool", eq if op == "==" else z3.Not(eq), err)
        if op in ("<", "<=", ">", ">="):
            if a.kind == "string" and b.kind == "string":
                x, y = a.term, b.term
            elif a.kind == "bool" or b.kind == "bool":
                raise Unsupported(f"'{op}' on booleans")
            else:
                _, x, y = self._num(a, b, op)
            r = {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op]
            return V("bool", r, err)
        if op == "+" and a.kind == "string" and b.kind == "string":
            return V("string", z3.Concat(a.term, b.term), err)
        if op in ("+", "-", "*", "/", "%"):
            kind, x, y = self._num(a, b, op)
            if kind == "int":
                if op == "/" or op == "%":
                    if z3.is_int_value(y) and y.as_long() == 0:
                        return V("int", z3.IntVal(0), TRUE)
                    ax, ay = z3.If(x >= 0, x, -x), z3.If(y >= 0, y, -y)
                    mag = z3.If(ay == 0, 0, ax / ay)  # |x| div |y|: truncation toward zero
                    q = z3.If((x >= 0) == (y > 0), mag, -mag)
                    r = q if op == "/" else x - q * y
                    return V("int", r, _or([err, y == 0, r > INT_MAX, r < INT_MIN]))
                r = {"+": x + y, "-": x - y, "*": x * y}[op]
                return V("int", r, _or([err, r > INT_MAX, r < INT_MIN]))
            if op == "%":
                raise Unsupported("'%' on doubles")
            if op == "/":
                if not z3.is_rational_value(y) or y.as_fraction() == 0:
                    raise Unsupported("double '/' by a value that is not a nonzero constant")
                return V("double", x / y, err)
            return V("double", {"+": x + y, "-": x - y, "*": x * y}[op], err)
        raise Unsupported(f"the operator '{op}'")

    @staticmethod
    def _in(a: V, b: V, err: z3.BoolRef) -> V:
        if b.kind == "list":
            eqs: list[z3.BoolRef] = []
            errs = [err]
            for item in b.term:
                if item.kind == a.kind and a.kind in ("bool", "string", "int", "double"):
                    eqs.append(a.term == item.term)
                elif {item.kind, a.kind} <= {"int", "double"}:
                    x = z3.ToReal(a.term) if a.kind == "int" else a.term
                    y = z3.ToReal(item.term) if item.kind == "int" else item.term
                    eqs.append(x == y)
                elif item.kind in ("bool", "string", "int", "double", "null"):
                    pass  # different types: never equal
                else:
                    raise Unsupported(f"'in' over a list of {item.kind}")
                errs.append(item.err)
            return V("bool", _or(eqs), _or(errs))
        if b.kind == "strset":
            if a.kind != "string":
                raise Unsupported(f"'in' of a {a.kind} in a list of strings")
            if not z3.is_string_value(a.term):
                raise Unsupported(f"'in' of a computed string in {b.term.name or 'a list'}")
            return V("bool", b.term.member(a.term.as_string()), _or([err, b.err]))
        if b.kind == "obj" and b.term.is_map:
            if a.kind != "string" or not z3.is_string_value(a.term):
                raise Unsupported("'in' of a computed key in a map")
            got = b.term.get(a.term.as_string())
            return V("bool", FALSE if got is None else got[0], _or([err, b.err]))
        raise Unsupported(f"'in' over a {b.kind}")

    def _call(self, name: str, args: list[V]) -> V:
        err = _or([a.err for a in args])
        if name == "size" and len(args) == 1:
            return self._size(args[0])
        if name == "int" and len(args) == 1:
            x = args[0]
            if x.kind == "int":
                return x
            if x.kind == "double":
                r = z3.If(x.term >= 0, z3.ToInt(x.term), -z3.ToInt(-x.term))
                return V("int", r, _or([err, x.term >= 2.0**63, x.term <= -(2.0**63)]))
        if name == "double" and len(args) == 1:
            x = args[0]
            if x.kind == "double":
                return x
            if x.kind == "int":
                return V("double", z3.ToReal(x.term), err)
        if name == "string" and len(args) == 1 and args[0].kind == "string":
            return args[0]
        if name in ("startsWith", "endsWith", "contains", "matches") and len(args) == 2:
            return self._method(args[0], name, args[1:])
        if name.startswith("math."):
            return self._math(name, args, err)
        raise Unsupported(f"the function {name}()")

    @staticmethod
    def _math(name: str, args: list[V], err: z3.BoolRef) -> V:
        """math.abs, sign, greatest, least (numbers of one kind), ceil, floor, trunc (doubles)."""
        kinds = {a.kind for a in args}
        if not args or len(kinds) != 1 or kinds - {"int", "double"}:
            raise Unsupported(f"{name}() of {', '.join(sorted(kinds)) or 'nothing'}")
        kind = args[0].kind
        x = args[0].term
        if name == "math.abs" and len(args) == 1:
            r = z3.If(x >= 0, x, -x)
            return V(kind, r, _or([err, r > INT_MAX]) if kind == "int" else err)
        if name == "math.sign" and len(args) == 1:
            one, zero = (z3.IntVal(1), z3.IntVal(0)) if kind == "int" else (z3.RealVal(1), z3.RealVal(0))
            return V(kind, z3.If(x > 0, one, z3.If(x < 0, -one, zero)), err)
        if name in ("math.greatest", "math.least") and len(args) >= 2:
            best = x
            for a in args[1:]:
                better = a.term > best if name == "math.greatest" else a.term < best
                best = z3.If(better, a.term, best)
            return V(kind, best, err)
        if name in ("math.ceil", "math.floor", "math.trunc") and len(args) == 1 and kind == "double":
            fl = z3.ToReal(z3.ToInt(x))  # floor
            if name == "math.floor":
                r = fl
            elif name == "math.ceil":
                r = z3.If(fl == x, x, fl + 1)
            else:
                r = z3.If(x >= 0, fl, z3.If(fl == x, x, fl + 1))
            return V("double", r, err)
        raise Unsupported(f"{name}() in this form")

    @staticmethod
    def _size(x: V) -> V:
        if x.kind == "string":
            return V("int", z3.Length(x.term), x.err)
        if x.kind == "list":
            return V("int", z3.IntVal(len(x.term)), _or([x.err, *(i.err for i in x.term)]))
        raise Unsupported(f"size() of a {x.kind}")

    def _method(self, target: V, name: str, args: list[V]) -> V:
        err = _or([target.err, *(a.err for a in args)])
        if name == "size" and not args:
            return self._size(target)
        if target.kind == "string" and len(args) == 1 and args[0].kind == "string":
            s, a = target.term, args[0].term
            if name == "startsWith":
                return V("bool", z3.PrefixOf(a, s), err)
            if name == "endsWith":
                return V("bool", z3.SuffixOf(a, s), err)
            if name == "contains":
                return V("bool", z3.Contains(s, a), err)
            if name == "indexOf":
                return V("int", z3.IndexOf(s, a, z3.IntVal(0)), err)
            if name == "matches":
                if not z3.is_string_value(a):
                    raise Unsupported("matches() with a computed pattern")
                return V("bool", z3.InRe(s, regex(a.as_string())), err)
        if target.kind == "string" and name in ("charAt", "substring") and args:
            if any(a.kind != "int" for a in args) or len(args) > (1 if name == "charAt" else 2):
                raise Unsupported(f".{name}() with these arguments")
            s = target.term
            n = z3.Length(s)
            start = args[0].term
            if name == "charAt":
                return V("string", z3.SubString(s, start, z3.IntVal(1)), _or([err, start < 0, start > n]))
            stop = args[1].term if len(args) == 2 else n
            bad = _or([start < 0, start > n, stop < 0, stop > n, start > stop])
            return V("string", z3.SubString(s, start, stop - start), _or([err, bad]))
        raise Unsupported(f"the method .{name}() on a {target.kind}")

    def _comprehension(self, n: Comprehension, sc: dict[str, V]) -> V:
        if n.var2 is not None or n.filter is not None or n.macro not in ("all", "exists", "exists_one"):
            raise Unsupported(f"the macro {n.macro}() in this form")
        target = self._e(n.target, sc)
        if target.kind != "list":
            raise Unsupported(
                f"{n.macro}() over {target.term.name if target.kind == 'strset' else target.kind}"
            )
        results = [self._e(n.body, {**sc, n.var: item}) for item in target.term]
        for r in results:
            self._want(r, "bool", n.macro)
        if n.macro == "all":
            v = self._logic("&&", results) if results else V("bool", TRUE)
        elif n.macro == "exists":
            v = self._logic("||", results) if results else V("bool", FALSE)
        else:  # exists_one: every element is evaluated; any error is an error
            count = z3.Sum([z3.If(r.term, 1, 0) for r in results]) if results else z3.IntVal(0)
            v = V("bool", count == 1, _or([r.err for r in results]))
        return V("bool", v.term, _or([target.err, v.err]))


# ---- regular expressions (RE2 subset) to z3 ------------------------------------------------------
_CLASSES = {
    "d": [("0", "9")],
    "w": [("a", "z"), ("A", "Z"), ("0", "9"), ("_", "_")],
    "s": [(" ", " "), ("\t", "\t"), ("\n", "\n"), ("\r", "\r"), ("\f", "\f"), ("\v", "\v")],
}
_META = set("\\^$.|?*+()[]{}")


def _ranges(pairs: list[tuple[str, str]]) -> z3.ReRef:
    parts = [z3.Range(a, b) if a != b else z3.Re(z3.StringVal(a)) for a, b in pairs]
    return parts[0] if len(parts) == 1 else z3.Union(*parts)


class _Re:
    """A small recursive-descent translation of the RE2 syntax conditions use most."""

    def __init__(self, pattern: str):
        self.p = pattern
        self.i = 0

    def peek(self) -> str | None:
        return self.p[self.i] if self.i < len(self.p) else None

    def take(self) -> str:
        c = self.p[self.i]
        self.i += 1
        return c

    def alt(self) -> tuple[z3.ReRef, bool, bool]:
        branches = [self.seq()]
        while self.peek() == "|":
            self.take()
            branches.append(self.seq())
        if len(branches) > 1 and any(b[1] or b[2] for b in branches):
            raise Unsupported("anchors inside an alternation")
        re_, start, end = branches[0]
        if len(branches) > 1:
            re_ = z3.Union(*[b[0] for b in branches])
        return re_, start, end

    def seq(self) -> tuple[z3.ReRef, bool, bool]:
        items: list[z3.ReRef] = []
        start = end = False
        while (self.peek() or "|") not in "|)":
            if self.peek() == "^":
                if items:
                    raise Unsupported("'^' that is not at the start")
                self.take()
                start = True
                continue
            if self.peek() == "$":
                self.take()
                if self.peek() not in (None, "|", ")"):
                    raise Unsupported("'$' that is not at the end")
                end = True
                continue
            items.append(self.quantified())
        if not items:
            return z3.Re(z3.StringVal("")), start, end
        return (items[0] if len(items) == 1 else z3.Concat(*items)), start, end

    def quantified(self) -> z3.ReRef:
        atom = self.atom()
        while (self.peek() or "") in ("*", "+", "?", "{"):
            c = self.take()
            if self.peek() == "?":
                self.take()  # lazy quantifiers match the same set of strings
            if c == "*":
                atom = z3.Star(atom)
            elif c == "+":
                atom = z3.Plus(atom)
            elif c == "?":
                atom = z3.Option(atom)
            else:
                m = re.match(r"(\d+)(,(\d*))?\}", self.p[self.i :])
                if m is None:
                    raise Unsupported("a malformed {m,n} repetition")
                self.i += m.end()
                lo = int(m.group(1))
                if m.group(2) is None:
                    atom = z3.Loop(atom, lo, lo)
                elif m.group(3) == "":
                    atom = z3.Concat(z3.Loop(atom, lo, lo), z3.Star(atom)) if lo else z3.Star(atom)
                else:
                    atom = z3.Loop(atom, lo, int(m.group(3)))
        return atom

    def atom(self) -> z3.ReRef:
        c = self.take()
        if c == "(":
            if self.p.startswith("?:", self.i):
                self.i += 2
            elif self.peek() == "?":
                raise Unsupported("regex group flags")
            inner, s, e = self.alt()
            if s or e:
                raise Unsupported("anchors inside a group")
            if self.peek() != ")":
                raise Unsupported("an unbalanced regex group")
            self.take()
            return inner
        if c == ".":
            return z3.Diff(z3.AllChar(z3.ReSort(z3.StringSort())), z3.Re(z3.StringVal("\n")))
        if c == "[":
            return self.klass()
        if c == "\\":
            return self.escape(in_class=False)
        if c in "*+?{":
            raise Unsupported(f"a regex starting with '{c}'")
        return z3.Re(z3.StringVal(c))

    def escape(self, in_class: bool) -> z3.ReRef | list[tuple[str, str]]:
        if self.peek() is None:
            raise Unsupported("a trailing backslash")
        c = self.take()
        if c in _CLASSES:
            return _CLASSES[c] if in_class else _ranges(_CLASSES[c])
        if c in _META or c in "-/ ":
            return [(c, c)] if in_class else z3.Re(z3.StringVal(c))
        plain = {"n": "\n", "t": "\t", "r": "\r"}.get(c)
        if plain is not None:
            return [(plain, plain)] if in_class else z3.Re(z3.StringVal(plain))
        raise Unsupported(f"the regex escape \\{c}")

    def klass(self) -> z3.ReRef:
        negate = self.peek() == "^"
        if negate:
            self.take()
        pairs: list[tuple[str, str]] = []
        first = True
        while True:
            if self.peek() is None:
                raise Unsupported("an unterminated character class")
            c = self.take()
            if c == "]" and not first:
                break
            first = False
            if c == "\\":
                got = self.escape(in_class=True)
                assert isinstance(got, list)
                pairs.extend(got)
                continue
            if c == "[":
                raise Unsupported("POSIX or nested character classes")
            if self.peek() == "-" and self.i + 1 < len(self.p) and self.p[self.i + 1] != "]":
                self.take()
                hi = self.take()
                if hi == "\\":
                    raise Unsupported("an escaped class range end")
                pairs.append((c, hi))
            else:
                pairs.append((c, c))
        cls = _ranges(pairs)
        if negate:
            return z3.Diff(z3.AllChar(z3.ReSort(z3.StringSort())), cls)
        return cls


def regex(pattern: str) -> z3.ReRef:
    """The set of strings RE2's partial match of ``pattern`` accepts (CEL ``matches`` searches)."""
    if len(pattern) > 512:
        raise Unsupported("a regular expression longer than 512 characters")
    parser = _Re(pattern)
    body, start, end = parser.alt()
    if parser.i != len(pattern):
        raise Unsupported("an unbalanced ')' in a regular expression")
    anything = z3.Star(z3.AllChar(z3.ReSort(z3.StringSort())))
    parts = ([] if start else [anything]) + [body] + ([] if end else [anything])
    return parts[0] if len(parts) == 1 else z3.Concat(*parts)
