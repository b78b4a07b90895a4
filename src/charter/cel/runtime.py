"""The exact (slow-path) evaluator: closures that mirror cel-python's Evaluator node by node."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

import celpy.celtypes as ct
from celpy.evaluation import (
    CELEvalError,
    base_functions,
    bool_eq,
    bool_ge,
    bool_gt,
    bool_le,
    bool_lt,
    bool_ne,
    eval_error,
    operator_in,
)

from charter.cel.limits import Limits
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
    size,
)
from charter.cel.values import to_cel
from charter.errors import Error


class CostExceeded(Error):
    """Raised (and never caught below the API boundary) when the cost budget is spent."""


class State:
    """Per-evaluation state: the activation, converted roots, comprehension variables, cost."""

    __slots__ = ("act", "cost", "locals", "max_cost", "roots")

    def __init__(self, act: Mapping[str, Any], max_cost: int) -> None:
        self.act = act
        self.roots: dict[str, Any] = {}
        self.locals: dict[str, Any] = {}
        self.cost = 0
        self.max_cost = max_cost

    def charge(self, n: int) -> None:
        self.cost += n
        if self.cost > self.max_cost:
            raise CostExceeded("cost limit exceeded")


Fn = Callable[[State], Any]

_RELATIONS: dict[str, Callable[[Any, Any], Any]] = {
    "<": bool_lt,
    "<=": bool_le,
    ">": bool_gt,
    ">=": bool_ge,
    "==": bool_eq,
    "!=": bool_ne,
    "in": operator_in,
}
_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "%": operator.mod,
}
_AND = eval_error("no such overload", TypeError)(ct.logical_and)
_OR = eval_error("no such overload", TypeError)(ct.logical_or)

# functions callable as f(x) and/or x.f(); everything else is rejected at compile time
GLOBAL_FUNCTIONS = frozenset(
    {
        "size", "int", "uint", "double", "string", "bool", "bytes", "timestamp", "duration",
        "matches", "contains", "startsWith", "endsWith",
    }
)  # fmt: skip
METHODS = frozenset(
    {
        "size", "contains", "startsWith", "endsWith", "matches",
        "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear", "getFullYear",
        "getMonth", "getHours", "getMilliseconds", "getMinutes", "getSeconds",
    }
)  # fmt: skip
_STRING_COST = frozenset({"matches"})


def _err(msg: str) -> CELEvalError:
    return CELEvalError(msg)


def _text_cost(args: list[Any]) -> int:
    return sum(len(a) for a in args if isinstance(a, (str, bytes)))


class SlowCompiler:
    """Compiles an AST into closures reproducing cel-python's evaluation exactly."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits

    def compile(self, node: Node, scope: frozenset[str] = frozenset()) -> Fn:
        m = getattr(self, "_" + type(node).__name__)
        f: Fn = m(node, scope)
        return f

    def _Lit(self, n: Lit, scope: frozenset[str]) -> Fn:
        v = n.value
        if isinstance(v, CELEvalError):
            msg = str(v.args[0]) if v.args else "invalid literal"
            return lambda st: _err(msg)
        return lambda st: v

    def _Ident(self, n: Ident, scope: frozenset[str]) -> Fn:
        name = n.name
        if name in scope:
            return lambda st: st.locals[name]

        def root(st: State) -> Any:
            try:
                return st.roots[name]
            except KeyError:
                pass
            v = to_cel(st.act[name]) if name in st.act else _err(f"undeclared reference to '{name}'")
            st.roots[name] = v
            return v

        return root

    def _Select(self, n: Select, scope: frozenset[str]) -> Fn:
        operand = self.compile(n.operand, scope)
        fname = n.field
        key = ct.StringType(fname)

        def select(st: State) -> Any:
            m = operand(st)
            if isinstance(m, CELEvalError):
                return m
            if isinstance(m, ct.MessageType):
                return m.get(key)
            if isinstance(m, ct.MapType):
                try:
                    return m[key]
                except KeyError:
                    return _err(f"no such key: '{fname}'")
            return _err(f"cannot select field '{fname}' of {type(m).__name__}")

        return select

    def _Index(self, n: Index, scope: frozenset[str]) -> Fn:
        operand = self.compile(n.operand, scope)
        index = self.compile(n.index, scope)

        def idx(st: State) -> Any:
            m = operand(st)
            i = index(st)
            try:
                return operator.getitem(m, i)
            except TypeError:
                return _err("no such overload for index")
            except KeyError:
                return _err("no such key")
            except IndexError:
                return _err("index out of range")

        return idx

    def _call(self, fname: str, args: list[Any], st: State) -> Any:
        for a in args:
            if isinstance(a, CELEvalError):
                return a
        if fname in _STRING_COST:
            st.charge(_text_cost(args))
        try:
            return base_functions[fname](*args)
        except ValueError:
            return _err(f"{fname}(): invalid value or overflow")
        except (TypeError, AttributeError):
            return _err(f"no such overload for {fname}()")

    def _Call(self, n: Call, scope: frozenset[str]) -> Fn:
        args = [self.compile(a, scope) for a in n.args]
        fname = n.name
        if fname == "has":
            arg = args[0]
            return lambda st: ct.BoolType(not isinstance(arg(st), CELEvalError))
        if fname == "dyn":
            arg = args[0]
            return arg

        def call(st: State) -> Any:
            return self._call(fname, [a(st) for a in args], st)

        return call

    def _Method(self, n: Method, scope: frozenset[str]) -> Fn:
        target = self.compile(n.target, scope)
        args = [self.compile(a, scope) for a in n.args]
        fname = n.name

        def method(st: State) -> Any:
            t = target(st)
            vals = [a(st) for a in args]
            return self._call(fname, [t, *vals], st)

        return method

    def _ListLit(self, n: ListLit, scope: frozenset[str]) -> Fn:
        items = [self.compile(a, scope) for a in n.items]

        def lst(st: State) -> Any:
            vals = [f(st) for f in items]
            for v in vals:
                if isinstance(v, CELEvalError):
                    return v
            return ct.ListType(vals)

        return lst

    def _MapLit(self, n: MapLit, scope: frozenset[str]) -> Fn:
        flat = [self.compile(x, scope) for kv in n.entries for x in kv]

        def mp(st: State) -> Any:
            vals = [f(st) for f in flat]
            result = ct.MapType()
            try:
                for k, v in zip(vals[0::2], vals[1::2], strict=True):
                    if k in result:
                        return _err(f"duplicate key {k!r} in map")
                    result[k] = v
            except TypeError:
                return _err("invalid map key")
            return result

        return mp

    def _Unary(self, n: Unary, scope: frozenset[str]) -> Fn:
        operand = self.compile(n.operand, scope)
        fn = ct.logical_not if n.op == "!" else operator.neg
        op = n.op

        def un(st: State) -> Any:
            v = operand(st)
            try:
                return fn(v)
            except TypeError:
                return _err(f"no such overload for '{op}'")
            except ValueError:
                return _err("integer overflow")

        return un

    def _Binary(self, n: Binary, scope: frozenset[str]) -> Fn:
        left = self.compile(n.left, scope)
        right = self.compile(n.right, scope)
        op = n.op
        if op in _RELATIONS:
            rel = _RELATIONS[op]

            def relation(st: State) -> Any:
                a = left(st)
                b = right(st)
                try:
                    return rel(a, b)
                except TypeError:
                    return _err(f"no such overload for '{op}'")

            return relation
        arith = _ARITH[op]
        cost_op = op == "+"

        def arithmetic(st: State) -> Any:
            a = left(st)
            b = right(st)
            try:
                r = arith(a, b)
            except TypeError:
                return _err(f"no such overload for '{op}'")
            except ZeroDivisionError:
                return _err("division by zero")
            except (ValueError, OverflowError):
                return _err("integer overflow")
            if cost_op and isinstance(r, (str, bytes, list)):
                st.charge(len(r))
            return r

        return arithmetic

    def _Logic(self, n: Logic, scope: frozenset[str]) -> Fn:
        ops = [self.compile(x, scope) for x in n.operands]
        fn = ct.logical_and if n.op == "&&" else ct.logical_or
        first, rest = ops[0], ops[1:]

        def logic(st: State) -> Any:
            acc = first(st)
            for f in rest:
                b = f(st)
                try:
                    acc = fn(acc, b)
                except TypeError:
                    acc = _err("no such overload for logical operator")
            return acc

        return logic

    def _Cond(self, n: Cond, scope: frozenset[str]) -> Fn:
        cond = self.compile(n.cond, scope)
        then = self.compile(n.then, scope)
        other = self.compile(n.other, scope)

        def ternary(st: State) -> Any:
            c = cond(st)
            try:
                r = then(st) if c else other(st)
            except TypeError:
                return _err("no such overload for '?:'")
            if not isinstance(c, ct.BoolType):
                return _err("the condition of '?:' is not a bool")
            return r

        return ternary

    def _Comprehension(self, n: Comprehension, scope: frozenset[str]) -> Fn:
        target = self.compile(n.target, scope)
        body = self.compile(n.body, scope | {n.var})
        var = n.var
        step = size(n.body) + 1
        macro = n.macro
        missing = object()

        def comp(st: State) -> Any:
            t = target(st)
            if isinstance(t, CELEvalError):
                return t
            loc = st.locals
            saved = loc.get(var, missing)
            try:
                it = iter(t)
                if macro in ("all", "exists"):
                    red = _AND if macro == "all" else _OR
                    acc: Any = ct.BoolType(macro == "all")
                    for v in it:
                        st.charge(step)
                        loc[var] = v
                        try:
                            r = body(st)
                        except CELEvalError as ex:
                            r = ex
                        acc = red(acc, r)
                    return acc
                out: list[Any] = []
                count = 0
                for v in it:
                    st.charge(step)
                    loc[var] = v
                    r = body(st)
                    if isinstance(r, CELEvalError):
                        raise r  # cel-python raises from inside map/filter/exists_one
                    if macro == "map":
                        out.append(r)
                    elif macro == "filter":
                        if r:
                            out.append(v)
                    elif r:
                        count += 1
                if macro == "exists_one":
                    return ct.BoolType(count == 1)
                return ct.ListType(out)
            finally:
                if saved is missing:
                    loc.pop(var, None)
                else:
                    loc[var] = saved

        return comp
