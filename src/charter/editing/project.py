"""A policy being edited: its files (saved or not), which files make one policy, the last compile.

The editor's open buffers overlay the files on disk. A document belongs to the policy of the
configured root that contains it, else (inside the workspace) to its directory's policy, else it
is compiled alone. Each policy keeps a CompileCache, so a recompile after one edit parses one file.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from charter.api import check
from charter.cli.lintconfig import LintConfigError, apply, find_config
from charter.compiler.cache import CompileCache
from charter.compiler.pipeline import CompileResult
from charter.compiler.resolve import Symbols
from charter.diagnostics import Code, Diagnostic, Span, warning
from charter.editing.symbols import Occurrence, SymbolIndex, SymbolKind
from charter.editing.text import LineIndex
from charter.files import FileError, read_bounded
from charter.syntax import ast
from charter.syntax.parser import MAX_FILE_BYTES


def absolute(shown: str) -> Path:
    """The file a diagnostic or source path names (the loader shows paths relative to the cwd)."""
    p = Path(shown)
    return p if p.is_absolute() else (Path.cwd() / p).resolve()


@dataclass
class ProjectCompile:
    """One compile of one policy, with what the editor features read from it."""

    target: tuple[Path, ...]
    result: CompileResult
    diagnostics: list[Diagnostic]
    #: the versions of the open documents this compile saw, by resolved path
    versions: dict[Path, int | None] = field(default_factory=dict)
    #: the symbol table of this compile or, when it stopped before resolving, of the last that did
    symbols: Symbols | None = None

    @functools.cached_property
    def index(self) -> SymbolIndex:
        """Declarations and references (built on first use: diagnostics do not need it)."""
        return SymbolIndex.build(self._modules(), self.result.sources, self._inventory())

    def _modules(self) -> list[ast.Module]:
        return self.result.modules

    def _inventory(self) -> Iterable[Occurrence]:
        """Agents and groups declared in inventory files, at their line in the YAML."""
        sym = self.result.symbols
        if sym is None:
            return []
        texts: list[tuple[str, str]] = []
        for m in self.result.modules:
            for item in m.items:
                if isinstance(item, ast.AgentsFrom):
                    shown = str(Path(m.path).parent / item.path)
                    try:
                        texts.append((shown, read_bounded(absolute(shown), MAX_FILE_BYTES).decode("utf-8")))
                    except (FileError, UnicodeDecodeError):
                        continue
        declared = set(_group_names(self.result.modules))
        out: list[Occurrence] = []
        for agent in sym.agents.values():
            if agent.from_inventory is not None:
                pattern = r"\bid:\s*['\"]?(" + re.escape(agent.id) + r")\b"
                out.append(_found(SymbolKind.AGENT, agent.id, texts, pattern, agent.span))
        for name, span in sym.group_spans.items():
            if name not in declared:
                pattern = r"^\s+['\"]?(" + re.escape(name) + r")['\"]?\s*:"
                out.append(_found(SymbolKind.GROUP, name, texts, pattern, span))
        return out

    def by_file(self) -> dict[Path, list[Diagnostic]]:
        """Diagnostics per file (every file of the policy has an entry, maybe empty)."""
        out: dict[Path, list[Diagnostic]] = {absolute(p): [] for p in self.result.sources}
        for d in self.diagnostics:
            out.setdefault(absolute(d.span.path), []).append(d)
        return out


def _group_names(modules: Iterable[ast.Module]) -> Iterable[str]:
    for m in modules:
        for item in m.items:
            if isinstance(item, ast.Group):
                yield item.name.value


def _shown(path: Path) -> str:
    """A path as the loader shows it, so that spans and sources name files the same way."""
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _found(kind: SymbolKind, name: str, texts: list[tuple[str, str]], pattern: str, via: Span) -> Occurrence:
    """A declaration in an inventory file, at its line there when found (else the include's span)."""
    for shown, text in texts:
        m = re.search(pattern, text, re.M)
        if m is not None:
            return Occurrence(kind, name, LineIndex(text).span(shown, m.start(1), m.end(1)), True)
    return Occurrence(kind, name, via, True)


class Project:
    """The workspace's policies: overlays of open documents and one compile state per policy."""

    def __init__(self, workspace: Path | None = None, roots: Sequence[Path] = ()) -> None:
        self.workspace = workspace.resolve() if workspace is not None else None
        self.roots = [r.resolve() for r in roots]
        self.overlay: dict[Path, str] = {}
        self.versions: dict[Path, int | None] = {}
        self._caches: dict[tuple[Path, ...], CompileCache] = {}
        self._last: dict[tuple[Path, ...], ProjectCompile] = {}
        self._symbols: dict[tuple[Path, ...], Symbols] = {}
        # INVARIANT: one compile at a time per project (CompileCache serves one compile at a time).
        self._lock = threading.Lock()

    # ---- documents --------------------------------------------------------------------------
    def set_text(self, path: Path, text: str, version: int | None = None) -> None:
        """An open document's current text (it overlays the file on disk)."""
        real = path.resolve()
        self.overlay[real] = text
        self.versions[real] = version

    def close(self, path: Path) -> None:
        """A closed document: the file on disk counts again."""
        real = path.resolve()
        self.overlay.pop(real, None)
        self.versions.pop(real, None)

    def text(self, path: Path) -> str | None:
        """The document's text: its open buffer, else the file (None when unreadable)."""
        real = path.resolve()
        if real in self.overlay:
            return self.overlay[real]
        try:
            return read_bounded(real, MAX_FILE_BYTES).decode("utf-8")
        except (FileError, UnicodeDecodeError):
            return None

    # ---- which files make one policy --------------------------------------------------------
    def target(self, path: Path) -> tuple[Path, ...]:
        """What to compile for a document: its root, its directory, or the file alone."""
        real = path.resolve()
        for root in self.roots:
            if real.is_relative_to(root):
                return (root,)
        if self.workspace is not None and real.is_relative_to(self.workspace) and real.parent.is_dir():
            return (real.parent,)
        return (real,)

    # ---- compiling --------------------------------------------------------------------------
    def compile(self, path: Path) -> ProjectCompile:
        """Compile the policy a document belongs to (the whole policy, open buffers included)."""
        target = self.target(path)
        with self._lock:
            cache = self._caches.setdefault(target, CompileCache())
            versions = dict(self.versions)
            overlay = dict(self.overlay)
            result = check([_shown(p) for p in target], overlay=overlay, cache=cache)
            diags = self._configured(target, result)
            if result.symbols is not None:
                self._symbols[target] = result.symbols
            done = ProjectCompile(target, result, diags, versions, self._symbols.get(target))
            self._last[target] = done
            return done

    def last(self, path: Path) -> ProjectCompile | None:
        """The latest compile of a document's policy, if there was one."""
        return self._last.get(self.target(path))

    @staticmethod
    def _configured(target: tuple[Path, ...], result: CompileResult) -> list[Diagnostic]:
        """Lint levels and inline suppressions, as `charter check` applies them."""
        try:
            found = find_config(target[0])
        except LintConfigError as exc:
            note = warning(
                Code.E205_BAD_INVENTORY,
                f"lint configuration ignored: {exc}",
                Span.point(next(iter(sorted(result.sources)), str(target[0]))),
                "fix the [tool.charter] section or .charter.yaml",
            )
            return [*apply(result.diagnostics, result.sources), note]
        return apply(result.diagnostics, result.sources, found[1] if found else None)
