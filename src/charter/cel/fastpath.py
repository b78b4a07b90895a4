"""The fast path: guarded Python generated from the AST, exact or else deferring to the evaluator.

Each generated sub-expression either yields exactly the value the evaluator (:mod:`runtime`)
would (checked by inline ``type(x) is T`` guards on every value read from the activation) or
raises; any exception makes the whole evaluation fall back to the evaluator. Only boolean
conditions built from constructs whose result the guards pin down are compiled here (so &&/||
short-circuiting is safe: an operand that would be an error raises and falls back). Text
operations are guarded to texts of at most 4,096 characters and ``in`` to lists of at most
FREE_ELEMENTS, which the evaluator charges nothing for (so are ``path.clean``/``base``/``dir``,
which call paths.py as the evaluator does). ``all``/``exists`` over lists (of at most
32 elements, nested however deep named conditions nest them), list equality with a literal list
of texts, ``labels()``/``sources()`` of a value read, ``granted("KIND")`` and text ``+`` are
compiled too: what the evaluator would charge for them is counted (a comprehension stops past
one evaluation's budget) and checked against what it would have had left, and spent from the
decision's budget exactly as it would (see :func:`build_fast`); tests/cel/test_fastpath_loops.py
compares results and budgets. Orderings of two values read, unary ``-``, integer ``+``, a map
literal looked up by a text, and conditions whose value is not a boolean (a budget's amount, a
grant's uses) are exact only for the value types the guards admit, and fall back otherwise.
Source is built from the tree only: names are emitted with repr(); literals are placeholder
constants in the compiled code (shared by conditions of the same shape) set to the parsed values,
and the source shown in ``fn.__doc__`` has their repr().
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import CodeType
from typing import Any

from charter.cel import grants, paths, provenance
from charter.cel.limits import BUDGET_ATTRIBUTE, FREE_ELEMENTS, FREE_TEXT, Limits
from charter.cel.regex import RegexError, compile_pattern
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
    MapLit,
    Method,
    Node,
    Select,
    Unary,
    size,
)

_INT_MIN = -(2**63)
_INT_MAX = 2**63 - 1
_ORDERED_KINDS = frozenset({"bool", "int", "float", "str"})


class _Fallback(Exception):
    """Raised inside the fast path when a guard fails."""


class _NoFast(Exception):
    """Raised at build time when a construct has no fast form."""


def _fb() -> Any:
    raise _Fallback


def _in_str(x: str, c: Any) -> bool:
    t = type(c)
    # a text equals only a text (CEL heterogeneous equality); the evaluator charges for a list
    # of more than FREE_ELEMENTS, so a longer one falls back (a nearly spent budget decides)
    if ((t is list or t is tuple) and len(c) <= FREE_ELEMENTS) or (t is dict and len(c) <= _MAX_TEXT):
        return x in c
    raise _Fallback


def _same(a: Any, b: Any) -> bool:
    """``a == b`` for two values read from the activation: exact when both are texts, both
    booleans, both doubles (IEEE equality in both: NaN equals nothing) or both 64-bit integers
    (where CEL equality is Python's); anything else falls back."""
    t = type(a)
    if t is type(b):
        if t is str or t is bool or t is float:
            return a == b
        if t is int and _INT_MIN <= a <= _INT_MAX and _INT_MIN <= b <= _INT_MAX:
            return a == b
    raise _Fallback


def _ordered(a: Any, b: Any) -> bool:
    """Whether ``a < b`` (and the other orderings) of two values read from the activation is
    Python's: both texts (code point order in both), both doubles (NaN compares false in both),
    both booleans or both 64-bit integers. Anything else (an int against a double included, which
    CEL compares by value) falls back."""
    t = type(a)
    if t is type(b):
        if t is str or t is float or t is bool:
            return True
        if t is int and _INT_MIN <= a <= _INT_MAX and _INT_MIN <= b <= _INT_MAX:
            return True
    raise _Fallback


def _value(v: Any) -> Any:
    """A condition's whole value when it is not known to be a boolean: the value the evaluator
    returns as it is (a text, double, boolean or 64-bit integer read); anything else falls back."""
    t = type(v)
    if t is str or t is float or t is bool or (t is int and _INT_MIN <= v <= _INT_MAX):
        return v
    raise _Fallback


def _iadd(a: int, b: int) -> int:
    """Integer ``+`` of two 64-bit integers; an overflow (an error in CEL) falls back."""
    r = a + b
    if _INT_MIN <= r <= _INT_MAX:
        return r
    raise _Fallback


def _neg(a: Any) -> Any:
    """Unary ``-`` of a double or a 64-bit integer (whose negation fits: -(-2**63) is an error)."""
    t = type(a)
    if t is float:
        return -a
    if t is int and _INT_MIN < a <= _INT_MAX:
        return -a
    raise _Fallback


#: Longest text (and largest container for ``in``) handled here; see the module docstring.
_MAX_TEXT = 4096

#: Longest list a comprehension (``all``, ``exists``) iterates here; a longer one falls back.
_MAX_ITEMS = 32

#: Values ``labels()`` and ``sources()`` are asked about here: those the evaluator passes as they
#: are (it normalises others into new values, which the provenance data may not know).
_AS_IS = frozenset({str, float, bool, list, dict, type(None)})


def _all(xs: Any, step: int, cost: list[int], body: Callable[[Any], bool]) -> bool:
    """CEL ``all`` over a list whose every body is exact (an error raises: the evaluator decides);
    charges ``cost[0]`` what the evaluator charges, ``step`` per element visited. Past ``cost[1]``
    (one evaluation's budget, which the evaluator could not exceed either) it falls back: this
    bounds the work done before a fall back by what the evaluator may do, however deeply
    comprehensions nest (named conditions inlined into one another nest them)."""
    if type(xs) is not list or len(xs) > _MAX_ITEMS:
        raise _Fallback
    for x in xs:
        cost[0] += step
        if cost[0] > cost[1]:
            raise _Fallback
        if not body(x):
            return False
    return True


def _any(xs: Any, step: int, cost: list[int], body: Callable[[Any], bool]) -> bool:
    """CEL ``exists``, as :func:`_all`."""
    if type(xs) is not list or len(xs) > _MAX_ITEMS:
        raise _Fallback
    for x in xs:
        cost[0] += step
        if cost[0] > cost[1]:
            raise _Fallback
        if body(x):
            return True
    return False


def _labels(act: Any, v: Any) -> Any:
    """``labels(v)`` as :func:`provenance.labels_of` answers it, reading the data directly: a
    KeyError is its ``None`` (no data); any other failure falls back, and the evaluator's
    ``labels_of`` decides (closed)."""
    if type(v) in _AS_IS:
        try:
            data = act[_PROVENANCE]
        except KeyError:
            return []
        return data.labels(v) if data is not None else []
    raise _Fallback


def _sources(act: Any, v: Any) -> Any:
    """``sources(v)``, as :func:`_labels` (a value without sources has one ``unknown`` source)."""
    if type(v) in _AS_IS:
        try:
            data = act[_PROVENANCE]
        except KeyError:
            data = None
        found = data.sources(v) if data is not None else None
        return found if found is not None else provenance.sources_of({}, v)  # (one unknown source)
    raise _Fallback


def _cat(a: Any, b: Any) -> str:
    """Text ``+`` whose result the evaluator charges nothing for (at most FREE_TEXT characters)."""
    if type(a) is str and type(b) is str and len(a) + len(b) <= FREE_TEXT:
        return a + b
    raise _Fallback


def _texts_eq(x: Any, want: list[str], cost: list[int]) -> bool:
    """A list compared with a list literal of texts (CEL list equality, exact for texts; the
    evaluator charges one unit per element when the lengths are equal)."""
    if type(x) is list and all(type(e) is str for e in x):
        if len(x) == len(want):
            cost[0] += len(x)
        return x == want
    raise _Fallback


_SIZED = (str, list, dict, bytes, tuple)
_PROVENANCE = provenance.PROVENANCE

#: path.clean/base/dir: the evaluator's own functions (paths.py), called on a text checked here.
_PATH_FUNCTIONS = {"path.clean": paths.clean, "path.base": paths.base, "path.dir": paths.dir_}

Code = tuple[str, str | None]  # (python expression, static python type name or None)


class _Gen:
    def __init__(self) -> None:
        self.consts: dict[str, Any] = {}
        self.n = 0
        #: literal placeholders of the source's shape: (placeholder, value, repr of the value)
        self.literals: list[tuple[str, Any, str]] = []
        #: comprehension variables in scope: CEL name -> python parameter
        self.scope: dict[str, str] = {}
        #: the code counts what the evaluator would charge (in ``_c``): see build_fast
        self.charged = False

    def literal(self, value: Any) -> str:
        """A literal written as a placeholder constant, so conditions of one shape share code."""
        placeholder = f"\x00charter-literal-{len(self.literals)}\x00"
        self.literals.append((placeholder, value, repr(value)))
        return repr(placeholder)

    def const(self, v: Any) -> str:
        name = f"_k{len(self.consts)}"
        self.consts[name] = v
        return name

    def tmp(self) -> str:
        self.n += 1
        return f"_t{self.n}"

    def guard(self, c: Code, kind: str, body: Callable[[str], str]) -> str:
        """Code for body(x) where x is `c` checked to be of python type `kind`."""
        code, k = c
        if k == kind:
            return body(f"({code})")
        t = self.tmp()
        cond = f"type({t} := {code}) is {kind}"
        if kind == "int":
            cond += f" and {_INT_MIN} <= {t} <= {_INT_MAX}"
        return f"({body(t)} if {cond} else _fb())"

    def gen(self, n: Node) -> Code:
        m = getattr(self, "_" + type(n).__name__, None)
        if m is None:
            raise _NoFast
        r: Code = m(n)
        return r

    def _Lit(self, n: Lit) -> Code:
        v = n.value
        t = type(v)
        if t is bool:
            return ("True" if v else "False", "bool")
        if t is int:
            return (self.literal(v), "int")
        if t is float:
            return (self.literal(v) if math.isfinite(v) else self.const(v), "float")
        if t is str:
            return (self.literal(v), "str")
        raise _NoFast

    def _Ident(self, n: Ident) -> Code:
        local = self.scope.get(n.name)
        if local is not None:
            return (local, None)
        return (f"act[{n.name!r}]", None)

    def _Comprehension(self, n: Comprehension) -> Code:
        if n.macro not in ("all", "exists") or n.var2 is not None or n.filter is not None:
            raise _NoFast
        target, kind = self.gen(n.target)
        if kind is not None:
            raise _NoFast
        var = self.tmp().replace("_t", "_v")
        saved = self.scope.get(n.var)
        self.scope[n.var] = var
        try:
            body = self._bool(n.body)
        finally:
            if saved is None:
                del self.scope[n.var]
            else:
                self.scope[n.var] = saved
        fn = "_all" if n.macro == "all" else "_any"
        self.charged = True
        step = size(n.body) + 1  # what the evaluator charges per element (no filter here)
        return (f"{fn}({target}, {step}, _c, lambda {var}: {body})", "bool")

    def _Select(self, n: Select) -> Code:
        if n.optional:
            raise _NoFast
        code, kind = self.gen(n.operand)
        if kind is not None:
            raise _NoFast
        # any mapping selects like a CEL map; anything else raises, and so falls back
        return (f"{code}[{n.field!r}]", None)

    def _Index(self, n: Index) -> Code:
        if isinstance(n.operand, MapLit) and not n.optional:
            return self._map_lookup(n.operand, n.index)
        code, kind = self.gen(n.operand)
        if kind is not None or not isinstance(n.index, Lit) or n.optional:
            raise _NoFast
        v = n.index.value
        if type(v) is str:
            return (f"{code}[{v!r}]", None)
        if type(v) is int and v >= 0:
            t = self.tmp()
            return (f"({t}[{v!r}] if type({t} := {code}) is list else _fb())", None)
        raise _NoFast

    def _map_lookup(self, m: MapLit, index: Node) -> Code:
        """``{"k": "v", ...}[x]`` for a map literal of distinct text keys and literal values: a
        constant dict looked up by a text (a missing key, an error in CEL, falls back)."""
        table: dict[str, Any] = {}
        for key, value, opt in m.entries:
            if opt or not isinstance(key, Lit) or type(key.value) is not str or not isinstance(value, Lit):
                raise _NoFast
            if key.value in table or type(value.value) not in (str, bool, float, int):
                raise _NoFast  # a repeated key is an error in CEL
            table[key.value] = value.value
        kinds = {type(v) for v in table.values()}
        kind = next(iter(kinds)).__name__ if len(kinds) == 1 else None
        k = self.const(table)
        code, _ = self.gen(index)
        t = self.tmp()
        return (f"({k}[{t}] if type({t} := {code}) is str and {t} in {k} else _fb())", kind)

    def _bool(self, n: Node) -> str:
        """Code giving exactly True or False (a value read from the activation is checked)."""
        code, kind = self.gen(n)
        if kind is None:
            t = self.tmp()
            return f"({t} if type({t} := {code}) is bool else _fb())"
        if kind != "bool":
            raise _NoFast
        return code

    def _Logic(self, n: Logic) -> Code:
        joiner = " and " if n.op == "&&" else " or "
        return ("(" + joiner.join(self._bool(x) for x in n.operands) + ")", "bool")

    def _Unary(self, n: Unary) -> Code:
        if n.op == "-":
            code, kind = self.gen(n.operand)
            if kind not in (None, "int", "float"):
                raise _NoFast
            return (f"_neg({code})", kind)
        if n.op != "!":
            raise _NoFast
        return (f"(not {self._bool(n.operand)})", "bool")

    def _Cond(self, n: Cond) -> Code:
        c = self._bool(n.cond)
        a, ka = self.gen(n.then)
        b, kb = self.gen(n.other)
        return (f"({a} if {c} else {b})", ka if ka == kb else None)

    def _Binary(self, n: Binary) -> Code:
        op = n.op
        if op == "in":
            return self._in(n)
        if op == "+":
            left = self.gen(n.left)
            right = self.gen(n.right)
            if left[1] == "int" and right[1] == "int":  # sizes, integer literals
                return (f"_iadd({left[0]}, {right[0]})", "int")
            if left[1] != "str" and right[1] != "str":
                raise _NoFast
            return (f"_cat({left[0]}, {right[0]})", "str")
        if op in ("==", "!=") and isinstance(n.right, ListLit):
            r = n.right
            if r.optional or not all(isinstance(x, Lit) and type(x.value) is str for x in r.items):
                raise _NoFast
            k = self.const([x.value for x in r.items if isinstance(x, Lit)])
            left_code = self.gen(n.left)[0]
            self.charged = True
            test = f"_texts_eq({left_code}, {k}, _c)"
            return (test if op == "==" else f"(not {test})", "bool")
        if op not in ("==", "!=", "<", "<=", ">", ">="):
            raise _NoFast
        left = self.gen(n.left)
        right = self.gen(n.right)
        kind = left[1] or right[1]
        if kind is None and op in ("==", "!="):  # two values read from the activation
            same = f"_same({left[0]}, {right[0]})"
            return (same if op == "==" else f"(not {same})", "bool")
        if kind is None:  # an ordering of two values read (an amount against a grant's cap)
            a, b = self.tmp(), self.tmp()
            return (f"({a} {op} {b} if _ordered({a} := {left[0]}, {b} := {right[0]}) else _fb())", "bool")
        if kind not in _ORDERED_KINDS:
            raise _NoFast
        return (
            self.guard(left, kind, lambda a: self.guard(right, kind, lambda b: f"{a} {op} {b}")),
            "bool",
        )

    def _in(self, n: Binary) -> Code:
        left = self.gen(n.left)
        r = n.right
        vals: list[Any] | None = None
        if (
            isinstance(r, ListLit)
            and r.items
            and len(r.items) <= FREE_ELEMENTS  # a longer literal list is charged for
            and not r.optional
            and all(isinstance(x, Lit) for x in r.items)
        ):
            vals = [x.value for x in r.items if isinstance(x, Lit)]
        elif isinstance(r, Lit) and type(r.value) is list and r.value:  # a named list constant, inlined
            vals = r.value
        if vals is not None:
            if all(type(v) is str for v in vals):
                k = self.const(frozenset(vals))
                return (self.guard(left, "str", lambda a: f"{a} in {k}"), "bool")
            if all(type(v) is int for v in vals):
                k = self.const(frozenset(vals))
                return (self.guard(left, "int", lambda a: f"{a} in {k}"), "bool")
            raise _NoFast
        code, kind = self.gen(r)
        if kind is not None:
            raise _NoFast
        return (self.guard(left, "str", lambda a: f"_in_str({a}, {code})"), "bool")

    def _text(self, c: Code, body: Callable[[str], str]) -> str:
        """body(x) for ``c`` checked to be a text of at most _MAX_TEXT characters."""
        code = c[0]
        t = self.tmp()
        return f"({body(t)} if type({t} := {code}) is str and len({t}) <= {_MAX_TEXT} else _fb())"

    def _sized(self, target: Node) -> Code:
        code, kind = self.gen(target)
        if kind not in (None, "str"):
            raise _NoFast
        t = self.tmp()
        return (f"(len({t}) if type({t} := {code}) in _SIZED else _fb())", "int")

    def _Has(self, n: Has) -> Code:
        code, kind = self.gen(n.operand)
        if kind is not None:
            raise _NoFast
        t = self.tmp()
        return (f"({n.field!r} in {t} if type({t} := {code}) is dict else _fb())", "bool")

    def _Call(self, n: Call) -> Code:
        if n.name == "size" and len(n.args) == 1:
            return self._sized(n.args[0])
        if n.name in ("labels", "sources") and len(n.args) == 1:
            # provenance is found by the value's identity: only values read (from the activation
            # or a comprehension's list) are the same objects the evaluator passes; a literal or
            # a computed value may not be (constants in code are interned)
            if not isinstance(n.args[0], (Ident, Select, Index)):
                raise _NoFast
            code, _ = self.gen(n.args[0])
            return (f"_{n.name}(act, {code})", None)
        if n.name == "granted" and len(n.args) == 1:
            kind = n.args[0]
            if not (isinstance(kind, Lit) and type(kind.value) is str):
                raise _NoFast
            # the run's grant table answers each kind once per decision (its answers are kept),
            # so a fall back to the evaluator after this asks the same question, same answer
            return (f"_granted(act, {self.literal(kind.value)})", "bool")
        lexical = _PATH_FUNCTIONS.get(n.name)
        if lexical is not None and len(n.args) == 1:
            # a text of at most _MAX_TEXT characters, which the evaluator charges nothing for
            f = self.const(lexical)
            return (self._text(self.gen(n.args[0]), lambda a: f"{f}({a})"), "str")
        raise _NoFast

    def _Method(self, n: Method) -> Code:
        if n.name == "size" and not n.args:
            return self._sized(n.target)
        if n.name == "matches" and len(n.args) == 1:
            pattern = n.args[0]
            if not (isinstance(pattern, Lit) and type(pattern.value) is str):
                raise _NoFast
            try:
                matcher = compile_pattern(pattern.value)
            except RegexError:
                raise _NoFast from None
            m = self.const(matcher)
            return (self._text(self.gen(n.target), lambda a: f"{m}({a})"), "bool")
        if n.name in ("startsWith", "endsWith", "contains") and len(n.args) == 1:
            target = self.gen(n.target)
            arg = self.gen(n.args[0])
            py = {"startsWith": "startswith", "endsWith": "endswith"}.get(n.name)

            def body(a: str) -> str:
                if py is None:
                    return self._text(arg, lambda b: f"({b} in {a})")
                return self._text(arg, lambda b: f"{a}.{py}({b})")

            return (self._text(target, body), "bool")
        raise _NoFast


def build_fast(
    node: Node, slow: Callable[[Mapping[str, Any]], Any], max_cost: int | None = None
) -> Callable[[Mapping[str, Any]], Any] | None:
    """The fast callable for `node`, or None when it has no fast form.

    ``max_cost``: one evaluation's budget (the evaluator's). Code that counts what the evaluator
    would charge (comprehensions, list equality) checks the count against what the evaluator
    would have had left, and spends it from the decision's shared budget as the evaluator does
    (setting it to its value at the start plus this evaluation's cost: the evaluator discards
    what nested evaluations, ``granted()``'s, spent); over the limit, or on any error, the budget
    is put back and the evaluator decides.
    """
    gen = _Gen()
    try:
        expr, kind = gen.gen(node)
    except (_NoFast, RecursionError):
        return None
    if kind is None:  # a value read, or a choice of values of different kinds: checked whole
        # (a boolean, what a condition reads, inline; any other value by _value: a call less
        # for conditions such as `unless actor.clearance`)
        t = gen.tmp()
        expr = f"({t} if type({t} := {expr}) is bool else _value({t}))"
    if not gen.charged:
        shape = (
            "def _fast(act):\n"
            "    try:\n"
            f"        return {expr}\n"
            "    except Exception:\n"
            "        return _slow(act)\n"
        )
    else:
        shape = (
            "def _fast(act):\n"
            "    _c = [0, _MAXC]\n"
            "    _b = getattr(act, _BUDGET, None)\n"
            "    _s = 0 if _b is None else _b.cost\n"
            "    try:\n"
            f"        _r = {expr}\n"
            "    except Exception:\n"
            "        _r = None\n"
            "    if _r is not None and _c[0] <= _MAXC:\n"
            "        if _b is None:\n"
            "            return _r\n"
            "        if _s + _c[0] <= _b.max_cost:\n"
            "            _b.cost = _s + _c[0]\n"
            "            return _r\n"
            "    if _b is not None:\n"
            "        _b.cost = _s\n"
            "    return _slow(act)\n"
        )
    src = shape
    for placeholder, _, text in gen.literals:
        src = src.replace(repr(placeholder), text)
    namespace: dict[str, Any] = {
        "_fb": _fb,
        "_in_str": _in_str,
        "_same": _same,
        "_ordered": _ordered,
        "_value": _value,
        "_iadd": _iadd,
        "_neg": _neg,
        "_SIZED": _SIZED,
        "_all": _all,
        "_any": _any,
        "_labels": _labels,
        "_sources": _sources,
        "_texts_eq": _texts_eq,
        "_granted": grants.granted_of,
        "_cat": _cat,
        "_BUDGET": BUDGET_ATTRIBUTE,
        "_MAXC": Limits().max_cost if max_cost is None else max_cost,
        "_slow": slow,
        "__builtins__": {"type": type, "len": len, "str": str, "int": int, "float": float,
                         "bool": bool, "dict": dict, "list": list, "getattr": getattr,
                         "Exception": Exception},
        **gen.consts,
    }  # fmt: skip
    code = _code(shape, {placeholder: value for placeholder, value, _ in gen.literals})
    if code is None:
        return None
    exec(code, namespace)
    fn: Callable[[Mapping[str, Any]], Any] = namespace["_fast"]
    fn.__doc__ = src
    return fn


#: Compiled shapes: conditions that differ only in literal values share one compile (compiling
#: is most of the cost of building a fast path); the literals are put in as the code's constants.
_SHAPES: dict[str, CodeType | None] = {}
_MAX_SHAPES = 4096


def _code(shape: str, literals: dict[str, Any]) -> CodeType | None:
    """The module code defining ``_fast`` for ``shape`` with its placeholders set to ``literals``."""
    if shape in _SHAPES:
        module = _SHAPES[shape]
    else:
        try:
            module = compile(shape, "<cel-fast-path>", "exec")
        except (SyntaxError, RecursionError, MemoryError, ValueError):
            module = None
        if len(_SHAPES) >= _MAX_SHAPES:
            _SHAPES.clear()
        _SHAPES[shape] = module
    if module is None:
        return None
    filled = _fill(module, literals)
    assert isinstance(filled, CodeType)
    return filled


def _fill(const: Any, literals: dict[str, Any]) -> Any:
    """``const`` with every placeholder replaced by its literal (in nested code and tuples too)."""
    if type(const) is str:
        return literals.get(const, const)
    if type(const) is tuple:
        return tuple(_fill(c, literals) for c in const)
    if isinstance(const, CodeType):
        return const.replace(co_consts=tuple(_fill(c, literals) for c in const.co_consts))
    return const
