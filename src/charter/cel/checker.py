"""Static checking of a CEL AST against declared root variables: names, fields, types, refs."""

from __future__ import annotations

import difflib
from collections.abc import Mapping

import celpy.celtypes as ct
from celpy.evaluation import CELEvalError

from charter.cel.limits import Limits
from charter.cel.runtime import GLOBAL_FUNCTIONS, METHODS
from charter.cel.syntax import (
    Binary,
    Call,
    Comprehension,
    Cond,
    Ident,
    Index,
    ListLit,
    Lit,
    Logic,
    MapLit,
    Method,
    Node,
    Select,
    Unary,
)
from charter.cel.types import (
    BOOL,
    BYTES,
    DOUBLE,
    DURATION,
    DYN,
    INT,
    NULL,
    STRING,
    TIMESTAMP,
    UINT,
    CelProblem,
    CelType,
    ProblemKind,
)

_ORDERED = frozenset({"int", "uint", "double", "string", "bytes", "bool", "timestamp", "duration"})
_NAMES = {
    "int": "a whole number (int)",
    "uint": "an unsigned number (uint)",
    "double": "a decimal number (double)",
    "string": "a text (string)",
    "bytes": "bytes",
    "bool": "true/false (bool)",
    "null_type": "null",
    "timestamp": "a timestamp",
    "duration": "a duration",
    "list": "a list",
    "map": "a map",
    "object": "a record",
}
_CONVERSIONS = {
    "int": INT,
    "uint": UINT,
    "double": DOUBLE,
    "string": STRING,
    "bool": BOOL,
    "bytes": BYTES,
    "timestamp": TIMESTAMP,
    "duration": DURATION,
}
_ARITH_OK = {
    "+": {("int", "int"), ("uint", "uint"), ("double", "double"), ("string", "string"),
          ("bytes", "bytes"), ("list", "list"), ("timestamp", "duration"),
          ("duration", "timestamp"), ("duration", "duration")},
    "-": {("int", "int"), ("uint", "uint"), ("double", "double"), ("timestamp", "timestamp"),
          ("timestamp", "duration"), ("duration", "duration")},
    "*": {("int", "int"), ("uint", "uint"), ("double", "double")},
    "/": {("int", "int"), ("uint", "uint"), ("double", "double")},
    "%": {("int", "int"), ("uint", "uint")},
}  # fmt: skip


def describe(t: CelType) -> str:
    """A type's name for a policy author."""
    return _NAMES.get(t.kind, str(t))


def _lit_type(v: object) -> CelType:
    if v is None:
        return NULL
    if isinstance(v, ct.BoolType):
        return BOOL
    if isinstance(v, ct.UintType):
        return UINT
    if isinstance(v, ct.IntType):
        return INT
    if isinstance(v, ct.DoubleType):
        return DOUBLE
    if isinstance(v, ct.StringType):
        return STRING
    if isinstance(v, ct.BytesType):
        return BYTES
    return DYN


def _same(a: CelType, b: CelType) -> bool:
    return a.kind == b.kind


