"""Compiler stage 0 (load): reads policy files and their includes and inventories into modules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from charter.diagnostics import Code, Diagnostic, Span, error
from charter.syntax import ParseResult, ast, parse_file, parse_text
from charter.syntax.parser import decode

if TYPE_CHECKING:
    from charter.compiler.cache import CompileCache

#: Texts that stand for files, by resolved path: an editor's unsaved buffers (see ``load``).
Overlay = Mapping[Path, str]

#: File suffix of policy files found when a directory is given.
POLICY_SUFFIX = ".charter"
#: At most this many files in one policy (includes included).
MAX_FILES = 2000


@dataclass
class Inventory:
    """Agents and groups read from an ``agents from "file.yaml"`` inventory."""

    path: str
    agents: list[dict[str, Any]] = field(default_factory=list)
    groups: dict[str, list[str]] = field(default_factory=dict)
    span: Span | None = None


@dataclass
class Loaded:
    """The modules of one policy, their sources and inventories."""

    modules: list[ast.Module] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    inventories: list[Inventory] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    #: values of ``const NAME: T from "FILE"`` by constant name, and the texts of those files
    #: (part of the policy revision)
    constant_files: dict[str, Any] = field(default_factory=dict)
    data_sources: dict[str, str] = field(default_factory=dict)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def expand(paths: list[str | Path], overlay: Overlay | None = None) -> tuple[list[Path], list[Diagnostic]]:
    """Files named directly, plus every ``*.charter`` file under named directories (sorted).

    Overlay texts of policy files under a named directory count as files there, saved or not.
    """
    files: list[Path] = []
    diags: list[Diagnostic] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(x for x in p.rglob("*" + POLICY_SUFFIX) if x.is_file())
            if overlay:
                real = p.resolve()
                have = {x.resolve() for x in found}
                extra = [
                    x
                    for x in overlay
                    if x.suffix == POLICY_SUFFIX and x not in have and x.is_relative_to(real)
                ]
                found = sorted([*found, *extra])
            if not found:
                diags.append(
                    error(
                        Code.E005_NO_POLICIES,
                        f"no policy files ({POLICY_SUFFIX}) in directory {raw}",
                        Span.point(str(raw)),
                        f"policy files end in {POLICY_SUFFIX}",
                    )
                )
            files.extend(found)
        elif p.exists() or (overlay is not None and p.resolve() in overlay):
            files.append(p)
        else:
            diags.append(error(Code.E204_MISSING_FILE, f"no such file: {raw}", Span.point(str(raw))))
    return files, diags


def _read_inventory(path: Path, shown: str, span: Span) -> tuple[Inventory | None, Diagnostic | None]:
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except FileNotFoundError:
        return None, error(Code.E204_MISSING_FILE, f"inventory file not found: {shown}", span)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return None, error(
            Code.E205_BAD_INVENTORY, f"cannot read inventory {shown}: {str(exc).splitlines()[0]}", span
        )
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return None, error(
            Code.E205_BAD_INVENTORY,
            f"inventory {shown} must be a mapping with 'agents' and 'groups'",
            span,
        )
    inv = Inventory(path=shown, span=span)
    agents = data.get("agents", []) or []
    groups = data.get("groups", {}) or {}
    if not isinstance(agents, list) or not all(isinstance(a, dict) and "id" in a for a in agents):
        return None, error(
            Code.E205_BAD_INVENTORY,
            f"inventory {shown}: 'agents' must be a list of mappings with an id",
            span,
            "e.g. agents: [{id: research-1, roles: [research], attributes: {clearance: 1}}]",
        )
    if not isinstance(groups, dict) or not all(isinstance(v, list) for v in groups.values()):
        return None, error(
            Code.E205_BAD_INVENTORY, f"inventory {shown}: 'groups' must map names to member lists", span
        )
    inv.agents = agents
    inv.groups = {str(k): [str(m) for m in v] for k, v in groups.items()}
    return inv, None


#: Largest constants file, and most values one may hold (docs/language.md, "Constants").
MAX_CONSTANT_FILE_BYTES = 4 * 1024 * 1024
MAX_CONSTANT_FILE_VALUES = 100_000


def _read_constants(path: Path, shown: str, span: Span) -> tuple[Any, str | None, Diagnostic | None]:
    """The value of a constants file (one key, whose value is a list or a scalar) and its text."""

    def bad(msg: str, help: str | None = None) -> tuple[Any, None, Diagnostic]:
        return None, None, error(Code.E205_BAD_INVENTORY, f"constants file {shown}: {msg}", span, help)

    try:
        if path.stat().st_size > MAX_CONSTANT_FILE_BYTES:
            return bad(f"larger than {MAX_CONSTANT_FILE_BYTES // (1024 * 1024)} MiB")
        text = path.read_text("utf-8")
        data = yaml.safe_load(text)
    except FileNotFoundError:
        return (
            None,
            None,
            error(
                Code.E204_MISSING_FILE,
                f"constants file not found: {shown}",
                span,
                "the path is relative to the policy file",
            ),
        )
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
        return bad(f"cannot read it: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    if not isinstance(data, dict) or len(data) != 1:
        return bad(
            "it must hold one key, whose value is a list or a single value", "e.g. payees: [FR76..., DE89...]"
        )
    (value,) = data.values()
    if isinstance(value, list):
        if len(value) > MAX_CONSTANT_FILE_VALUES:
            return bad(f"more than {MAX_CONSTANT_FILE_VALUES:,} values")
        if not all(isinstance(v, (str, int, float, bool)) for v in value):
            return bad("the list may hold only texts, numbers and true/false")
    elif not isinstance(value, (str, int, float, bool)):
        return bad("the value must be a list, a text, a number or true/false")
    return value, text, None


def _parse(path: Path, real: Path, overlay: Overlay | None, cache: CompileCache | None) -> ParseResult:
    """One file's parse: its overlay text when it has one, else the file; through the cache if any."""
    if overlay is not None and real in overlay:
        shown = str(path)
        text, problems = decode(shown, overlay[real].encode("utf-8", "surrogatepass"))
        if text is None:
            return ParseResult(None, tuple(problems), "")
        return cache.parse_text(text, shown) if cache is not None else parse_text(text, shown)
    return cache.parse_file(path) if cache is not None else parse_file(path)


