"""The evaluator: an AST compiled once into nested Python closures, evaluated with a cost budget.

Errors are exceptions (:class:`EvalError`); ``&&``, ``||``, ``?:`` and the ``all``/``exists``
macros absorb them as the language definition says ("Logical operators": commutative, an error
loses to a deciding value). :class:`CostExceeded` is never absorbed: it ends the evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from charter.cel import grants, optionals, provenance
from charter.cel.library import GLOBALS, MEMBERS
from charter.cel.limits import FREE_TEXT, Budget, Limits, elements_cost, text_cost
from charter.cel.regex import Matcher, cached_pattern, compile_pattern
from charter.cel.stdlib import (
    MISSING,
    add,
    check_key,
    contains_elem,
    div,
    equals,
    greater,
    greater_eq,
    less,
    less_eq,
    logical_not,
    map_get,
    mod,
    mul,
    neg,
    no_overload,
    sub,
)
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
    size,
)
from charter.cel.types import UInt
from charter.cel.values import (
    PLAIN,
    TYPE_NAMES,
    CostExceeded,
    EvalError,
    Optional,
    TypeValue,
    kind_name,
    normalise,
)


class _Lazy:
    """A ``cel.bind`` variable not evaluated yet: its initialiser and the variables it sees."""

    __slots__ = ("init", "scope", "value")

    def __init__(self, init: Fn, scope: dict[str, Any]) -> None:
        self.init = init
        self.scope = scope
        self.value: Any = _UNSET

    def force(self, st: State) -> Any:
        if self.value is _UNSET:
            outer = st.locals
            st.locals = self.scope
            try:
                self.value = self.init(st)
            finally:
                st.locals = outer
        return self.value


_UNSET: Any = object()


class State(Budget):
    """One evaluation: the activation, comprehension variables and the cost budget."""

    __slots__ = ("act", "locals")

    def __init__(self, act: Mapping[str, Any], max_cost: int) -> None:
        super().__init__(max_cost)
        self.act = act
        self.locals: dict[str, Any] = {}


Fn = Callable[[State], Any]

_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "<": less,
    "<=": less_eq,
    ">": greater,
    ">=": greater_eq,
    "+": add,
    "-": sub,
    "*": mul,
    "/": div,
    "%": mod,
}
_MISSING_LOCAL = object()


def _read(v: Any) -> Any:
    """A value read from the activation or a container, as a CEL value."""
    return v if type(v) in PLAIN else normalise(v)


def select_field(m: Any, field: str) -> Any:
    """``m.field`` on a map (or an optional, which gives an optional)."""
    if type(m) is dict:
        v = m.get(field, MISSING)
        if v is MISSING:
            raise EvalError(f"no such key: '{field}'")
        return v if type(v) in PLAIN else normalise(v)
    if type(m) is Optional:
        return optionals.select(m, field)
    raise EvalError(f"type '{kind_name(m)}' does not support field selection")


def index_value(m: Any, i: Any) -> Any:
    """``m[i]`` on a list (int, uint or integral double index) or a map."""
    tm = type(m)
    if tm is list or tm is tuple:
        ti = type(i)
        if ti is not int:
            if ti is UInt or (ti is float and i.is_integer()):
                i = int(i)
            else:
                raise EvalError(f"invalid_argument: no such overload for index of list with {kind_name(i)}")
        if 0 <= i < len(m):
            v = m[i]
            return v if type(v) in PLAIN else normalise(v)
        raise EvalError(f"invalid_argument: index out of range: {i}")
    if tm is dict:
        v = map_get(m, i)
        if v is MISSING:
            raise EvalError(f"no such key: {i!r}")
        return v if type(v) in PLAIN else normalise(v)
    if tm is Optional:
        return optionals.index(m, i)
    raise EvalError(f"no such overload: index of {kind_name(m)}")


def _iterate(name: str, target: Any) -> Any:
    t = type(target)
    if t is list or t is tuple or t is dict:
        return target
    raise no_overload(name, target)


class Compiler:
    """Compiles an AST into closures. ``declared`` names the variables (None: any name)."""

    def __init__(self, limits: Limits, declared: Mapping[str, Any] | None = None) -> None:
        self.limits = limits
        self.declared = declared

    def compile(self, node: Node, scope: frozenset[str] = frozenset()) -> Fn:
        """The closure evaluating ``node`` with the comprehension variables in ``scope``."""
        method = getattr(self, "_" + type(node).__name__)
        fn: Fn = method(node, scope)
        return fn

    # -- names ------------------------------------------------------------------------------------
    def _Lit(self, n: Lit, scope: frozenset[str]) -> Fn:
        v = n.value
        return lambda st: v

    def _variable(self, name: str) -> Fn:
        def variable(st: State) -> Any:
            act = st.act
            try:
                v = act[name]
            except KeyError:
                raise EvalError(f"undeclared reference to '{name}'") from None
            return v if type(v) in PLAIN else normalise(v)

        return variable

    def _is_declared(self, name: str) -> bool:
        return self.declared is None or name in self.declared

    def _Ident(self, n: Ident, scope: frozenset[str]) -> Fn:
        name = n.name
        if name in scope:

            def local(st: State) -> Any:
                v = st.locals[name]
                return v.force(st) if type(v) is _Lazy else v

            return local
        if name in TYPE_NAMES and (self.declared is None or name not in self.declared):
            tv = TYPE_NAMES[name]
            if self.declared is None:
                return self._type_or_variable(name, tv)
            return lambda st: tv
        return self._variable(name)

    def _type_or_variable(self, name: str, tv: TypeValue) -> Fn:
        def type_or_variable(st: State) -> Any:
            return _read(st.act[name]) if name in st.act else tv

        return type_or_variable

    def _Select(self, n: Select, scope: frozenset[str]) -> Fn:
        qualified = self._qualified(n, scope)
        if qualified is not None:
            return qualified
        operand = self.compile(n.operand, scope)
        field = n.field
        if n.optional:
            return lambda st: optionals.select(operand(st), field)

        def select(st: State) -> Any:
            m = operand(st)
            if type(m) is dict:
                v = m.get(field, MISSING)
                if v is MISSING:
                    raise EvalError(f"no such key: '{field}'")
                return v if type(v) in PLAIN else normalise(v)
            return select_field(m, field)

        return select

    def _qualified(self, n: Select, scope: frozenset[str]) -> Fn | None:
        """A dotted name (``a.b.c``) that names a variable or a type, resolved longest first."""
        parts = dotted(n, scope)
        if parts is None:
            return None
        if self.declared is None:
            return self._dynamic_qualified(parts)
        for k in range(len(parts), 1, -1):
            name = ".".join(parts[:k])
            if name in self.declared:
                base = self._variable(name)
                return self._select_chain(base, parts[k:])
            if k == len(parts) and name in TYPE_NAMES:
                tv = TYPE_NAMES[name]
                return lambda st: tv
        return None

    def _dynamic_qualified(self, parts: list[str]) -> Fn:
        candidates = [(".".join(parts[:k]), parts[k:]) for k in range(len(parts), 0, -1)]
        full = ".".join(parts)

        def qualified(st: State) -> Any:
            act = st.act
            for name, rest in candidates:
                if name in act:
                    v = _read(act[name])
                    for f in rest:
                        v = select_field(v, f)
                    return v
            if full in TYPE_NAMES:
                return TYPE_NAMES[full]
            raise EvalError(f"undeclared reference to '{parts[0]}'")

        return qualified

    @staticmethod
    def _select_chain(base: Fn, fields: list[str]) -> Fn:
        if not fields:
            return base

        def chain(st: State) -> Any:
            v = base(st)
            for f in fields:
                v = select_field(v, f)
            return v

        return chain

    def _Has(self, n: Has, scope: frozenset[str]) -> Fn:
        operand = self.compile(n.operand, scope)
        field = n.field

        def has(st: State) -> bool:
            m = operand(st)
            if type(m) is dict:
                return field in m
            if type(m) is Optional:
                return m.present and type(m.value) is dict and field in m.value
            raise EvalError(f"no such overload: has() on {kind_name(m)}")

        return has

    def _Index(self, n: Index, scope: frozenset[str]) -> Fn:
        operand = self.compile(n.operand, scope)
        index = self.compile(n.index, scope)
        if n.optional:
            return lambda st: optionals.index(operand(st), index(st))
        return lambda st: index_value(operand(st), index(st))

    # -- calls ------------------------------------------------------------------------------------
    def _call(self, name: str, members: bool, args: list[Fn], literal_pattern: str | None) -> Fn:
        table = MEMBERS if members else GLOBALS
        f = table.get(name)
        if f is None:

            def unbound(st: State) -> Any:
                for a in args:
                    a(st)
                raise EvalError(f"unbound function: {name}")

            return unbound
        if name == "matches":
            return self._matches(args, literal_pattern)
        if (name == "labels" or name == "sources") and len(args) == 1:
            of = provenance.labels_of if name == "labels" else provenance.sources_of
            value = args[0]
            return lambda st: of(st.act, value(st))
        if name == "granted" and len(args) == 1:
            kind = args[0]
            return lambda st: grants.granted_of(st.act, kind(st))
        impl = f.impl
        cost = f.cost
        if cost is None:
            if len(args) == 1:
                a0 = args[0]
                return lambda st: impl(a0(st))
            if len(args) == 2:
                a0, a1 = args
                return lambda st: impl(a0(st), a1(st))

        def call(st: State) -> Any:
            vals = [a(st) for a in args]
            if cost is not None:
                st.charge(cost(*vals))
            return impl(*vals)

        return call

    def _matches(self, args: list[Fn], literal_pattern: str | None) -> Fn:
        if len(args) != 2:
            return lambda st: (_ for _ in ()).throw(EvalError("no such overload: matches"))
        text, pattern = args
        max_len = self.limits.max_regex_length
        if literal_pattern is not None:
            matcher: Matcher | None
            try:
                matcher = compile_pattern(literal_pattern)
            except ValueError:
                matcher = None
            if matcher is not None:
                m = matcher

                def matches_literal(st: State) -> bool:
                    s = text(st)
                    if type(s) is not str:
                        raise no_overload("matches", s)
                    n = len(s)
                    if n > FREE_TEXT:
                        st.charge(text_cost(n))
                    return m(s)

                return matches_literal

        def matches(st: State) -> bool:
            s = text(st)
            p = pattern(st)
            if type(s) is not str or type(p) is not str:
                raise no_overload("matches", s, p)
            st.charge(text_cost(len(s)) + text_cost(len(p)))
            return cached_pattern(p, max_len)(s)

        return matches

    def _Call(self, n: Call, scope: frozenset[str]) -> Fn:
        args = [self.compile(a, scope) for a in n.args]
        pattern = _literal_text(n.args[1]) if n.name == "matches" and len(n.args) == 2 else None
        return self._call(n.name, False, args, pattern)

    def _Method(self, n: Method, scope: frozenset[str]) -> Fn:
        args = [self.compile(a, scope) for a in (n.target, *n.args)]
        if n.name in ("or", "orValue") and len(args) == 2:
            return self._optional_or(n.name, args[0], args[1])
        pattern = _literal_text(n.args[0]) if n.name == "matches" and len(n.args) == 1 else None
        return self._call(n.name, True, args, pattern)

    @staticmethod
    def _optional_or(name: str, target: Fn, alternative: Fn) -> Fn:
        """``o.or(p)`` and ``o.orValue(v)`` short-circuit: the alternative runs only when needed."""
        impl = MEMBERS[name].impl

        def optional_or(st: State) -> Any:
            o = target(st)
            if type(o) is Optional and o.present:
                return o if name == "or" else o.value
            return impl(o, alternative(st))

        return optional_or

    # -- literals ---------------------------------------------------------------------------------
    def _ListLit(self, n: ListLit, scope: frozenset[str]) -> Fn:
        items = [self.compile(a, scope) for a in n.items]
        optional = n.optional
        if not optional:
            return lambda st: [f(st) for f in items]

        def lst(st: State) -> list[Any]:
            out = []
            for i, f in enumerate(items):
                v = f(st)
                if i in optional:
                    if type(v) is not Optional:
                        raise no_overload("optional list element", v)
                    if v.present:
                        out.append(v.value)
                else:
                    out.append(v)
            return out

        return lst

    def _MapLit(self, n: MapLit, scope: frozenset[str]) -> Fn:
        entries = [(self.compile(k, scope), self.compile(v, scope), opt) for k, v, opt in n.entries]

        def mp(st: State) -> dict[Any, Any]:
            out: dict[Any, Any] = {}
            for kf, vf, opt in entries:
                k = check_key(kf(st))
                v = vf(st)
                if opt:
                    if type(v) is not Optional:
                        raise no_overload("optional map entry", v)
                    if not v.present:
                        continue
                    v = v.value
                if k in out:
                    raise EvalError(f"Failed with repeated key: {k!r}")
                out[k] = v
            return out

        return mp

    # -- operators --------------------------------------------------------------------------------
    def _Unary(self, n: Unary, scope: frozenset[str]) -> Fn:
        operand = self.compile(n.operand, scope)
        if n.op == "!":

            def not_(st: State) -> bool:
                v = operand(st)
                if v is True:
                    return False
                if v is False:
                    return True
                return logical_not(v)

            return not_
        return lambda st: neg(operand(st))

    def _Binary(self, n: Binary, scope: frozenset[str]) -> Fn:
        left = self.compile(n.left, scope)
        right = self.compile(n.right, scope)
        op = n.op
        if op == "==" or op == "!=":
            want = op == "=="

            def eq(st: State) -> bool:
                a = left(st)
                b = right(st)
                ta = type(a)
                if ta is type(b) and (ta is str or ta is int or ta is float or ta is bool):
                    return (a == b) is want
                return equals(a, b, st) is want

            return eq
        if op == "in":
            r = n.right
            if isinstance(r, Lit) and type(r.value) is list and r.value:
                # A named list constant (inlined): texts or whole numbers are one hash lookup.
                kinds = {type(v) for v in r.value}
                if kinds == {str} or kinds == {int}:
                    members = frozenset(r.value)
                    kind = next(iter(kinds))

                    def member(st: State) -> Any:
                        v = left(st)
                        if type(v) is kind:
                            return v in members
                        return contains_elem(r.value, v, st)

                    return member
            return lambda st: contains_elem(right(st), left(st), st)
        fn = _BINARY[op]
        if op == "+":

            def plus(st: State) -> Any:
                a = left(st)
                b = right(st)
                if type(a) is int and type(b) is int:
                    r = a + b
                    if -9223372036854775808 <= r <= 9223372036854775807:
                        return r
                r = add(a, b)
                if type(r) is str or type(r) is bytes:
                    st.charge(text_cost(len(r)))
                elif type(r) is list:
                    st.charge(elements_cost(len(r)))
                return r

            return plus
        return lambda st: fn(left(st), right(st))

    def _Logic(self, n: Logic, scope: frozenset[str]) -> Fn:
        ops = [self.compile(x, scope) for x in n.operands]
        deciding = n.op == "||"  # the value that decides: true for ||, false for &&
        name = "_||_" if deciding else "_&&_"

        def logic(st: State) -> bool:
            err: EvalError | None = None
            for f in ops:
                try:
                    v = f(st)
                except EvalError as ex:
                    err = err or ex
                    continue
                if v is deciding:
                    return deciding
                if v is not (not deciding):
                    err = err or no_overload(name, v)
            if err is not None:
                raise err
            return not deciding

        return logic

    def _Cond(self, n: Cond, scope: frozenset[str]) -> Fn:
        cond = self.compile(n.cond, scope)
        then = self.compile(n.then, scope)
        other = self.compile(n.other, scope)

        def ternary(st: State) -> Any:
            c = cond(st)
            if c is True:
                return then(st)
            if c is False:
                return other(st)
            raise no_overload("_?_:_", c)

        return ternary

    # -- macros -----------------------------------------------------------------------------------
    def _Bind(self, n: Bind, scope: frozenset[str]) -> Fn:
        init = self.compile(n.init, scope)
        body = self.compile(n.body, scope | {n.var})
        var = n.var

        def bind(st: State) -> Any:
            # cel.bind is lazy, as in cel-go and cel-cpp: the value is computed on first use
            loc = st.locals
            saved = loc.get(var, _MISSING_LOCAL)
            loc[var] = _Lazy(init, dict(loc))
            try:
                return body(st)
            finally:
                if saved is _MISSING_LOCAL:
                    del loc[var]
                else:
                    loc[var] = saved

        return bind

    def _OptMap(self, n: OptMap, scope: frozenset[str]) -> Fn:
        target = self.compile(n.target, scope)
        body = self.compile(n.body, scope | {n.var})
        var = n.var
        flat = n.flat

        def opt_map(st: State) -> Any:
            o = target(st)
            if type(o) is not Optional:
                raise no_overload("optMap", o)
            if not o.present:
                return o
            loc = st.locals
            saved = loc.get(var, _MISSING_LOCAL)
            loc[var] = o.value
            try:
                r = body(st)
            finally:
                if saved is _MISSING_LOCAL:
                    del loc[var]
                else:
                    loc[var] = saved
            if flat:
                if type(r) is not Optional:
                    raise no_overload("optFlatMap", r)
                return r
            return Optional(r)

        return opt_map

    def _Comprehension(self, n: Comprehension, scope: frozenset[str]) -> Fn:
        vars_ = (n.var,) if n.var2 is None else (n.var, n.var2)
        inner = scope | set(vars_)
        target = self.compile(n.target, scope)
        body = self.compile(n.body, inner)
        flt = self.compile(n.filter, inner) if n.filter is not None else None
        step = size(n.body) + (size(n.filter) if n.filter is not None else 0) + 1
        run = _MACRO_RUNNERS[n.macro]
        two = n.var2 is not None
        var, var2 = n.var, n.var2
        macro = n.macro

        def comprehension(st: State) -> Any:
            t = _iterate(macro, target(st))
            loc = st.locals
            saved = [(v, loc.get(v, _MISSING_LOCAL)) for v in vars_]
            try:
                if two:
                    pairs = t.items() if type(t) is dict else enumerate(t)
                    return run(st, _pairs(st, pairs, step, loc, var, var2), body, flt, t)
                return run(st, _singles(st, t, step, loc, var), body, flt, t)
            finally:
                for v, old in saved:
                    if old is _MISSING_LOCAL:
                        loc.pop(v, None)
                    else:
                        loc[v] = old

        return comprehension


def _literal_text(n: Node) -> str | None:
    return n.value if isinstance(n, Lit) and type(n.value) is str else None


def _singles(st: State, items: Any, step: int, loc: dict[str, Any], var: str) -> Any:
    limit = st.max_cost
    for v in items:
        st.cost += step
        if st.cost > limit:
            raise CostExceeded("cost limit exceeded")
        t = type(v)
        loc[var] = v if t in PLAIN or (t is int and -_2_63 <= v < _2_63) else normalise(v)
        yield v


_2_63 = 2**63


def _pairs(st: State, items: Any, step: int, loc: dict[str, Any], var: str, var2: str | None) -> Any:
    assert var2 is not None
    limit = st.max_cost
    for k, v in items:
        st.cost += step
        if st.cost > limit:
            raise CostExceeded("cost limit exceeded")
        loc[var] = k
        loc[var2] = v if type(v) in PLAIN else normalise(v)
        yield k, v


Runner = Callable[[State, Any, Fn, "Fn | None", Any], Any]


def _bool(name: str, v: Any) -> bool:
    if v is True or v is False:
        return v
    raise no_overload(name, v)


def _quantifier(name: str, deciding: bool) -> Runner:
    """``all`` (decided by a false) or ``exists`` (decided by a true): stops at the deciding
    value; an error loses to it and otherwise is the result (langdef "Macros")."""

    def run(st: State, it: Any, body: Fn, flt: Fn | None, target: Any) -> bool:
        err: EvalError | None = None
        for _ in it:
            try:
                if _bool(name, body(st)) is deciding:
                    return deciding
            except EvalError as ex:
                err = err or ex
        if err is not None:
            raise err
        return not deciding

    return run


_run_all = _quantifier("all", False)
_run_exists = _quantifier("exists", True)


def _run_exists_one(st: State, it: Any, body: Fn, flt: Fn | None, target: Any) -> bool:
    count = 0
    for _ in it:
        if _bool("exists_one", body(st)):
            count += 1
    return count == 1


def _run_map(st: State, it: Any, body: Fn, flt: Fn | None, target: Any) -> list[Any]:
    out = []
    for _ in it:
        if flt is None or _bool("map", flt(st)):
            out.append(body(st))
    return out


def _run_filter(st: State, it: Any, body: Fn, flt: Fn | None, target: Any) -> list[Any]:
    out = []
    for v in it:
        if _bool("filter", body(st)):
            out.append(v)
    return out


def _run_transform_list(st: State, it: Any, body: Fn, flt: Fn | None, target: Any) -> list[Any]:
    out = []
    for _ in it:
        if flt is None or _bool("transformList", flt(st)):
            out.append(body(st))
    return out


def _run_transform_map(st: State, it: Any, body: Fn, flt: Fn | None, target: Any) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for k, _ in it:
        if flt is None or _bool("transformMap", flt(st)):
            out[check_key(k)] = body(st)
    return out


def _run_transform_map_entry(st: State, it: Any, body: Fn, flt: Fn | None, target: Any) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for _ in it:
        if flt is None or _bool("transformMapEntry", flt(st)):
            entry = body(st)
            if type(entry) is not dict:
                raise no_overload("transformMapEntry", entry)
            for k, v in entry.items():
                if k in out:
                    raise EvalError(f"insert failed: key {k!r} already exists")
                out[k] = v
    return out


def _run_sort_by(st: State, it: Any, body: Fn, flt: Fn | None, target: Any) -> list[Any]:
    from charter.cel.ext_lists import sort_by_keys

    items = []
    keys = []
    for v in it:
        items.append(v)
        keys.append(body(st))
    st.charge(elements_cost(len(items)))
    return sort_by_keys(items, keys)


_MACRO_RUNNERS: dict[str, Runner] = {
    "all": _run_all,
    "exists": _run_exists,
    "exists_one": _run_exists_one,
    "map": _run_map,
    "filter": _run_filter,
    "transformList": _run_transform_list,
    "transformMap": _run_transform_map,
    "transformMapEntry": _run_transform_map_entry,
    "sortBy": _run_sort_by,
}
