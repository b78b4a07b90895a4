"""Static checking of a CEL AST against declared variables: names, fields, every function's types.

The checker gives each node a type (langdef "Type Checking"): ``dyn`` defers to run time, an
object type (``CelType.OBJECT``) is a record with known fields, and every function call is
resolved against the overloads declared in :mod:`charter.cel.library`. It also collects the
dotted paths of the variables a condition reads (``references``), and rejects reads of fields
that only some of the possible requests have (``CelType.OBJECT(..., partial=...)``) unless a
``has()`` test guards them.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from charter.cel.grants import GRANTS
from charter.cel.inline import Definition, Definitions
from charter.cel.library import GLOBALS, MACROS, MEMBERS
from charter.cel.limits import Limits
from charter.cel.provenance import PROVENANCE
from charter.cel.regex import RegexError, compile_pattern
from charter.cel.signatures import Function, Overload
from charter.cel.syntax import (
    Binary,
    Bind,
    Call,
    Comprehension,
    Cond,
    Has,
    Ident,
    Index,
    ListLit,
    Lit,
    Logic,
    MapLit,
    Method,
    Node,
    OptMap,
    Select,
    Unary,
    dotted,
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
    TYPE,
    UINT,
    CelProblem,
    CelType,
    ProblemKind,
    UInt,
)
from charter.cel.values import TYPE_NAMES

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
    "type": "a type",
    "optional": "an optional value",
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
_CONTAINERS = frozenset({"map", "object"})


def describe(t: CelType) -> str:
    """A type's name for a policy author."""
    if t.kind == "opaque":
        return t.name
    return _NAMES.get(t.kind, str(t))


def _lit_type(v: object) -> CelType:
    t = type(v)
    if v is None:
        return NULL
    if t is bool:
        return BOOL
    if t is UInt:
        return UINT
    if t is int:
        return INT
    if t is float:
        return DOUBLE
    if t is str:
        return STRING
    if t is bytes:
        return BYTES
    return DYN


def _same(a: CelType, b: CelType) -> bool:
    if a.kind != b.kind:
        return False
    if a.kind == "list" or a.kind == "optional":
        return _same(a.elem or DYN, b.elem or DYN) or (a.elem or DYN).is_dyn or (b.elem or DYN).is_dyn
    if a.kind == "opaque":
        return a.name == b.name
    return True


def _join(ts: list[CelType]) -> CelType:
    """The common type of several values (dyn when they differ)."""
    if not ts:
        return DYN
    first = ts[0]
    if all(_same(t, first) for t in ts):
        return first
    return DYN