def load(
    paths: list[str | Path], *, overlay: Overlay | None = None, cache: CompileCache | None = None
) -> Loaded:
    """Parse the given files or directories, following includes; cycles and missing files are diagnosed.

    ``overlay`` maps resolved paths to texts read instead of the files (an editor's unsaved
    buffers); ``cache`` reuses the parses of unchanged files from the previous compile.
    """
    out = Loaded()
    files, diags = expand(paths, overlay)
    out.diagnostics.extend(diags)
    seen: dict[Path, str] = {}
    stack: list[Path] = []

    def visit(path: Path, via: Span | None) -> None:
        real = path.resolve()
        if real in stack:
            chain = " -> ".join(_display(p) for p in [*stack[stack.index(real) :], real])
            out.diagnostics.append(
                error(
                    Code.E203_INCLUDE_CYCLE,
                    f"include cycle: {chain}",
                    via or Span.point(_display(path)),
                    "remove one of the includes",
                )
            )
            return
        if real in seen:
            return
        if len(seen) >= MAX_FILES:
            out.diagnostics.append(
                error(Code.E003_TOO_LARGE, f"more than {MAX_FILES} policy files", Span.point(_display(path)))
            )
            return
        shown = _display(path)
        seen[real] = shown
        if not path.exists() and (overlay is None or real not in overlay):
            out.diagnostics.append(
                error(
                    Code.E204_MISSING_FILE,
                    f"included file not found: {shown}",
                    via or Span.point(shown),
                    "paths in include are relative to the including file",
                )
            )
            return
        result = _parse(path, real, overlay, cache)
        out.sources[shown] = result.source
        out.diagnostics.extend(result.diagnostics)
        if result.module is None:
            return
        module = result.module.model_copy(update={"path": shown})
        empty = _empty(module, shown)
        if empty is not None:
            out.diagnostics.append(empty)
        out.modules.append(module)
        stack.append(real)
        for item in module.items:
            if isinstance(item, ast.Include):
                visit(path.parent / item.path, item.span)
            elif isinstance(item, ast.AgentsFrom):
                inv_path = path.parent / item.path
                inv, diag = _read_inventory(inv_path, _display(inv_path), item.span)
                if diag is not None:
                    out.diagnostics.append(diag)
                if inv is not None:
                    out.inventories.append(inv)
            elif isinstance(item, ast.ConstDecl) and item.file is not None:
                data_path = path.parent / item.file
                data_shown = _display(data_path)
                if not data_path.resolve().is_relative_to(path.parent.resolve()):
                    # A constants file is data of this policy: it lives in the policy's directory tree.
                    out.diagnostics.append(
                        error(
                            Code.E205_BAD_INVENTORY,
                            f"constants file {item.file} is outside the policy's directory",
                            item.span,
                            "keep it beside the policy file or below it",
                        )
                    )
                    continue
                value, text, diag = _read_constants(data_path, data_shown, item.span)
                if diag is not None:
                    out.diagnostics.append(diag)
                else:
                    out.constant_files[item.name.value] = value
                    out.data_sources[data_shown] = text or ""
        stack.pop()

    for f in files:
        visit(f, None)
    return out


def load_text(text: str, path: str = "<string>") -> Loaded:
    """Parse one policy given as text (includes are not followed)."""
    from charter.syntax import parse_text

    out = Loaded()
    result = parse_text(text, path)
    out.sources[path] = text
    out.diagnostics.extend(result.diagnostics)
    if result.module is not None:
        empty = _empty(result.module, path)
        if empty is not None:
            out.diagnostics.append(empty)
        out.modules.append(result.module)
    return out


def _empty(module: ast.Module, shown: str) -> Diagnostic | None:
    """E006 for a file with nothing but whitespace and comments (a truncated write, the wrong file)."""
    if module.items:
        return None
    return error(
        Code.E006_EMPTY,
        "the file is empty: it has no declarations or rules",
        Span.point(shown),
        "write the policy or remove the file; an empty file is usually an unfinished write",
    )
