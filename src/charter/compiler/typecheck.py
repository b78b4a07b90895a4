"""Compiler stage 2 (typecheck): CEL conditions checked against the declared request schema and compiled."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from charter.cel import (
    CelCompileError,
    CelProblem,
    CelType,
    Compiled,
    Definitions,
    Limits,
    ProblemKind,
    compile_condition,
)
from charter.cel.parser import escape_warnings
from charter.compiler.resolve import RuleEntry, Symbols
from charter.diagnostics import Code, Diagnostic, Span, did_you_mean, error, warning
from charter.enums import RuleKind
from charter.syntax import ast

S, N, D, B = CelType.STRING, CelType.INT, CelType.DOUBLE, CelType.BOOL
LS = CelType.LIST(S)

_TYPES: dict[str, CelType] = {
    "int": N,
    "double": D,
    "number": D,
    "string": S,
    "bool": B,
    "timestamp": CelType.TIMESTAMP,
    "duration": CelType.DURATION,
    "any": CelType.DYN,
}

_PROBLEM_CODES = {
    ProblemKind.SYNTAX: Code.E301_CEL_SYNTAX,
    ProblemKind.UNKNOWN_NAME: Code.E302_CEL_UNKNOWN_NAME,
    ProblemKind.TYPE: Code.E303_CEL_TYPE,
    ProblemKind.TOO_COMPLEX: Code.E304_CEL_TOO_COMPLEX,
    ProblemKind.UNSUPPORTED: Code.E305_CEL_UNSUPPORTED,
    ProblemKind.NOT_BOOL: Code.E306_CEL_NOT_BOOL,
    ProblemKind.BAD_CALL: Code.E308_CEL_BAD_CALL,
    ProblemKind.BAD_PATTERN: Code.E309_CEL_BAD_PATTERN,
    ProblemKind.UNGUARDED: Code.E310_CEL_UNGUARDED_ARG,
}

_CLAUSE_WORDS = [
    "actor",
    "action",
    "when",
    "unless",
    "signal",
    "after",
    "before",
    "reason",
    "mode",
    "on",
    "approvers",
    "quorum",
    "separation",
    "expires",
    "redeem",
    "to",
    "severity",
    "stop",
    "scope",
    "limit",
    "timezone",
    "trigger",
    "then",
]
_SWALLOWED = re.compile(
    r"\s({})\s+(?:\"|[A-Za-z0-9_-]+\s*$|[A-Za-z0-9_-]+\s+[A-Za-z\"])".format("|".join(_CLAUSE_WORDS))
)

SIGNAL_FIELDS: dict[str, CelType] = {
    "source": S,
    "kind": S,
    "severity": S,
    "score": D,
    "note": S,
    "rank": N,
}


def cel_type(ref: ast.TypeRef, diags: list[Diagnostic]) -> CelType:
    """The CEL type of a declared type, reporting unknown type names."""
    if ref.name in ("list", "set"):  # a set is a list to the checker (docs/language.md, "Constants")
        return CelType.LIST(cel_type(ref.element, diags) if ref.element else CelType.DYN)
    if ref.name == "map":
        return CelType.MAP(S, cel_type(ref.element, diags) if ref.element else CelType.DYN)
    found = _TYPES.get(ref.name)
    if found is None:
        diags.append(
            error(
                Code.E201_UNKNOWN_NAME,
                f"unknown type '{ref.name}'",
                ref.span,
                did_you_mean(ref.name, _TYPES)
                or "types: " + ", ".join(sorted(_TYPES)) + ", list of T, set of T, map of T",
            )
        )
        return CelType.DYN
    return found


# Shared root types: every rule's environment refers to the same objects, so the compiler's
# per-object type keys are computed once rather than once per rule.
def _action(arg_labels: CelType) -> CelType:
    return CelType.OBJECT(
        {
            "kind": S,
            "target": S,
            "args": CelType.MAP(S, CelType.DYN),
            "labels": LS,
            "arg_labels": arg_labels,
        }
    )


_ACTION_OPEN = _action(CelType.MAP(S, LS))
_TOOL = CelType.OBJECT({"name": S, "category": S, "tags": LS})
_COST = CelType.MAP(S, D)
_SIGNALS = CelType.LIST(CelType.OBJECT(SIGNAL_FIELDS))
#: one run grant instance as ``run.grants`` lists it (its params under their names, as dyn)
GRANT_INSTANCE = CelType.MAP(S, CelType.DYN)
_RUN = CelType.OBJECT({"steps": N, "labels": LS, "grants": CelType.LIST(GRANT_INSTANCE)})
_OPEN_ARGS = CelType.MAP(S, CelType.DYN)
#: ``history``: the run's entries (``earlier`` of any call), oldest first
_HISTORY = CelType.LIST(
    CelType.OBJECT(
        {
            "call": S,
            "step": N,
            "at": D,
            "agent": S,
            "kind": S,
            "tool": S,
            "outcome": S,
            "args": _OPEN_ARGS,
            "result": _OPEN_ARGS,
            "labels": LS,
        }
    )
)
_RESULT = CelType.OBJECT({"outcome": S, "failed": B, "cost": CelType.MAP(S, D), "labels": LS})


@dataclass
class Environments:
    """The CEL declarations conditions can see, derived once from the symbol table."""

    actor: CelType
    context: CelType
    attribute_types: dict[str, CelType]
    context_types: dict[str, CelType]
    tool_args: dict[str, dict[str, CelType]]
    diags: list[Diagnostic] = field(default_factory=list)
    #: the result fields each tool declares (``result NAME: type``): what run history keeps
    tool_results: dict[str, dict[str, CelType]] = field(default_factory=dict)
    #: ``args`` and ``action`` types already built, by targeted tools (many rules target the same tools).
    args_cache: dict[tuple[str, ...], tuple[CelType, CelType]] = field(default_factory=dict)
    #: the policy's named constants and conditions, seen by every condition
    defs: Definitions = field(default_factory=Definitions)
    #: named conditions refused where they are declared (reported there; a call is not reported
    #: again as an unknown function)
    refused: frozenset[str] = frozenset()

    def base(self, args: CelType, action: CelType = _ACTION_OPEN) -> dict[str, CelType]:
        """Roots every condition sees."""
        return {
            "actor": self.actor,
            "action": action,
            "args": args,
            "tool": _TOOL,
            "context": self.context,
            "cost": _COST,
            "signals": _SIGNALS,
            "run": _RUN,
            "history": _HISTORY,
        }


def _no_set(ref: ast.TypeRef, diags: list[Diagnostic]) -> None:
    """E201 for ``set of T`` outside constants and condition parameters (requests carry lists)."""
    t: ast.TypeRef | None = ref
    while t is not None:
        if t.name == "set":
            diags.append(error(Code.E201_UNKNOWN_NAME, "'set of' is only for constants and condition "
                               "parameters", t.span, "requests carry lists: write list of ..."))  # fmt: skip
            return
        t = t.element


def environments(sym: Symbols) -> Environments:
    """Build the declared request schema as CEL types."""
    diags: list[Diagnostic] = []
    for attribute in sym.attributes.values():
        _no_set(attribute.type, diags)
    for field_decl in sym.context.values():
        _no_set(field_decl.type, diags)
    for tool in sym.tools.values():
        for a in tool.args:
            _no_set(a.type, diags)
    attrs = {n: cel_type(a.type, diags) for n, a in sym.attributes.items()}
    ctx = {n: cel_type(c.type, diags) for n, c in sym.context.items()}
    actor_fields: dict[str, CelType] = {
        "id": S,
        "roles": LS,
        "chain": LS,
        "depth": N,
        "human": S,
    }
    actor_fields.update(attrs)
    context_fields: dict[str, CelType] = {
        "workflow": S,
        "run": S,
        "tenant": S,
        "env": S,
        "time": CelType.DYN,
    }
    context_fields.update(ctx)
    tool_args = {
        name: {a.name.value: cel_type(a.type, diags) for a in tool.args} for name, tool in sym.tools.items()
    }
    for tool in sym.tools.values():
        for r in tool.results:
            _no_set(r.type, diags)
    tool_results = {
        name: {r.name.value: cel_type(r.type, diags) for r in tool.results}
        for name, tool in sym.tools.items()
    }
    envs = Environments(
        CelType.OBJECT(actor_fields),
        CelType.OBJECT(context_fields),
        attrs,
        ctx,
        tool_args,
        diags,
        tool_results,
    )
    if sym.constants or sym.conditions:
        from charter.compiler.define import definitions

        roots = envs.base(_OPEN_ARGS)
        envs.defs = definitions(sym.constants, sym.conditions, sym.constant_files, roots, cel_type, diags)
        envs.refused = frozenset(sym.conditions) - frozenset(envs.defs.conditions)
    return envs


def targeted_tools(entry: RuleEntry, sym: Symbols) -> list[str] | None:
    """The declared tools a rule can apply to, or None when it can apply to any tool."""
    clause = entry.one("action")
    if clause is None:
        return None
    sel: ast.ActionSel = clause.selector
    if sel.kind is None or sel.kind.value != "call" or sel.target is None or sel.target.by == "any":
        return None
    return sel.target.tool_names(sym.tags, sym.categories)


def args_type(tools: list[str] | None, envs: Environments) -> tuple[CelType, CelType]:
    """The ``args`` and ``action`` types of a rule over ``tools``.

    When every targeted tool declares its arguments, ``args`` (and ``action.arg_labels``) is a
    closed record of the arguments any of them declares; an argument only some of them declare is
    *partial*: reading it needs a ``has()`` guard (E310), since the other tools' calls lack it.
    """
    if not tools or any(not envs.tool_args.get(t) for t in tools):
        return _OPEN_ARGS, _ACTION_OPEN
    key = tuple(tools)
    found = envs.args_cache.get(key)
    if found is not None:
        return found
    fields: dict[str, CelType] = {}
    declared_by: dict[str, list[str]] = {}
    for t in dict.fromkeys(tools):
        for name, typ in envs.tool_args[t].items():
            fields[name] = typ if fields.get(name, typ) == typ else CelType.DYN
            declared_by.setdefault(name, []).append(t)
    everyone = list(dict.fromkeys(tools))
    partial = {
        name: f"{', '.join(by)} declare{'s' if len(by) == 1 else ''} it, "
        f"{', '.join(t for t in everyone if t not in by)} "
        f"do{'es' if len(everyone) - len(by) == 1 else ''} not"
        for name, by in declared_by.items()
        if len(by) < len(everyone)
    }
    labels = CelType.OBJECT(dict.fromkeys(fields, LS), partial=partial)
    found = envs.args_cache[key] = (CelType.OBJECT(fields, partial=partial), _action(labels))
    return found


def offset_span(span: Span, text: str, start: int, end: int) -> Span:
    """A span inside a condition, given character offsets into its text."""
    start = max(0, min(start, len(text)))
    end = max(start, min(end, len(text)))
    line = span.line + text.count("\n", 0, start)
    col = span.column + start if line == span.line else start - text.rfind("\n", 0, start)
    end_line = span.line + text.count("\n", 0, end)
    if end_line == line:
        end_col = col + max(1, end - start)
    else:
        end_col = col + 1
        end_line = line
    return Span(span.path, line, col, end_line, end_col, span.start + start, span.start + end)


class ConditionCompiler:
    """Compiles conditions with a cache: identical (text, environment) pairs compile once."""

    def __init__(
        self,
        previous: Mapping[tuple[str, Any, Any], Compiled | CelCompileError] | None = None,
        defs: Definitions | None = None,
    ) -> None:
        #: the policy's named constants and conditions (part of every cache key: an edit to one
        #: recompiles the conditions that may read it)
        self.defs = defs or Definitions()
        self._defs_key: Any = _defs_key(self.defs)
        #: exactly the conditions this compile used (later stages read what conditions refer to)
        self.cache: dict[tuple[str, Any, Any], Compiled | CelCompileError] = {}
        #: an earlier compile's cache, consulted on a miss (an editor recompiling after each edit)
        self.previous = previous or {}
        # Structural keys of the type objects seen so far, by identity; the type is kept with its
        # key so its id cannot be reused by another object while this compiler lives.
        self._type_keys: dict[int, tuple[CelType, Any]] = {}
        #: the policy's grant kinds, which ``granted("KIND")`` must name (charter.compiler.grants)
        self.grant_kinds: Mapping[str, Any] = {}
        #: compiling a grant's own clauses (where granted() is out of place)
        self.in_grant = False
        #: named conditions refused where declared (Environments.refused)
        self.refused: frozenset[str] = frozenset()

    def _env_key(self, env: Mapping[str, CelType]) -> Any:
        # INVARIANT: structural (object fields included), so a condition is only reused for an
        # identical declaration environment.
        return tuple(sorted((name, self._type_key(t)) for name, t in env.items()))

    def _type_key(self, t: CelType) -> Any:
        found = self._type_keys.get(id(t))
        if found is None:
            found = self._type_keys[id(t)] = (t, _type_key(t))
        return found[1]

    def compile(
        self,
        text: str,
        env: Mapping[str, CelType],
        span: Span,
        diags: list[Diagnostic],
        *,
        numeric: bool = False,
    ) -> Compiled | None:
        """Compile one condition; problems become diagnostics located inside the condition.

        ``numeric``: an ``amount`` expression, which gives an int or a double instead of a bool.
        """
        key = (text, self._env_key(env), (self._defs_key, numeric))
        found = self.cache.get(key)
        if found is None:
            found = self.previous.get(key)
            if found is not None:
                self.cache[key] = found
        if found is None:
            try:
                found = compile_condition(text, env, defs=self.defs, expect_bool=not numeric)
                if numeric and found.result_type.kind not in ("int", "uint", "double", "dyn"):
                    found = CelCompileError(
                        [
                            CelProblem(
                                ProblemKind.TYPE,
                                f"an amount must be a number, but this gives {found.result_type}",
                                0,
                                len(text),
                                "count a numeric argument, e.g. amount args.amount",
                            )
                        ]
                    )
            except CelCompileError as exc:
                found = exc
            except RecursionError:
                found = CelCompileError([])
            self.cache[key] = found
        if isinstance(found, CelCompileError):
            problems = found.problems or []
            swallowed = _SWALLOWED.search(text)
            if swallowed and any(p.kind is ProblemKind.SYNTAX for p in problems):
                kw = swallowed.group(1)
                diags.append(
                    error(
                        Code.E301_CEL_SYNTAX,
                        f"the condition runs into '{kw}': a condition ends at the end of its line",
                        offset_span(span, text, swallowed.start(1), swallowed.end(1)),
                        f"start '{kw}' on a new line",
                    )
                )
                return None
            if not problems:
                diags.append(error(Code.E304_CEL_TOO_COMPLEX, "the condition is too complex", span))
            for p in problems:
                if (
                    p.kind is ProblemKind.UNSUPPORTED
                    and text[p.start : p.end].split("(", 1)[0] in self.refused
                ):
                    continue  # a call of a named condition refused where declared (reported there)
                where = offset_span(span, text, p.start, p.end)
                misplaced = _misplaced(p, text, env)
                if misplaced is not None:
                    diags.append(error(Code.E307_CEL_WRONG_PLACE, misplaced[0], where, misplaced[1]))
                    continue
                code = _PROBLEM_CODES.get(p.kind, Code.E301_CEL_SYNTAX)
                diags.append(error(code, p.message, where, p.help))
            return None
        if "granted" in text:
            from charter.compiler.grants import check_granted

            check_granted(text, found.node, span, self.grant_kinds, diags, self.in_grant)
        for start, end in escape_warnings(text, _LIMITS):
            diags.append(
                warning(
                    Code.W510_CEL_ESCAPE,
                    "'\\b' in a text is a backspace character, not a word boundary",
                    offset_span(span, text, start, end),
                    'write the pattern as a raw text, r"\\bword\\b", where backslashes are kept as they are',
                )
            )
        return found


_LIMITS = Limits()


#: Condition roots that exist only in some places: where they exist, and how to say it elsewhere.
_PLACED_ROOTS: dict[str, tuple[str, str]] = {
    "result": ("'on result' rules", "check the outcome of an action in an 'on result' rule"),
    "estimate": ("'on result' rules", "compare the estimate with the cost in an 'on result' rule"),
    "earlier": (
        "an 'after EVENT where ...' or 'before EVENT where ...' condition",
        "relate the action to an earlier call with 'after call TOOL where earlier.args.x == args.y'",
    ),
    **{
        name: (
            "a 'signal KIND where ...' condition",
            f"to test signals here, write signals.exists(s, s.{name} == ...)",
        )
        for name in SIGNAL_FIELDS
    },
}


def _misplaced(p: CelProblem, text: str, env: Mapping[str, CelType]) -> tuple[str, str] | None:
    """E307 (message, help) when an unknown name is a root that only exists in other places."""
    if p.kind is not ProblemKind.UNKNOWN_NAME or not p.message.startswith("unknown name '"):
        return None
    name = text[p.start : p.end]
    place = _PLACED_ROOTS.get(name)
    if place is None or name in env:
        return None
    return (f"'{name}' is only available in {place[0]}", place[1])


def _defs_key(defs: Definitions) -> Any:
    """A structural key of the definitions (constants by value, conditions by their bodies)."""
    if not defs:
        return None
    consts = tuple(sorted((n, _type_key(c.type), repr(c.value)) for n, c in defs.constants.items()))
    conds = tuple(sorted((n, repr(d.params), repr(d.body)) for n, d in defs.conditions.items()))
    return (consts, conds)


def _type_key(t: CelType | None) -> Any:
    if t is None:
        return None
    fields = tuple(sorted((k, _type_key(v)) for k, v in t.fields.items())) if t.fields else None
    partial = tuple(sorted(t.partial.items())) if t.partial else None
    return (t.kind, _type_key(t.elem), _type_key(t.key), _type_key(t.val), fields, t.open, partial, t.name)


def rule_env(entry: RuleEntry, sym: Symbols, envs: Environments) -> dict[str, CelType]:
    """The CEL roots visible to one rule's conditions."""
    env = envs.base(*args_type(targeted_tools(entry, sym), envs))
    if entry.rule.kind is RuleKind.RESULT:
        env["result"] = _RESULT
        env["estimate"] = _COST
    return env