class _Checker:
    def __init__(
        self, text: str, env: Mapping[str, CelType], limits: Limits, defs: Definitions | None = None
    ) -> None:
        self.text = text
        self.env = env
        self.limits = limits
        self.defs = defs
        self.problems: list[CelProblem] = []
        self.refs: set[str] = set()
        self.in_path = False
        self.dotted = any("." in k for k in env) if isinstance(env, dict) else True
        #: paths a has() test has shown present, where the code being checked runs
        self.guarded: set[str] = set()

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
        if isinstance(n, Index) and isinstance(n.index, Lit) and type(n.index.value) is str:
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

    # -- names and fields ---------------------------------------------------------------------------
    def _Lit(self, n: Lit, scope: Mapping[str, CelType], depth: int) -> CelType:
        return _lit_type(n.value)

    def _Ident(self, n: Ident, scope: Mapping[str, CelType], depth: int) -> CelType:
        if n.name in scope:
            return scope[n.name]
        if n.name in self.env:
            return self.env[n.name]
        if n.name in TYPE_NAMES:
            return CelType("type", elem=CelType(n.name))
        close = difflib.get_close_matches(n.name, [*self.env, *scope], n=1)
        self.problem(
            ProblemKind.UNKNOWN_NAME,
            f"unknown name '{n.name}'",
            n,
            f"did you mean '{close[0]}'?" if close else None,
        )
        return DYN

    def _field(self, n: Node, operand: Node, t: CelType, name: str, scope: Mapping[str, CelType],
               guarded: bool = False) -> CelType:  # fmt: skip
        if t.kind == "object":
            fields = t.fields or {}
            if name in fields:
                if t.partial and name in t.partial and not guarded:
                    p = self.path(n, scope)
                    if p is None or p not in self.guarded:
                        self.problem(
                            ProblemKind.UNGUARDED,
                            f"'{name}' is not declared by every tool this rule applies to "
                            f"({t.partial[name]}), so {self.src(operand)}.{name} may be missing",
                            n,
                            f"guard it: has({self.src(operand)}.{name}) && ..., or narrow the rule's "
                            f"'action call' to the tools that declare it",
                        )
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
            if t.key is not None and t.key.kind not in ("string", "dyn"):
                self.problem(ProblemKind.TYPE, f"{self.src(operand)} is a map with {describe(t.key)} "
                             f"keys; '.{name}' reads a text key", n)  # fmt: skip
            return t.val or DYN
        if t.kind == "dyn":
            return DYN
        if t.kind == "optional":
            inner = self._field(n, operand, t.elem or DYN, name, scope, guarded=True)
            return CelType.OPTIONAL(inner)
        self.problem(
            ProblemKind.TYPE,
            f"{self.src(operand)} is {describe(t)}; it has no field '{name}'",
            n,
        )
        return DYN

    def _qualified(self, n: Select, scope: Mapping[str, CelType]) -> CelType | None:
        parts = dotted(n, scope)
        if parts is None:
            return None
        full = ".".join(parts)
        if full in TYPE_NAMES and full not in self.env:
            return CelType("type", elem=CelType(full))
        if full in ("net.IP", "net.CIDR", "kubernetes.URL"):
            return CelType("type", elem=CelType.OPAQUE(full))
        if not self.dotted:
            return None
        for k in range(len(parts), 1, -1):
            name = ".".join(parts[:k])
            if name in self.env:
                t = self.env[name]
                for f in parts[k:]:
                    t = self._field(n, n.operand, t, f, scope)
                return t
        return None

    def _Select(self, n: Select, scope: Mapping[str, CelType], depth: int) -> CelType:
        if not n.optional:
            q = self._qualified(n, scope)
            if q is not None:
                return q
        t = self.visit(n.operand, scope, depth)
        if n.optional:
            if t.kind not in ("map", "object", "dyn", "optional"):
                self.problem(ProblemKind.TYPE, f"'.?{n.field}' needs a map, but {self.src(n.operand)} is "
                             f"{describe(t)}", n)  # fmt: skip
                return CelType.OPTIONAL(DYN)
            inner = t.elem or DYN if t.kind == "optional" else t
            ft = self._field(n, n.operand, inner, n.field, scope, guarded=True)
            return CelType.OPTIONAL(ft)
        return self._field(n, n.operand, t, n.field, scope)

    def _Has(self, n: Has, scope: Mapping[str, CelType], depth: int) -> CelType:
        outer, self.in_path = self.in_path, True
        try:
            t = self.visit(n.operand, scope, depth)
        finally:
            self.in_path = outer
        if t.kind == "object" and not t.open and n.field not in (t.fields or {}):
            self._field(Select(n.start, n.end, n.operand, n.field), n.operand, t, n.field, scope)
        elif t.kind not in ("object", "map", "dyn", "optional"):
            self.problem(ProblemKind.TYPE, f"has() needs a field of a map or record, but "
                         f"{self.src(n.operand)} is {describe(t)}", n)  # fmt: skip
        p = self.path(Select(n.start, n.end, n.operand, n.field), scope)
        if p is not None and not self.in_path:
            self.refs.add(p)
        return BOOL

    def _Index(self, n: Index, scope: Mapping[str, CelType], depth: int) -> CelType:
        t = self.visit(n.operand, scope, depth)
        it = self.visit(n.index, scope, depth)
        wrap = n.optional or t.kind == "optional"
        if t.kind == "optional":
            t = t.elem or DYN
        result = self._index_type(n, t, it, scope, wrap)
        return CelType.OPTIONAL(result) if wrap else result

    def _index_type(self, n: Index, t: CelType, it: CelType, scope: Mapping[str, CelType],
                    guarded: bool) -> CelType:  # fmt: skip
        if isinstance(n.index, Lit) and type(n.index.value) is str and t.kind == "object":
            return self._field(n, n.operand, t, n.index.value, scope, guarded)
        if t.kind == "list":
            if it.kind not in ("int", "uint", "dyn"):
                self.problem(
                    ProblemKind.TYPE,
                    f"a list position must be a whole number, not {describe(it)}",
                    n.index,
                )
            return t.elem or DYN
        if t.kind == "map":
            k = t.key or DYN
            if not (k.is_dyn or it.is_dyn or k.kind == it.kind
                    or {k.kind, it.kind} <= {"int", "uint", "double"}):  # fmt: skip
                self.problem(ProblemKind.TYPE, f"{self.src(n.operand)} has {describe(k)} keys, not "
                             f"{describe(it)}", n.index)  # fmt: skip
            return t.val or DYN
        if t.kind in ("dyn", "object"):
            return DYN
        self.problem(ProblemKind.TYPE, f"{self.src(n.operand)} is {describe(t)}; it cannot "
                     "be indexed with [...]", n)  # fmt: skip
        return DYN

    # -- functions --------------------------------------------------------------------------------
    def _Call(self, n: Call, scope: Mapping[str, CelType], depth: int) -> CelType:
        if self.defs is not None and n.name in self.defs.conditions:
            return self._named(n, self.defs.conditions[n.name], scope, depth)
        f = GLOBALS.get(n.name)
        if f is None:
            hint = _suggest(n.name, [*GLOBALS, *MACROS, *(self.defs.conditions if self.defs else ())])
            if n.name in MEMBERS:
                hint = f"{n.name}() is called on a value: x.{n.name}(...)"
            self.problem(ProblemKind.UNSUPPORTED, f"unknown or unsupported function '{n.name}()'", n, hint)
            return DYN
        args = [self.visit(a, scope, depth) for a in n.args]
        if n.name == "matches" and len(n.args) == 2:
            self._pattern(n.args[1])
        if n.name == "labels" or n.name == "sources":
            self.refs.add(PROVENANCE)  # reads the activation's provenance data, not only its argument
        if n.name == "granted":
            self.refs.add(GRANTS)  # reads the run's grants from the activation
        return self._resolve(n, f, args, n.args)

    def _named(self, n: Call, d: Definition, scope: Mapping[str, CelType], depth: int) -> CelType:
        """A call of a named condition: arguments checked against its parameters; gives bool."""
        args = [self.visit(a, scope, depth) for a in n.args]
        if len(args) != len(d.params):
            self.problem(ProblemKind.TYPE, f"{d.name}() takes {len(d.params)} argument"
                         f"{'' if len(d.params) == 1 else 's'}, not {len(args)}", n,
                         f"it is declared as {d.signature}")  # fmt: skip
            return BOOL
        for (pname, ptype), a, node in zip(d.params, args, n.args, strict=True):
            if _match(Overload((ptype,), BOOL), [a]) is None:
                self.problem(ProblemKind.TYPE, f"{d.name}() needs {describe(ptype)} for {pname}, but "
                             f"{self.src(node)} is {describe(a)}", node,
                             f"it is declared as {d.signature}")  # fmt: skip
        captured = sorted(d.roots & set(scope))
        if captured:
            self.problem(ProblemKind.TYPE, f"{d.name}() reads '{captured[0]}', which a macro variable "
                         "here hides", n, f"rename the variable '{captured[0]}'")  # fmt: skip
        self.refs.update(d.references)
        return BOOL

    def _Method(self, n: Method, scope: Mapping[str, CelType], depth: int) -> CelType:
        t = self.visit(n.target, scope, depth)
        f = MEMBERS.get(n.name)
        if f is None:
            hint = _suggest(n.name, [*MEMBERS, *MACROS])
            if n.name in GLOBALS:
                hint = f"{n.name}() is called as a function: {n.name}(...)"
            self.problem(ProblemKind.UNSUPPORTED, f"unknown or unsupported method '{n.name}()'", n, hint)
            return DYN
        args = [self.visit(a, scope, depth) for a in n.args]
        if n.name == "matches" and len(n.args) == 1:
            self._pattern(n.args[0])
        return self._resolve(n, f, [t, *args], [n.target, *n.args])

    def _pattern(self, arg: Node) -> None:
        if not (isinstance(arg, Lit) and type(arg.value) is str):
            return
        if len(arg.value) > self.limits.max_regex_length:
            self.problem(
                ProblemKind.TOO_COMPLEX,
                f"the pattern is too long (the limit is {self.limits.max_regex_length} characters)",
                arg,
            )
            return
        try:
            compile_pattern(arg.value)
        except RegexError as ex:
            self.problem(ProblemKind.BAD_PATTERN, f"invalid regular expression: {ex}", arg,
                         "matches() takes RE2 syntax; write patterns as raw strings, r'...'")  # fmt: skip

    def _resolve(self, n: Node, f: Function, args: list[CelType], nodes: list[Node]) -> CelType:
        results: list[CelType] = []
        if f.variadic and len(args) > 1:
            if all(a.kind in ("int", "uint", "double", "dyn") for a in args):
                return _join(args)
            results = []
        else:
            for ov in f.overloads:
                r = _match(ov, args)
                if r is not None:
                    results.append(r)
        if not results:
            shown = ", ".join(str(a) for a in args)
            wanted = "; ".join("(" + ", ".join(str(p) for p in ov.params) + ")" for ov in f.overloads[:6])
            self.problem(
                ProblemKind.BAD_CALL,
                f"no matching overload for '{f.name}' applied to ({shown})",
                n,
                f"{f.name} takes {wanted}" if wanted else None,
            )
            return DYN
        return _join(results)

    # -- literals -------------------------------------------------------------------------------------
    def _ListLit(self, n: ListLit, scope: Mapping[str, CelType], depth: int) -> CelType:
        ts = []
        for i, a in enumerate(n.items):
            t = self.visit(a, scope, depth)
            if i in n.optional:
                if t.kind not in ("optional", "dyn"):
                    self.problem(ProblemKind.TYPE, f"'?' needs an optional value, but {self.src(a)} is "
                                 f"{describe(t)}", a)  # fmt: skip
                t = t.elem or DYN if t.kind == "optional" else DYN
            ts.append(t)
        return CelType.LIST(_join(ts))

    def _MapLit(self, n: MapLit, scope: Mapping[str, CelType], depth: int) -> CelType:
        ks = []
        vs = []
        for k, v, opt in n.entries:
            kt = self.visit(k, scope, depth)
            if kt.kind not in ("int", "uint", "string", "bool", "dyn"):
                self.problem(ProblemKind.TYPE, f"a map key must be an int, uint, text or bool, not "
                             f"{describe(kt)}", k)  # fmt: skip
            vt = self.visit(v, scope, depth)
            if opt:
                if vt.kind not in ("optional", "dyn"):
                    self.problem(ProblemKind.TYPE, f"'?' needs an optional value, but {self.src(v)} is "
                                 f"{describe(vt)}", v)  # fmt: skip
                vt = vt.elem or DYN if vt.kind == "optional" else DYN
            ks.append(kt)
            vs.append(vt)
        return CelType.MAP(_join(ks), _join(vs))

    # -- operators -----------------------------------------------------------------------------------
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
        if t.kind not in ("int", "double", "duration", "dyn"):
            self.problem(ProblemKind.TYPE, f"cannot negate {describe(t)}", n)
            return DYN
        return t

    def _Binary(self, n: Binary, scope: Mapping[str, CelType], depth: int) -> CelType:
        a = self.visit(n.left, scope, depth)
        b = self.visit(n.right, scope, depth)
        op = n.op
        if op in ("==", "!="):
            if not _comparable(a, b):
                self._mismatch(n, a, b, op)
            return BOOL
        if "dyn" in (a.kind, b.kind):
            return BOOL if op in ("<", "<=", ">", ">=", "in") else DYN
        if op in ("<", "<=", ">", ">="):
            if a.kind != b.kind or a.kind not in _ORDERED:
                self._mismatch(n, a, b, op)
            return BOOL
        if op == "in":
            if b.kind == "list":
                e = b.elem or DYN
                if not _comparable(a, e):
                    self._mismatch(n, a, e, "in", container=True)
            elif b.kind == "map":
                k = b.key or DYN
                if not _comparable(a, k) and not {a.kind, k.kind} <= {"int", "uint", "double"}:
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
        if a.kind == "list":
            return CelType.LIST(_join([a.elem or DYN, b.elem or DYN]))
        return a

    def _mismatch(self, n: Binary, a: CelType, b: CelType, op: str, container: bool = False) -> None:
        if container:
            msg = f"'in' looks for {describe(a)} among values that are {describe(b)}"
        else:
            msg = f"'{op}' compares {describe(a)} with {describe(b)}"
        self.problem(ProblemKind.TYPE, msg, n, _numeric_help(a, b))

    def _Logic(self, n: Logic, scope: Mapping[str, CelType], depth: int) -> CelType:
        outer = set(self.guarded)
        try:
            for x in n.operands:
                self._bool_operand(x, self.visit(x, scope, depth), f"'{n.op}'")
                self.guarded |= _guards(x, n.op, self, scope)
        finally:
            self.guarded = outer
        return BOOL

    def _Cond(self, n: Cond, scope: Mapping[str, CelType], depth: int) -> CelType:
        self._bool_operand(n.cond, self.visit(n.cond, scope, depth), "'? :'")
        outer = set(self.guarded)
        self.guarded |= _guards(n.cond, "&&", self, scope)
        try:
            a = self.visit(n.then, scope, depth)
        finally:
            self.guarded = outer
        self.guarded |= _guards(n.cond, "||", self, scope)
        try:
            b = self.visit(n.other, scope, depth)
        finally:
            self.guarded = outer
        return _join([a, b])

    # -- macros -------------------------------------------------------------------------------------
    def _Bind(self, n: Bind, scope: Mapping[str, CelType], depth: int) -> CelType:
        t = self.visit(n.init, scope, depth)
        return self.visit(n.body, {**scope, n.var: t}, depth)

    def _OptMap(self, n: OptMap, scope: Mapping[str, CelType], depth: int) -> CelType:
        t = self.visit(n.target, scope, depth)
        if t.kind not in ("optional", "dyn"):
            self.problem(ProblemKind.TYPE, f"{'optFlatMap' if n.flat else 'optMap'}() needs an optional "
                         f"value, but {self.src(n.target)} is {describe(t)}", n)  # fmt: skip
        bt = self.visit(n.body, {**scope, n.var: t.elem or DYN}, depth)
        if n.flat:
            return bt if bt.kind == "optional" else CelType.OPTIONAL(DYN)
        return CelType.OPTIONAL(bt)

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
            first, second = (INT, t.elem or DYN) if n.var2 else (t.elem or DYN, DYN)
        elif t.kind == "map":
            first, second = t.key or DYN, t.val or DYN
        elif t.kind == "object":
            first, second = STRING, DYN
        elif t.kind == "dyn":
            first, second = DYN, DYN
        else:
            self.problem(
                ProblemKind.TYPE,
                f"{n.macro}() needs a list or map, but {self.src(n.target)} is {describe(t)}",
                n,
            )
            first, second = DYN, DYN
        if n.macro == "transformMap" and t.kind == "list" and n.var2:
            first = INT
        inner = {**scope, n.var: first}
        if n.var2:
            inner[n.var2] = second
        if n.filter is not None:
            self._bool_operand(n.filter, self.visit(n.filter, inner, depth + 1), f"{n.macro}()")
        bt = self.visit(n.body, inner, depth + 1)
        macro = n.macro
        if macro in ("map", "transformList"):
            return CelType.LIST(bt)
        if macro == "transformMap":
            return CelType.MAP(first if t.kind in ("map", "list") else DYN, bt)
        if macro == "transformMapEntry":
            if bt.kind not in ("map", "dyn"):
                self.problem(ProblemKind.TYPE, f"transformMapEntry() needs a map entry such as {{k: v}}, "
                             f"not {describe(bt)}", n.body)  # fmt: skip
            return bt if bt.kind == "map" else CelType.MAP(DYN, DYN)
        if macro == "sortBy":
            if bt.kind not in _ORDERED and bt.kind != "dyn":
                self.problem(ProblemKind.TYPE, f"sortBy() needs keys that can be ordered, not "
                             f"{describe(bt)}", n.body)  # fmt: skip
            return t if t.kind == "list" else CelType.LIST(DYN)
        if macro == "filter":
            self._bool_operand(n.body, bt, f"{macro}()")
            return t if t.kind == "list" else CelType.LIST(first)
        self._bool_operand(n.body, bt, f"{macro}()")
        return BOOL


