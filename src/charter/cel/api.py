"""compile_condition and the Compiled object: the public face of charter.cel."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from celpy.evaluation import CELEvalError

from charter.cel.checker import check
from charter.cel.fastpath import build_fast
from charter.cel.limits import Limits
from charter.cel.runtime import CostExceeded, Fn, SlowCompiler, State
from charter.cel.syntax import Logic, Node, ParseFailure, parse
from charter.cel.types import BOOL, CelCompileError, CelError, CelProblem, CelType, ProblemKind
from charter.cel.values import error_message, from_cel

_DEFAULT_LIMITS = Limits()


def _runner(closure: Fn, max_cost: int) -> Callable[[Mapping[str, Any]], Any]:
    def run(activation: Mapping[str, Any]) -> Any:
        try:
            v = closure(State(activation, max_cost))
        except CostExceeded:
            return CelError("cost limit exceeded")
        except CELEvalError as ex:
            return CelError(error_message(ex))
        except Exception as ex:  # mirrors cel-python, where such exceptions end evaluation
            return CelError(error_message(ex))
        try:
            return from_cel(v)
        except Exception as ex:
            return CelError(error_message(ex))

    return run


class Compiled:
    """A compiled CEL condition: call `fn` (fastest) or `evaluate`; both never raise."""

    __slots__ = ("_limits", "_node", "_slow", "evaluate", "fn", "references", "result_type",
                 "source")  # fmt: skip

    def __init__(
        self,
        source: str,
        node: Node,
        result_type: CelType,
        references: frozenset[str],
        limits: Limits,
    ) -> None:
        self.source = source
        self.result_type = result_type
        self.references = references
        self._node = node
        self._limits = limits
        closure = SlowCompiler(limits).compile(node)
        self._slow = _runner(closure, limits.max_cost)
        self.evaluate: Callable[[Mapping[str, Any]], Any] = self._slow
        fast = build_fast(node, self._slow)
        self.fn: Callable[[Mapping[str, Any]], Any] = fast if fast is not None else self._slow

    def explain(self, activation: Mapping[str, Any]) -> list[tuple[str, Any]]:
        """Each top-level &&/|| operand's source text with its value, then the whole."""
        out: list[tuple[str, Any]] = []
        node = self._node
        if isinstance(node, Logic):
            comp = SlowCompiler(self._limits)
            for operand in node.operands:
                run = _runner(comp.compile(operand), self._limits.max_cost)
                out.append((self.source[operand.start : operand.end], run(activation)))
        out.append((self.source, self.evaluate(activation)))
        return out

    def __repr__(self) -> str:
        return f"Compiled({self.source!r})"


def compile_condition(
    text: str,
    env: Mapping[str, CelType],
    *,
    limits: Limits = _DEFAULT_LIMITS,
    expect_bool: bool = True,
) -> Compiled:
    """Parse, check and compile a CEL condition; raises CelCompileError(problems)."""
    try:
        node = parse(text, limits)
    except ParseFailure as ex:
        raise CelCompileError(ex.problems) from None
    try:
        result_type, refs, problems = check(node, text, env, limits)
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
    return Compiled(text, node, result_type, refs, limits)


__all__ = ["BOOL", "Compiled", "compile_condition", "compile_unchecked"]


def compile_unchecked(text: str, *, limits: Limits = _DEFAULT_LIMITS) -> Compiled:
    """Compile without name/type checking (only syntax, support and size problems are fatal).

    Used by the differential tests to exercise runtime semantics of ill-typed expressions.
    """
    try:
        node = parse(text, limits)
    except ParseFailure as ex:
        raise CelCompileError(ex.problems) from None
    from charter.cel.types import DYN

    _, refs, problems = check(node, text, _AnyEnv(), limits)
    fatal = [
        p
        for p in problems
        if p.kind in (ProblemKind.SYNTAX, ProblemKind.UNSUPPORTED, ProblemKind.TOO_COMPLEX)
    ]
    if fatal:
        raise CelCompileError(fatal)
    return Compiled(text, node, DYN, refs, limits)


class _AnyEnv(dict[str, CelType]):
    """An environment declaring every name as dyn."""

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> CelType:
        from charter.cel.types import DYN

        return DYN
