"""Compiler stage 0 (load): reads policy files and their includes and inventories into modules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter.diagnostics import Code, Diagnostic, Span, error
from charter.documents import DocumentError, parse_yaml
from charter.files import FileError, FileProblem, policy_files, read_bounded, resolve, root_of
from charter.syntax import ParseResult, ast, parse_text
from charter.syntax.parser import MAX_FILE_BYTES, decode

if TYPE_CHECKING:
    from charter.compiler.cache import CompileCache

#: Texts that stand for files, by resolved path: an editor's unsaved buffers (see ``load``).
Overlay = Mapping[Path, str]

#: File suffix of policy files found when a directory is given.
POLICY_SUFFIX = ".charter"
#: At most this many files in one policy (includes included).
MAX_FILES = 2000
#: Largest inventory file (``agents from``), in bytes.
MAX_INVENTORY_BYTES = 4 * 1024 * 1024

#: The diagnostic code of each reason a file was refused (see charter.files).
_FILE_CODES = {
    FileProblem.MISSING: Code.E204_MISSING_FILE,
    FileProblem.OUTSIDE_ROOT: Code.E208_OUTSIDE_ROOT,
    FileProblem.NOT_A_FILE: Code.E001_UNREADABLE,
    FileProblem.LOOP: Code.E001_UNREADABLE,
    FileProblem.UNREADABLE: Code.E001_UNREADABLE,
    FileProblem.TOO_LARGE: Code.E003_TOO_LARGE,
}


def file_diagnostic(exc: FileError, span: Span, *, include: bool = False) -> Diagnostic:
    """The diagnostic of a refused file (its message names the path, never the content)."""
    code = _FILE_CODES[exc.problem]
    if exc.problem is FileProblem.OUTSIDE_ROOT:
        return error(
            code,
            f"{'include' if include else 'file'} outside the policy directory: {_display(Path(exc.path))}",
            span,
            "a policy reads only files under its directory (no absolute paths, no '..' or symlink out)",
        )
    if exc.problem is FileProblem.MISSING and include and exc.reason != "dangling symlink":
        return error(
            code,
            f"included file not found: {_display(Path(exc.path))}",
            span,
            "paths in include are relative to the including file",
        )
    message = f"{_display(Path(exc.path))}: {exc.reason}" if include else exc.reason
    if exc.problem is FileProblem.TOO_LARGE:
        return error(code, message, span, "split the policy into several files joined with include")
    return error(code, message, span)


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
    #: each source's path relative to its policy root (what the revision hashes), by shown path
    names: dict[str, str] = field(default_factory=dict)
    inventories: list[Inventory] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    #: values of ``const NAME: T from "FILE"`` by constant name, and the texts of those files
    #: (part of the policy revision)
    constant_files: dict[str, Any] = field(default_factory=dict)
    data_sources: dict[str, str] = field(default_factory=dict)


def _real(path: Path) -> Path:
    """``path.resolve()``, or the absolute path when it cannot be resolved (a symlink loop)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except (ValueError, OSError, RuntimeError):  # outside the cwd, or a symlink loop
        return str(path)


def expand(
    paths: list[str | Path], overlay: Overlay | None = None
) -> tuple[list[tuple[Path, Path]], list[Diagnostic]]:
    """(file, policy root) for files named directly, plus every ``*.charter`` file under named
    directories (sorted). A directory is its own root; a file's root is its directory.

    Overlay texts of policy files under a named directory count as files there, saved or not. A
    dangling, looping or escaping ``*.charter`` entry in a directory is an error, not a skip.
    """
    files: list[tuple[Path, Path]] = []
    diags: list[Diagnostic] = []
    for raw in paths:
        p = Path(raw)
        root = root_of(p)
        if p.is_dir():
            found, problems = policy_files(p, POLICY_SUFFIX, MAX_FILES)
            diags.extend(file_diagnostic(exc, Span.point(_display(Path(exc.path)))) for exc in problems)
            if overlay:
                have = {x.resolve() for x in found}
                extra = [
                    x
                    for x in overlay
                    if x.suffix == POLICY_SUFFIX and x not in have and x.is_relative_to(root)
                ]
                found = sorted([*found, *extra])
            if not found and not problems:
                diags.append(
                    error(
                        Code.E005_NO_POLICIES,
                        f"no policy files ({POLICY_SUFFIX}) in directory {raw}",
                        Span.point(str(raw)),
                        f"policy files end in {POLICY_SUFFIX}",
                    )
                )
            files.extend((f, root) for f in found)
        elif p.exists() or p.is_symlink() or (overlay is not None and _real(p) in overlay):
            files.append((p, root))
        else:
            diags.append(error(Code.E204_MISSING_FILE, f"no such file: {raw}", Span.point(str(raw))))
    return files, diags