def _guards(n: Node, op: str, c: _Checker, scope: Mapping[str, CelType]) -> set[str]:
    """Paths a condition proves present for what follows it in an ``op`` chain.

    After ``has(p)`` in an ``&&`` chain (or ``!has(p)`` in an ``||`` chain) ``p`` is present.
    """
    out: set[str] = set()
    if op == "&&":
        if isinstance(n, Has):
            p = c.path(Select(n.start, n.end, n.operand, n.field), scope)
            if p is not None:
                out.add(p)
        elif isinstance(n, Logic) and n.op == "&&":
            for x in n.operands:
                out |= _guards(x, "&&", c, scope)
    elif isinstance(n, Unary) and n.op == "!":
        out |= _guards(n.operand, "&&", c, scope)
    elif isinstance(n, Logic) and n.op == "||":
        for x in n.operands:
            out |= _guards(x, "||", c, scope)
    return out


def _comparable(a: CelType, b: CelType) -> bool:
    """Whether ``a == b`` type-checks: the same type, dyn, null, or records and maps."""
    if a.is_dyn or b.is_dyn or "null_type" in (a.kind, b.kind):
        return True
    if a.kind in _CONTAINERS and b.kind in _CONTAINERS:
        return True
    if a.kind != b.kind:
        return False
    if a.kind in ("list", "optional"):
        return _comparable(a.elem or DYN, b.elem or DYN)
    if a.kind == "map":
        return _comparable(a.key or DYN, b.key or DYN) and _comparable(a.val or DYN, b.val or DYN)
    if a.kind == "opaque":
        return a.name == b.name
    return True


