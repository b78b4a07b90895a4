"""The public facade: load policy files into a compiled Policy; errors raise with diagnostics."""

from __future__ import annotations

from pathlib import Path

from charter.compiler.cache import CompileCache
from charter.compiler.load import Overlay
from charter.compiler.pipeline import CompileResult, compile_paths, compile_text
from charter.diagnostics import CharterError
from charter.engine.policy import CompiledPolicy

#: The compiled, immutable policy type returned by :func:`load`.
Policy = CompiledPolicy


def _raise_on_errors(result: CompileResult) -> CompiledPolicy:
    if result.errors or result.policy is None:
        raise CharterError(result.errors or result.diagnostics, result.sources)
    return result.policy


def load(path_or_paths: str | Path | list[str | Path] | tuple[str | Path, ...]) -> Policy:
    """Compile a policy file, a directory of ``*.charter`` files, or a list of either."""
    paths = list(path_or_paths) if isinstance(path_or_paths, (list, tuple)) else [path_or_paths]
    return _raise_on_errors(compile_paths(paths))


def loads(text: str, path: str = "<string>") -> Policy:
    """Compile a policy given as text (includes are not followed)."""
    return _raise_on_errors(compile_text(text, path))


def check(
    path_or_paths: str | Path | list[str | Path],
    *,
    overlay: Overlay | None = None,
    cache: CompileCache | None = None,
) -> CompileResult:
    """Compile and return every diagnostic (errors and warnings) without raising.

    ``overlay`` maps resolved file paths to texts used instead of the files on disk (an editor's
    unsaved buffers); a ``CompileCache`` kept between calls reuses the parses and conditions that
    did not change, so a recompile after a small edit is fast.
    """
    paths = list(path_or_paths) if isinstance(path_or_paths, (list, tuple)) else [path_or_paths]
    return compile_paths(paths, overlay=overlay, cache=cache)