class _Checker:
    def __init__(self, text: str, env: Mapping[str, CelType], limits: Limits) -> None:
        self.text = text
        self.env = env
        self.limits = limits
        self.problems: list[CelProblem] = []
        self.refs: set[str] = set()
        self.in_path = False

    def problem(self, kind: ProblemKind, msg: str, n: Node, help: str | None = None) -> None:
        self.problems.append(CelProblem(kind, msg, n.start, n.end, help))

    def src(self, n: Node) -> str:
        return self.text[n.start : n.end]

    def path(self, n: Node, scope: Mapping[str, CelType]) -> str | None:
        """The dotted reference path of a select chain on a root variable, if it is one."""
        if isinstance(n, Ident):
            return None if n.name in scope else n.name
        if isinstance(n, Select):
            p = self.path(n.operand, scope)
            return None if p is None else f"{p}.{n.field}"
        if isinstance(n, Index) and isinstance(n.index, Lit) and isinstance(n.index.value, ct.StringType):
            p = self.path(n.operand, scope)
            return None if p is None else f"{p}.{n.index.value}"
        return None

    def visit(self, n: Node, scope: Mapping[str, CelType], depth: int = 0) -> CelType:
        p = self.path(n, scope)
        outer = self.in_path
        if p is not None:
            if not outer:
                self.refs.add(p)
            self.in_path = True
        try:
            t = getattr(self, "_" + type(n).__name__)(n, scope, depth)
        finally:
            self.in_path = outer
        assert isinstance(t, CelType)
        return t

    def _Lit(self, n: Lit, scope: Mapping[str, CelType], depth: int) -> CelType:
        if isinstance(n.value, CELEvalError):
            self.problem(ProblemKind.TYPE, f"the number {self.src(n)} is out of range", n)
            return DYN
        return _lit_type(n.value)

    def _Ident(self, n: Ident, scope: Mapping[str, CelType], depth: int) -> CelType:
        if n.name in scope:
            return scope[n.name]
        if n.name in self.env:
            return self.env[n.name]
        close = difflib.get_close_matches(n.name, [*self.env, *scope], n=1)
        self.problem(
            ProblemKind.UNKNOWN_NAME,
            f"unknown name '{n.name}'",
            n,
            f"did you mean '{close[0]}'?" if close else None,
        )
        return DYN

    def _field(self, n: Node, operand: Node, t: CelType, name: str) -> CelType:
        if t.kind == "object":
            fields = t.fields or {}
            if name in fields:
                return fields[name]
            if not t.open:
                close = difflib.get_close_matches(name, list(fields), n=1)
                self.problem(
                    ProblemKind.UNKNOWN_NAME,
                    f"unknown field '{name}' of {self.src(operand)}",
                    n,
                    f"did you mean '{close[0]}'?" if close else None,
                )
            return DYN
        if t.kind == "map":
            return t.val or DYN
        if t.kind == "dyn":
            return DYN
        self.problem(
            ProblemKind.TYPE,
            f"{self.src(operand)} is {describe(t)}; it has no field '{name}'",
            n,
        )
        return DYN

    def _Select(self, n: Select, scope: Mapping[str, CelType], depth: int) -> CelType:
        t = self.visit(n.operand, scope, depth)
        return self._field(n, n.operand, t, n.field)

    def _Index(self, n: Index, scope: Mapping[str, CelType], depth: int) -> CelType:
        t = self.visit(n.operand, scope, depth)
        it = self.visit(n.index, scope, depth)
        if isinstance(n.index, Lit) and isinstance(n.index.value, ct.StringType) and t.kind == "object":
            return self._field(n, n.operand, t, str(n.index.value))
        if t.kind == "list":
            if it.kind not in ("int", "dyn"):
                self.problem(
                    ProblemKind.TYPE,
                    f"a list position must be a whole number, not {describe(it)}",
                    n.index,
                )
            return t.elem or DYN
        if t.kind == "map":
            return t.val or DYN
        if t.kind in ("dyn", "object"):
            return DYN
        self.problem(ProblemKind.TYPE, f"{self.src(n.operand)} is {describe(t)}; it cannot "
                     "be indexed with [...]", n)  # fmt: skip
        return DYN

    def _Call(self, n: Call, scope: Mapping[str, CelType], depth: int) -> CelType:
        if n.name == "has":
            if len(n.args) != 1 or not isinstance(n.args[0], Select):
                self.problem(
                    ProblemKind.SYNTAX,
                    "has() needs one field selection, e.g. has(actor.team)",
                    n,
                )
                return BOOL
            sel = n.args[0]
            outer, self.in_path = self.in_path, True
            try:
                t = self.visit(sel.operand, scope, depth)
            finally:
                self.in_path = outer
            if t.kind == "object" and not t.open and sel.field not in (t.fields or {}):
                self._field(sel, sel.operand, t, sel.field)
            p = self.path(sel, scope)
            if p is not None and not self.in_path:
                self.refs.add(p)
            return BOOL
        if n.name == "dyn":
            if len(n.args) != 1:
                self.problem(ProblemKind.SYNTAX, "dyn() takes exactly one argument", n)
            for a in n.args:
                self.visit(a, scope, depth)
            return DYN
        if n.name not in GLOBAL_FUNCTIONS:
            self.problem(
                ProblemKind.UNSUPPORTED,
                f"unknown or unsupported function '{n.name}()'",
                n,
                _suggest(n.name, GLOBAL_FUNCTIONS),
            )
            return DYN
        args = [self.visit(a, scope, depth) for a in n.args]
        if n.name in ("matches", "contains", "startsWith", "endsWith") and args:
            return self._method_type(n, n.name, args[0], n.args[0], args[1:], n.args[1:])
        if n.name == "size":
            target = n.args[0] if n.args else n
            return self._method_type(n, "size", args[0] if args else DYN, target, args[1:], [])
        if len(args) != 1:
            self.problem(ProblemKind.TYPE, f"{n.name}() takes exactly one argument", n)
        return _CONVERSIONS[n.name]

    def _method_type(
        self, n: Node, name: str, t: CelType, tn: Node, args: list[CelType], an: list[Node]
    ) -> CelType:
        if name == "size":
            if args:
                self.problem(ProblemKind.TYPE, "size() takes no extra arguments", n)
            if t.kind not in ("string", "bytes", "list", "map", "object", "dyn"):
                self.problem(
                    ProblemKind.TYPE,
                    f"size() needs a text, bytes, list or map, but {self.src(tn)} is {describe(t)}",
                    n,
                )
            return INT
        if name in ("contains", "startsWith", "endsWith", "matches"):
            if len(args) != 1:
                self.problem(ProblemKind.TYPE, f"{name}() takes exactly one argument", n)
                return BOOL
            if t.kind not in ("string", "dyn") and not (name == "contains" and t.kind in (
                    "list", "map", "bytes")):  # fmt: skip
                self.problem(
                    ProblemKind.TYPE,
                    f"{name}() needs a text, but {self.src(tn)} is {describe(t)}",
                    n,
                )
            elif t.kind == "string" and args[0].kind not in ("string", "dyn"):
                self.problem(
                    ProblemKind.TYPE,
                    f"{name}() needs a text argument, not {describe(args[0])}",
                    an[0],
                )
            if name == "matches" and an:
                arg = an[0]
                if (
                    isinstance(arg, Lit)
                    and isinstance(arg.value, str)
                    and len(arg.value) > self.limits.max_regex_length
                ):
                    self.problem(
                        ProblemKind.TOO_COMPLEX,
                        f"the pattern is too long (the limit is {self.limits.max_regex_length} characters)",
                        arg,
                    )
            return BOOL
        # timestamp / duration accessors
        if t.kind not in ("timestamp", "duration", "dyn"):
            self.problem(
                ProblemKind.TYPE,
                f"{name}() needs a timestamp or duration, but {self.src(tn)} is {describe(t)}",
                n,
            )
        return INT

    def _Method(self, n: Method, scope: Mapping[str, CelType], depth: int) -> CelType:
        t = self.visit(n.target, scope, depth)
        args = [self.visit(a, scope, depth) for a in n.args]
        if n.name not in METHODS:
            self.problem(
                ProblemKind.UNSUPPORTED,
                f"unknown or unsupported method '{n.name}()'",
                n,
                _suggest(n.name, METHODS),
            )
            return DYN
        return self._method_type(n, n.name, t, n.target, args, n.args)

    def _ListLit(self, n: ListLit, scope: Mapping[str, CelType], depth: int) -> CelType:
        ts = [self.visit(a, scope, depth) for a in n.items]
        if ts and all(_same(t, ts[0]) for t in ts) and ts[0].kind not in ("list", "map"):
            return CelType.LIST(ts[0])
        return CelType.LIST(DYN)

    def _MapLit(self, n: MapLit, scope: Mapping[str, CelType], depth: int) -> CelType:
        ks = [self.visit(k, scope, depth) for k, _ in n.entries]
        vs = [self.visit(v, scope, depth) for _, v in n.entries]
        kt = ks[0] if ks and all(_same(k, ks[0]) for k in ks) else DYN
        vt = vs[0] if vs and all(_same(v, vs[0]) for v in vs) and vs[0].kind not in (
            "list", "map", "object") else DYN  # fmt: skip
        return CelType.MAP(kt, vt)

    def _bool_operand(self, n: Node, t: CelType, what: str) -> None:
        if t.kind not in ("bool", "dyn"):
            self.problem(
                ProblemKind.TYPE,
                f"{what} needs true/false values, but {self.src(n)} is {describe(t)}",
                n,
            )

    def _Unary(self, n: Unary, scope: Mapping[str, CelType], depth: int) -> CelType:
        t = self.visit(n.operand, scope, depth)
        if n.op == "!":
            self._bool_operand(n.operand, t, "'!'")
            return BOOL
        if t.kind not in ("int", "double", "dyn"):
            self.problem(ProblemKind.TYPE, f"cannot negate {describe(t)}", n)
            return DYN
        return t

    def _Binary(self, n: Binary, scope: Mapping[str, CelType], depth: int) -> CelType:
        a = self.visit(n.left, scope, depth)
        b = self.visit(n.right, scope, depth)
        op = n.op
        if "dyn" in (a.kind, b.kind):
            return BOOL if op in ("<", "<=", ">", ">=", "==", "!=", "in") else DYN
        if op in ("==", "!="):
            if a.kind != b.kind and "null_type" not in (a.kind, b.kind) and not (
                {a.kind, b.kind} <= {"map", "object"}):  # fmt: skip
                self._mismatch(n, a, b, op)
            return BOOL
        if op in ("<", "<=", ">", ">="):
            if a.kind != b.kind or a.kind not in _ORDERED:
                self._mismatch(n, a, b, op)
            return BOOL
        if op == "in":
            if b.kind == "list":
                e = b.elem or DYN
                if not e.is_dyn and e.kind != a.kind:
                    self._mismatch(n, a, e, "in", container=True)
            elif b.kind == "map":
                k = b.key or DYN
                if not k.is_dyn and k.kind != a.kind:
                    self._mismatch(n, a, k, "in", container=True)
            elif b.kind != "object":
                self.problem(
                    ProblemKind.TYPE,
                    f"'in' needs a list or map on its right, but {self.src(n.right)} is {describe(b)}",
                    n.right,
                )
            return BOOL
        if (a.kind, b.kind) not in _ARITH_OK[op]:
            self.problem(
                ProblemKind.TYPE,
                f"'{op}' cannot be used with {describe(a)} and {describe(b)}",
                n,
                _numeric_help(a, b),
            )
            return DYN
        if a.kind == "timestamp" and b.kind == "timestamp":
            return DURATION
        if "timestamp" in (a.kind, b.kind):
            return TIMESTAMP
        return a if a.kind != "list" else CelType.LIST(DYN)

    def _mismatch(self, n: Binary, a: CelType, b: CelType, op: str, container: bool = False) -> None:
        if container:
            msg = f"'in' looks for {describe(a)} among values that are {describe(b)}"
        else:
            msg = f"'{op}' compares {describe(a)} with {describe(b)}"
        self.problem(ProblemKind.TYPE, msg, n, _numeric_help(a, b))

    def _Logic(self, n: Logic, scope: Mapping[str, CelType], depth: int) -> CelType:
        for x in n.operands:
            self._bool_operand(x, self.visit(x, scope, depth), f"'{n.op}'")
        return BOOL

    def _Cond(self, n: Cond, scope: Mapping[str, CelType], depth: int) -> CelType:
        self._bool_operand(n.cond, self.visit(n.cond, scope, depth), "'? :'")
        a = self.visit(n.then, scope, depth)
        b = self.visit(n.other, scope, depth)
        return a if a == b else DYN

    def _Comprehension(self, n: Comprehension, scope: Mapping[str, CelType], depth: int) -> CelType:
        if depth + 1 > self.limits.max_comprehension_nesting:
            self.problem(
                ProblemKind.TOO_COMPLEX,
                f"too many nested {n.macro}() (the limit is {self.limits.max_comprehension_nesting})",
                n,
            )
            return DYN
        t = self.visit(n.target, scope, depth)
        if t.kind == "list":
            vt = t.elem or DYN
        elif t.kind == "map":
            vt = t.key or DYN
        elif t.kind == "object":
            vt = STRING
        elif t.kind == "dyn":
            vt = DYN
        else:
            self.problem(
                ProblemKind.TYPE,
                f"{n.macro}() needs a list or map, but {self.src(n.target)} is {describe(t)}",
                n,
            )
            vt = DYN
        inner = {**scope, n.var: vt}
        bt = self.visit(n.body, inner, depth + 1)
        if n.macro == "map":
            return CelType.LIST(bt if bt.kind not in ("list", "map", "object") else DYN)
        if n.macro == "filter":
            self._bool_operand(n.body, bt, f"{n.macro}()")
            return t if t.kind == "list" else CelType.LIST(vt)
        self._bool_operand(n.body, bt, f"{n.macro}()")
        return BOOL


def _numeric_help(a: CelType, b: CelType) -> str | None:
    kinds = {a.kind, b.kind}
    if kinds == {"int", "double"}:
        return "write whole numbers as decimals (e.g. 100.0) or convert with double(...)"
    if kinds == {"int", "uint"}:
        return "convert with int(...) or uint(...)"
    if "string" in kinds and kinds & {"int", "double", "uint"}:
        return "remove the quotes around the number, or convert with int(...)/string(...)"
    return None


def _suggest(name: str, options: frozenset[str]) -> str | None:
    close = difflib.get_close_matches(name, sorted(options), n=1)
    return f"did you mean '{close[0]}'?" if close else None


def check(
    node: Node, text: str, env: Mapping[str, CelType], limits: Limits
) -> tuple[CelType, frozenset[str], list[CelProblem]]:
    """Type-check `node`; return (result type, dotted reference paths, problems)."""
    c = _Checker(text, env, limits)
    t = c.visit(node, {})
    return t, frozenset(c.refs), c.problems
