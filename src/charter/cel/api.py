"""compile_condition and the Compiled object: the public face of charter.cel (prepare once, evaluate many)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from charter.cel.checker import check
from charter.cel.fastpath import build_fast
from charter.cel.inline import (
    Definition,
    Definitions,
    InlineTooLarge,
    free_names,
    inline,
    prepare,
    too_deep,
)
from charter.cel.limits import BUDGET_ATTRIBUTE, Budget, Limits
from charter.cel.parser import ParseFailure, parse
from charter.cel.runtime import Compiler, Fn, State
from charter.cel.syntax import Logic, Node
from charter.cel.types import BOOL, DYN, CelCompileError, CelError, CelProblem, CelType, ProblemKind
from charter.cel.values import CostExceeded, EvalError

_DEFAULT_LIMITS = Limits()


def _runner(closure: Fn, max_cost: int) -> Callable[[Mapping[str, Any]], Any]:
    def run(activation: Mapping[str, Any]) -> Any:
        st = State(activation, max_cost)
        shared: Budget | None = getattr(activation, BUDGET_ATTRIBUTE, None)
        if shared is not None:  # the decision's budget: this evaluation spends from it too
            st.cost = shared.cost
            st.max_cost = min(shared.max_cost, shared.cost + max_cost)
        try:
            return closure(st)
        except EvalError as ex:
            return CelError(ex.message)
        except CostExceeded:
            return CelError("cost limit exceeded")
        except RecursionError:
            return CelError("the value is nested too deeply to evaluate")
        except Exception as ex:  # INVARIANT: evaluation never raises; any failure is an error value
            return CelError(f"{type(ex).__name__}: {ex}")
        finally:
            if shared is not None:
                shared.cost = st.cost

    return run


class Compiled:
    """A compiled CEL condition: call ``fn`` (fastest) or ``evaluate``; both never raise.

    Both return the CEL value (``bool``, ``int``, :class:`UInt`, ``float``, ``str``, ``bytes``,
    ``None``, ``list``, ``dict``, :class:`Timestamp`, :class:`Duration`, :class:`TypeValue`,
    :class:`Optional` ...) or a :class:`CelError`.
    """

    __slots__ = ("_compiler", "_limits", "_node", "evaluate", "fn", "references", "result_type",
                 "source")  # fmt: skip

    def __init__(
        self,
        source: str,
        node: Node,
        result_type: CelType,
        references: frozenset[str],
        limits: Limits,
        declared: Mapping[str, Any] | None,
    ) -> None:
        self.source = source
        self.result_type = result_type
        self.references = references
        self._node = node
        self._limits = limits
        self._compiler = Compiler(limits, declared)
        slow = _runner(self._compiler.compile(node), limits.max_cost)
        self.evaluate: Callable[[Mapping[str, Any]], Any] = slow
        fast = build_fast(node, slow, limits.max_cost)
        self.fn: Callable[[Mapping[str, Any]], Any] = fast if fast is not None else slow

    @property
    def node(self) -> Node:
        """The checked AST (what charter.analysis encodes for a solver)."""
        return self._node

    @property
    def env(self) -> Mapping[str, Any] | None:
        """The declarations the AST was checked against (None when compiled unchecked)."""
        return self._compiler.declared

    def explain(self, activation: Mapping[str, Any]) -> list[tuple[str, Any]]:
        """Each top-level &&/|| operand's source text with its value, then the whole."""
        out: list[tuple[str, Any]] = []
        node = self._node
        if isinstance(node, Logic):
            for operand in node.operands:
                run = _runner(self._compiler.compile(operand), self._limits.max_cost)
                out.append((self.source[operand.start : operand.end], run(activation)))
        out.append((self.source, self.evaluate(activation)))
        return out

    def __repr__(self) -> str:
        return f"Compiled({self.source!r})"


def _parse(text: str, limits: Limits) -> Node:
    try:
        return parse(text, limits)
    except ParseFailure as ex:
        raise CelCompileError(ex.problems) from None


