"""The compiler: named stages run in order (load, resolve, typecheck, analyse, index)."""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from charter.compiler.cache import CompileCache
from charter.compiler.load import Loaded, Overlay, load, load_text
from charter.compiler.lower import Lowered, Lowerer
from charter.compiler.ranges import check_ranges
from charter.compiler.resolve import Symbols, resolve
from charter.compiler.typecheck import ConditionCompiler, Environments, environments
from charter.diagnostics import Code, Diagnostic, Span, sort_key, warning
from charter.engine import policy as ir
from charter.engine.boundaries import KINDS
from charter.engine.index import Index
from charter.syntax import ast

#: Diagnostics reported per run before the rest are summarised.
MAX_DIAGNOSTICS = 200

STAGES = ("load", "resolve", "typecheck", "analyse", "index")


@dataclass
class CompileResult:
    """What a compile produced: the policy (None on errors), diagnostics, sources and stage data."""

    policy: ir.CompiledPolicy | None
    diagnostics: list[Diagnostic]
    sources: dict[str, str]
    symbols: Symbols | None = None
    lowered: Lowered | None = None
    stage: str = "index"
    extra: dict[str, Any] = field(default_factory=dict)
    #: the parsed files (typed AST), for tools that read the source structure (editors, graphs)
    modules: list[ast.Module] = field(default_factory=list)

    @property
    def errors(self) -> list[Diagnostic]:
        """Only the errors."""
        return [d for d in self.diagnostics if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        """Only the warnings."""
        return [d for d in self.diagnostics if not d.is_error]


def _finish(diags: list[Diagnostic]) -> list[Diagnostic]:
    # Errors are kept before warnings, so a flood of warnings never hides an error; the note about
    # what was left out is a warning, so it never turns a clean compile into a failed one.
    unique = sorted(set(diags), key=lambda d: (not d.is_error, *sort_key(d)))
    if len(unique) > MAX_DIAGNOSTICS:
        rest = len(unique) - MAX_DIAGNOSTICS
        kept = unique[:MAX_DIAGNOSTICS]
        note = warning(
            Code.E901_TOO_MANY_ERRORS, f"{rest} more diagnostics not shown", Span.point(kept[-1].span.path)
        )
        return [*sorted(kept, key=sort_key), note]
    return sorted(unique, key=sort_key)


def revision_of(sources: dict[str, str], inventories: list[Any], names: dict[str, str] | None = None) -> str:
    """A content hash of every source file and its path relative to the policy root (order-independent).

    ``names`` maps each shown path to its root-relative name, so the revision is the same from
    any working directory and whether the policy was named by an absolute or a relative path.
    """
    h = hashlib.sha256()
    named = {(names or {}).get(path, path): text for path, text in sources.items()}
    for path in sorted(named):
        h.update(path.encode())
        h.update(b"\0")
        h.update(named[path].encode())
        h.update(b"\0")
    for inv in sorted(inventories, key=lambda i: i.path):
        h.update(repr((inv.agents, sorted(inv.groups.items()))).encode())
    return h.hexdigest()[:16]


def _agents(sym: Symbols, envs: Environments) -> dict[str, ir.AgentInfo]:
    out: dict[str, ir.AgentInfo] = {}
    for aid, a in sym.agents.items():
        roles = set(a.roles)
        attrs: dict[str, Any] = {}
        ancestors: list[str] = []
        cur = a.parent
        seen = {aid}
        chain = [a]
        while cur is not None and cur in sym.agents and cur not in seen:
            seen.add(cur)
            ancestors.append(cur)
            chain.append(sym.agents[cur])
            cur = sym.agents[cur].parent
        for link in reversed(chain):
            roles.update(link.roles)
            attrs.update({k: _plain(v) for k, v in link.attrs.items()})
        out[aid] = ir.AgentInfo(aid, frozenset(roles), attrs, tuple(ancestors))
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == int(value) and "." not in str(value) else float(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def build(loaded: Loaded, stop_after: str | None = None, cache: CompileCache | None = None) -> CompileResult:
    """Run the stages over loaded modules; stop early on errors or after ``stop_after``.

    With a ``cache``, conditions compiled by the previous compile are reused (see CompileCache).
    """
    # Compiling allocates many small objects that all stay alive: the cyclic GC would rescan them
    # again and again (quadratic on big policies), so it is paused for the compile.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _build(loaded, stop_after, cache)
    finally:
        if enabled:
            gc.enable()


def _build(loaded: Loaded, stop_after: str | None, cache: CompileCache | None) -> CompileResult:
    diags = list(loaded.diagnostics)
    res = CompileResult(None, diags, loaded.sources, stage="load", modules=loaded.modules)
    if stop_after == "load" or any(d.is_error for d in diags):
        res.diagnostics = _finish(diags)
        return res
    diags.extend(check_ranges(loaded.modules))
    sym, rdiags = resolve(loaded)
    diags.extend(rdiags)
    res.symbols, res.stage = sym, "resolve"
    envs = environments(sym)
    diags.extend(envs.diags)
    if stop_after == "resolve":
        res.diagnostics = _finish(diags)
        return res
    conds = ConditionCompiler(cache.conditions if cache is not None else None, envs.defs)
    conds.grant_kinds = sym.grants
    conds.refused = envs.refused
    lowerer = Lowerer(sym, envs, conds)
    kinds: dict[str, ir.GrantKind] = {}
    if sym.grants:
        from charter.compiler.grants import grant_kinds

        kinds = grant_kinds(sym, envs, conds, diags)
    for order, entry in enumerate(sym.rules):
        lowerer.lower(order, entry)
    if kinds:
        from charter.compiler.grants import never_fires

        spans = {e.rule.id.value: e.rule.id.span for e in sym.rules}
        diags.extend(never_fires(lowerer.out.rules, kinds, spans))
    if cache is not None:
        cache.keep_conditions(lowerer.conds.cache)
    diags.extend(lowerer.diags)
    res.lowered, res.stage = lowerer.out, "typecheck"
    if stop_after == "typecheck" or any(d.is_error for d in diags):
        res.diagnostics = _finish(diags)
        return res
    from charter.compiler.analyse import analyse
    from charter.compiler.unused import unused

    diags.extend(analyse(sym, lowerer.out))
    compiled = [c for c in lowerer.conds.cache.values() if not isinstance(c, Exception)]
    diags.extend(unused(loaded.modules, sym, compiled, (key[0] for key in lowerer.conds.cache)))
    res.stage = "analyse"
    if stop_after == "analyse":
        res.diagnostics = _finish(diags)
        return res
    res.policy = assemble(loaded, sym, envs, lowerer, kinds)
    res.stage = "index"
    res.diagnostics = _finish(diags)
    return res


def assemble(
    loaded: Loaded,
    sym: Symbols,
    envs: Environments,
    lowerer: Lowerer,
    grant_kinds: dict[str, ir.GrantKind] | None = None,
) -> ir.CompiledPolicy:
    """Stage 'index': the immutable compiled policy with its indexes."""
    low = lowerer.out
    tools = {
        name: ir.ToolInfo(
            name,
            t.category.value if t.category else None,
            frozenset(x.value for x in t.tags),
            {a.name.value: a.type.name for a in t.args},
            frozenset(a.name.value for a in t.args if a.secret),
            any(a.type.name in ("double", "number", "int") for a in t.args),
            envs.tool_results.get(name, {}),
            frozenset(r.name.value for r in t.results if r.secret),
        )
        for name, t in sym.tools.items()
    }
    ranks: dict[str, int] = {}
    if sym.rank is not None:
        n = len(sym.rank.names)
        ranks = {name.value: n - i for i, name in enumerate(sym.rank.names)}
    stops = ir.StopsConfig()
    if sym.stops is not None:
        op = sym.stops.operators.value if sym.stops.operators else None
        stops = ir.StopsConfig(
            op,
            tuple(sym.groups.get(op, ())) if op else (),
            sym.stops.resume_requires if sym.stops.resume_requires is not None else 2,
        )
    names = sorted(sym.module_names) or [Path(p).stem for p in sorted(loaded.sources)][:1]
    rules = tuple(low.rules)
    index = {
        "rules": Index(rules, order_key=lambda r: (-r.effect.rank, r.id)),
        **{kind.index: Index(getattr(low, kind.items), order_key=_by_id) for kind in KINDS},
    }
    return ir.CompiledPolicy(
        revision=revision_of({**loaded.sources, **loaded.data_sources}, loaded.inventories, loaded.names),
        name=names[0] if names else "policy",
        files=tuple(sorted(loaded.sources)),
        rules=rules,
        **{kind.items: tuple(getattr(low, kind.items)) for kind in KINDS},
        marks=tuple(low.marks.values()),
        tools=tools,
        agents=_agents(sym, envs),
        groups={k: tuple(v) for k, v in sym.groups.items()},
        units=frozenset(sym.units),
        signal_clears=frozenset(k for k, s in sym.signals.items() if s.clears),
        signal_source_rank=ranks,
        signal_kind_source={k: s.source.value for k, s in sym.signals.items() if s.source},
        escalations=lowerer.escalations,
        stops=stops,
        index=index,
        # a policy with grant kinds reads every run's grants and records its steps (run-started)
        uses_run_state=low.uses_run_state or bool(grant_kinds),
        history_detail=low.history_detail or any(t.results for t in sym.tools.values()),
        masks=tuple(ir.MaskRule(path, kind) for path, (kind, _) in sorted(sym.masks.items())),
        grant_kinds=grant_kinds or {},
    )


def _by_id(item: Any) -> str:
    return str(item.id)


def compile_paths(
    paths: list[str | Path],
    stop_after: str | None = None,
    *,
    overlay: Overlay | None = None,
    cache: CompileCache | None = None,
) -> CompileResult:
    """Compile files or directories.

    ``overlay`` maps resolved paths to texts read instead of those files (unsaved editor buffers);
    ``cache`` makes a recompile after a small edit reuse what did not change (see CompileCache).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        if cache is not None:
            cache.begin()
        result = build(load(paths, overlay=overlay, cache=cache), stop_after, cache)
        if cache is not None:
            cache.end()
        return result
    finally:
        if enabled:
            gc.enable()


def compile_text(text: str, path: str = "<string>", stop_after: str | None = None) -> CompileResult:
    """Compile one policy given as text."""
    return build(load_text(text, path), stop_after)


StageFn = Callable[[Loaded], CompileResult]