def event_tools(ev: ast.EventSel, sym: Symbols) -> list[str] | None:
    """The declared tools a ``call`` event can match, or None when it can match any call."""
    if ev.by != "call" or ev.target is None or ev.target.by == "any":
        return None
    return ev.target.tool_names(sym.tags, sym.categories)


def _agreed(tools: list[str] | None, declared: Mapping[str, Mapping[str, CelType]]) -> CelType:
    """A record of the fields ``tools`` declare when every one declares the same fields with the
    same types; a map of any otherwise (docs/semantics.md, "History with conditions")."""
    if not tools:
        return _OPEN_ARGS
    first = declared.get(tools[0]) or {}
    if not first or any(dict(declared.get(t) or {}) != dict(first) for t in tools[1:]):
        return _OPEN_ARGS
    return CelType.OBJECT(dict(first))


def earlier_type(tools: list[str] | None, envs: Environments) -> CelType:
    """The type of ``earlier`` (one history entry) for an event over ``tools``."""
    return CelType.OBJECT(
        {
            "call": S,
            "step": N,
            "at": D,
            "agent": S,
            "kind": S,
            "tool": S,
            "outcome": S,
            "args": _agreed(tools, envs.tool_args),
            "result": _agreed(tools, envs.tool_results),
            "labels": LS,
        }
    )


def where_env(base: Mapping[str, CelType], earlier: CelType) -> dict[str, CelType]:
    """Roots of an ``after/before EVENT where ...`` condition: ``earlier``, then the rule's."""
    env = dict(base)
    env["earlier"] = earlier
    return env


def signal_env(base: Mapping[str, CelType]) -> dict[str, CelType]:
    """Roots of a ``signal KIND where ...`` condition: the signal's fields, then the rest."""
    env = dict(base)
    env.update(SIGNAL_FIELDS)
    return env