def _read_inventory(
    path: Path, root: Path, shown: str, span: Span
) -> tuple[Inventory | None, Diagnostic | None]:
    try:
        raw = read_bounded(resolve(path, root), MAX_INVENTORY_BYTES)
    except FileError as exc:
        if exc.problem is FileProblem.MISSING:
            return None, error(Code.E204_MISSING_FILE, f"inventory file not found: {shown}", span)
        return None, file_diagnostic(exc, span)
    try:
        data = parse_yaml(raw.decode("utf-8"), what=f"inventory {shown}")
    except UnicodeDecodeError:
        return None, error(Code.E205_BAD_INVENTORY, f"cannot read inventory {shown}: not UTF-8 text", span)
    except DocumentError as exc:
        return None, error(Code.E205_BAD_INVENTORY, f"cannot read inventory {shown}: {exc}", span)
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


def _read_constants(
    path: Path, root: Path, shown: str, span: Span
) -> tuple[Any, str | None, Diagnostic | None]:
    """The value of a constants file (one key, whose value is a list or a scalar) and its text.

    Read like every policy file: through charter.files (confined to the policy root, regular,
    bounded) and charter.documents (bounded YAML, no aliases).
    """

    def bad(msg: str, help: str | None = None) -> tuple[Any, None, Diagnostic]:
        return None, None, error(Code.E205_BAD_INVENTORY, f"constants file {shown}: {msg}", span, help)

    try:
        raw = read_bounded(resolve(path, root), MAX_CONSTANT_FILE_BYTES)
    except FileError as exc:
        if exc.problem is FileProblem.MISSING:
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
        if exc.problem is FileProblem.TOO_LARGE:
            return bad(f"larger than {MAX_CONSTANT_FILE_BYTES // (1024 * 1024)} MiB")
        return None, None, file_diagnostic(exc, span)
    try:
        text = raw.decode("utf-8")
        data = parse_yaml(text, what=f"constants file {shown}")
    except UnicodeDecodeError:
        return bad("cannot read it: not UTF-8 text")
    except DocumentError as exc:
        return bad(f"cannot read it: {exc}")
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


def _parse(
    path: Path, root: Path, overlay: Overlay | None, cache: CompileCache | None, via: Span | None
) -> ParseResult:
    """One file's parse: its overlay text when it has one, else the file read through the path
    resolver (confined to ``root``, regular, bounded); through the cache if any."""
    shown = _display(path)
    real = _real(path)
    if overlay is not None and real in overlay and real.is_relative_to(root):
        data = overlay[real].encode("utf-8", "surrogatepass")
    else:
        try:
            data = read_bounded(resolve(path, root), MAX_FILE_BYTES)
        except FileError as exc:
            if exc.problem in (FileProblem.MISSING, FileProblem.OUTSIDE_ROOT):
                raise  # not a file of the policy: the caller reports it without counting it
            return ParseResult(None, (file_diagnostic(exc, Span.point(shown)),), "")
    text, problems = decode(shown, data)
    if text is None:
        return ParseResult(None, tuple(problems), "")
    return cache.parse_text(text, shown) if cache is not None else parse_text(text, shown)


def _relative(real: Path, root: Path) -> str:
    """A file's name relative to its policy root, as the revision hashes it."""
    try:
        return real.relative_to(root).as_posix()
    except ValueError:
        return real.name


def load(
    paths: list[str | Path], *, overlay: Overlay | None = None, cache: CompileCache | None = None
) -> Loaded:
    """Parse the given files or directories, following includes; cycles and missing files are diagnosed.

    Every file is read through charter.files: confined to its policy root (the directory named,
    or the directory of the file named), regular files only, at most the size limit.
    ``overlay`` maps resolved paths to texts read instead of the files (an editor's unsaved
    buffers); ``cache`` reuses the parses of unchanged files from the previous compile.
    """
    out = Loaded()
    files, diags = expand(paths, overlay)
    out.diagnostics.extend(diags)
    seen: dict[Path, str] = {}
    stack: list[Path] = []

    def visit(path: Path, root: Path, via: Span | None) -> None:
        real = _real(path)
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
        try:
            result = _parse(path, root, overlay, cache, via)
        except FileError as exc:
            out.diagnostics.append(file_diagnostic(exc, via or Span.point(shown), include=via is not None))
            return
        out.sources[shown] = result.source
        out.names[shown] = _relative(real, root)
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
                visit(path.parent / item.path, root, item.span)
            elif isinstance(item, ast.AgentsFrom):
                inv_path = path.parent / item.path
                inv, diag = _read_inventory(inv_path, root, _display(inv_path), item.span)
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
                value, text, diag = _read_constants(data_path, root, data_shown, item.span)
                if diag is not None:
                    out.diagnostics.append(diag)
                else:
                    out.constant_files[item.name.value] = value
                    out.data_sources[data_shown] = text or ""
                    out.names[data_shown] = _relative(_real(data_path), root)
        stack.pop()

    for f, root in files:
        visit(f, root, None)
    return out


def load_text(text: str, path: str = "<string>") -> Loaded:
    """Parse one policy given as text (includes are not followed)."""
    from charter.syntax import parse_text

    out = Loaded()
    result = parse_text(text, path)
    out.sources[path] = text
    out.names[path] = path
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