def _bind(param: CelType, arg: CelType, binds: dict[str, CelType]) -> bool:
    if param.kind == "param":
        bound = binds.get(param.name)
        if bound is None or bound.is_dyn:
            binds[param.name] = arg
            return True
        return arg.is_dyn or _same(bound, arg) or "null_type" in (bound.kind, arg.kind)
    if param.is_dyn or arg.is_dyn:
        return True
    if param.kind == "list":
        if arg.kind != "list":
            return False
        return _bind(param.elem or DYN, arg.elem or DYN, binds)
    if param.kind == "optional":
        if arg.kind != "optional":
            return False
        return _bind(param.elem or DYN, arg.elem or DYN, binds)
    if param.kind == "map":
        if arg.kind == "object":
            return _bind(param.key or DYN, STRING, binds) and _bind(param.val or DYN, DYN, binds)
        if arg.kind != "map":
            return False
        return _bind(param.key or DYN, arg.key or DYN, binds) and _bind(
            param.val or DYN, arg.val or DYN, binds
        )
    if param.kind == "type":
        return arg.kind == "type"
    if param.kind == "opaque":
        return arg.kind == "opaque" and arg.name == param.name
    return param.kind == arg.kind


def _subst(t: CelType, binds: dict[str, CelType]) -> CelType:
    if t.kind == "param":
        return binds.get(t.name, DYN)
    if t.kind == "list":
        return CelType.LIST(_subst(t.elem or DYN, binds))
    if t.kind == "optional":
        return CelType.OPTIONAL(_subst(t.elem or DYN, binds))
    if t.kind == "map":
        return CelType.MAP(_subst(t.key or DYN, binds), _subst(t.val or DYN, binds))
    return t