def compile_condition(
    text: str,
    env: Mapping[str, CelType],
    *,
    limits: Limits = _DEFAULT_LIMITS,
    expect_bool: bool = True,
    defs: Definitions | None = None,
) -> Compiled:
    """Parse, check and compile a CEL condition; raises CelCompileError(problems).

    ``defs``: the policy's named constants and conditions (checked as declared, inlined into the
    compiled closures; see :mod:`charter.cel.inline`).
    """
    node = _parse(text, limits)
    check_env = {**env, **defs.types()} if defs else env
    try:
        result_type, refs, problems = check(node, text, check_env, limits, defs or None)
    except RecursionError:
        raise CelCompileError(
            [CelProblem(ProblemKind.TOO_COMPLEX, "the condition is too complex", 0, len(text))]
        ) from None
    if expect_bool and not problems and result_type.kind not in ("bool", "dyn"):
        problems.append(
            CelProblem(
                ProblemKind.NOT_BOOL,
                f"the condition must be true or false, but it gives "
                f"{'an' if str(result_type)[:1] in 'aeiou' else 'a'} {result_type}",
                0,
                len(text),
                "compare the value with something, e.g. x > 0",
            )
        )
    if problems:
        raise CelCompileError(problems)
    if defs:
        node = _inlined(node, text, defs, limits)
        refs = defs.strip(refs)
    return Compiled(text, node, result_type, refs, limits, env)


def _inlined(node: Node, text: str, defs: Definitions, limits: Limits) -> Node:
    try:
        out = inline(node, defs)
    except (InlineTooLarge, RecursionError):
        raise CelCompileError(
            [
                CelProblem(
                    ProblemKind.TOO_COMPLEX,
                    "the condition is too complex once its named conditions are written out",
                    0,
                    len(text),
                    "split it, or call fewer named conditions inside one another",
                )
            ]
        ) from None
    deep = too_deep(out, limits.max_comprehension_nesting)
    if deep is not None:
        # (an inlined body's nodes carry the span of their call: the problem points at the call)
        raise CelCompileError(
            [
                CelProblem(
                    ProblemKind.TOO_COMPLEX,
                    f"too many nested {deep.macro}() once its named conditions are written out "
                    f"(the limit is {limits.max_comprehension_nesting})",
                    deep.start,
                    deep.end,
                    "a named condition's macros count where it is called: call it outside the "
                    "macro, or pass the list to it",
                )
            ]
        )
    return out


def define(
    name: str,
    params: tuple[tuple[str, CelType], ...],
    text: str,
    env: Mapping[str, CelType],
    defs: Definitions,
    *,
    limits: Limits = _DEFAULT_LIMITS,
) -> Definition:
    """Check a named condition's body once (its parameters typed as declared) and prepare it.

    ``env``: the request roots the body may read; ``defs``: the constants and the conditions
    declared before it (a condition never calls itself, directly or not). Raises
    CelCompileError(problems) with offsets into ``text``.
    """
    node = _parse(text, limits)
    check_env = {**env, **defs.types(), **dict(params)}
    try:
        result_type, refs, problems = check(node, text, check_env, limits, defs)
    except RecursionError:
        raise CelCompileError(
            [CelProblem(ProblemKind.TOO_COMPLEX, "the condition is too complex", 0, len(text))]
        ) from None
    if not problems and result_type.kind not in ("bool", "dyn"):
        problems.append(
            CelProblem(
                ProblemKind.NOT_BOOL,
                f"a named condition must be true or false, but this one gives {result_type}",
                0,
                len(text),
                "compare the value with something",
            )
        )
    if problems:
        raise CelCompileError(problems)
    names = frozenset(p for p, _ in params)
    body = prepare(name, _inlined(node, text, defs, limits), names)
    roots = frozenset(free_names(body)) - names
    references = frozenset(r for r in defs.strip(refs) if r.split(".", 1)[0] not in names)
    return Definition(name, params, body, roots, references)


def compile_unchecked(text: str, *, limits: Limits = _DEFAULT_LIMITS) -> Compiled:
    """Compile without name and type checking (only syntax and size problems are fatal).

    Names resolve at run time against the activation, so ill-typed expressions can be evaluated
    (the conformance suite's ``disable_check`` cases and the differential tests use this).
    """
    node = _parse(text, limits)
    return Compiled(text, node, DYN, frozenset(), limits, None)


__all__ = ["BOOL", "Compiled", "compile_condition", "compile_unchecked", "define"]
