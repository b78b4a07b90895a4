"""What one compile can reuse from the previous one: parsed files and compiled conditions (editors).

An editor recompiles the whole policy after every edit, yet usually only one file changed. A
``CompileCache`` passed to ``compile_paths`` keeps, from the last compile only:

- each file's parse result, keyed by its path and its exact text (an unchanged file is not parsed
  again; a changed one is, so a cached result is always the result of parsing that text);
- each compiled condition, keyed as the condition compiler keys it (text and structural
  environment), so unchanged conditions are not compiled again.

Entries the last compile did not use are dropped, so the cache never outgrows one policy. A cache
serves one compile at a time (the language server compiles on one worker).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from charter.files import FileError, read_bounded
from charter.syntax import ParseResult, parse_file, parse_text
from charter.syntax.parser import MAX_FILE_BYTES, decode


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class CompileCache:
    """Parse results and compiled conditions of the last compile, reused by the next."""

    def __init__(self) -> None:
        self._parsed: dict[tuple[str, bytes], ParseResult] = {}
        self._fresh: dict[tuple[str, bytes], ParseResult] = {}
        #: the condition compiler's cache after the last compile (see ConditionCompiler.previous)
        self.conditions: Mapping[tuple[str, Any, Any], Any] = {}
        #: parses this cache answered without parsing, and parses it had to run (for tests)
        self.hits = 0
        self.misses = 0

    def begin(self) -> None:
        """Start a compile: what it uses becomes the cache for the next one."""
        self._fresh = {}

    def end(self) -> None:
        """Finish a compile: keep only the parses it used."""
        self._parsed = self._fresh
        self._fresh = {}

    def keep_conditions(self, conditions: Mapping[tuple[str, Any, Any], Any]) -> None:
        """The conditions a compile used (its typecheck stage ran), for the next compile."""
        self.conditions = dict(conditions)

    def parse_text(self, text: str, shown: str) -> ParseResult:
        """The parse of ``text`` as file ``shown``, from the cache when the text is unchanged."""
        key = (shown, _digest(text))
        found = self._parsed.get(key) or self._fresh.get(key)
        if found is None:
            self.misses += 1
            found = parse_text(text, shown)
        else:
            self.hits += 1
        self._fresh[key] = found
        return found

    def parse_file(self, path: Path) -> ParseResult:
        """``parse_file(path)``, from the cache when the file's text is unchanged.

        Anything unusual (too large, unreadable, not UTF-8) goes to ``parse_file`` itself, so the
        result is always what ``parse_file`` would give.
        """
        shown = str(path)
        try:
            data = read_bounded(path, MAX_FILE_BYTES)
        except FileError:
            return parse_file(path)
        text, problems = decode(shown, data)
        if text is None:
            return ParseResult(None, tuple(problems), "")
        return self.parse_text(text, shown)