def _match(ov: Overload, args: list[CelType]) -> CelType | None:
    if len(ov.params) != len(args):
        return None
    binds: dict[str, CelType] = {}
    for p, a in zip(ov.params, args, strict=True):
        if not _bind(p, a, binds):
            return None
    if ov.result.kind == "type" and ov.params and args:
        return CelType("type", elem=args[0])
    return _subst(ov.result, binds)


def _numeric_help(a: CelType, b: CelType) -> str | None:
    kinds = {a.kind, b.kind}
    if kinds == {"int", "double"}:
        return "write whole numbers as decimals (e.g. 100.0) or convert with double(...)"
    if kinds == {"int", "uint"}:
        return "convert with int(...) or uint(...)"
    if "string" in kinds and kinds & {"int", "double", "uint"}:
        return "remove the quotes around the number, or convert with int(...)/string(...)"
    return None


def _suggest(name: str, options: list[str]) -> str | None:
    close = difflib.get_close_matches(name, sorted(set(options)), n=1)
    return f"did you mean '{close[0]}'?" if close else None


def check(
    node: Node, text: str, env: Mapping[str, CelType], limits: Limits, defs: Definitions | None = None
) -> tuple[CelType, frozenset[str], list[CelProblem]]:
    """Type-check ``node``; return (result type, dotted reference paths, problems).

    ``defs``: the named conditions calls may name (constants are declared in ``env``).
    """
    c = _Checker(text, env, limits, defs)
    t = c.visit(node, {})
    return t, frozenset(c.refs), c.problems


__all__ = ["DOUBLE", "TYPE", "check", "describe"]
