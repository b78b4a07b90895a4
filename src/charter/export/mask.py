"""Masking of exported decision records: argument paths replaced by "****" or a keyed hash, in place.

Fields are edited, never dropped, so a log keeps its shape. A path applies at every list level it
crosses (``args.items.iban`` edits the ``iban`` of each element of ``items``); a value that is a
map or list at a masked path is replaced whole. Keys match exactly and also case-insensitively
(``Password`` is the ``password`` argument sent in another case). A masked string or number that
still appears inside another string of the record (a reason, a failure message) is replaced there
too, so a value cannot leave through an echo.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Sequence
from typing import Any

from charter.engine.policy import MaskRule
from charter.enums import MaskKind

#: What a masked value becomes.
MASKED = "****"
#: The prefix of a hashed value (the rest is the first 32 hex digits of HMAC-SHA256).
HASH_PREFIX = "hmac-sha256:"
#: Values shorter than this are not searched for inside other strings (too many false matches).
MIN_ECHO = 4
#: Nesting deeper than this is replaced whole (the request validator bounds depth well below it).
MAX_DEPTH = 64


def encode(record: Any) -> str:
    """The export encoding of a record: compact JSON, ASCII-only, anything not JSON as its text."""
    return json.dumps(record, separators=(",", ":"), default=str)


class Masker:
    """Applies a policy's mask rules to export records; ``key`` keys the hashes (random per process
    when not given, so hashes then join only within one process's logs)."""

    def __init__(self, key: bytes | None = None):
        self.key = key if key else os.urandom(32)

    def hashed(self, value: Any) -> str:
        """The keyed hash of a value's canonical JSON."""
        data = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()
        return HASH_PREFIX + hmac.new(self.key, data, hashlib.sha256).hexdigest()[:32]

    def apply(self, record: dict[str, Any], rules: Sequence[MaskRule]) -> dict[str, Any]:
        """Edit ``record`` (an export record, owned by the caller) in place and return it."""
        self.encode(record, rules)
        return record

    def encode(self, record: dict[str, Any], rules: Sequence[MaskRule]) -> str:
        """Mask ``record`` in place (as :meth:`apply`) and return its JSON text, encoded once: the
        text that is searched for echoes of the masked values is the text that is exported (it
        is encoded again only when an echo had to be scrubbed)."""
        text = None
        echoes: set[str] = set()
        if rules:
            action = record.get("request", {}).get("action")
            args = action.get("args") if isinstance(action, dict) else None
            if isinstance(args, dict):
                found: list[str] = []
                for rule in rules:
                    self._edit(args, rule.path, rule.kind, found, 0)
                echoes = {s for s in found if len(s) >= MIN_ECHO}
        text = encode(record)
        if echoes:
            # one C-speed search of the record's JSON first: the walk runs only when a value echoes
            hits = [e for e in echoes if json.dumps(e)[1:-1] in text]
            if hits:
                record.update(_scrub(record, sorted(hits, key=len, reverse=True), 0))
                text = encode(record)
        return text

    def _replace(self, value: Any, kind: MaskKind, found: list[str]) -> Any:
        _strings(value, found, 0)
        return MASKED if kind is MaskKind.MASK else self.hashed(value)

    def _edit(self, node: Any, path: tuple[str, ...], kind: MaskKind, found: list[str], depth: int) -> None:
        if depth > MAX_DEPTH:
            return
        if isinstance(node, list):
            for item in node:
                self._edit(item, path, kind, found, depth + 1)
            return
        if not isinstance(node, dict) or not path:
            return
        head, rest = path[0], path[1:]
        folded = head.casefold()
        for key in list(node):
            if key != head and not (isinstance(key, str) and key.casefold() == folded):
                continue
            if rest:
                self._edit(node[key], rest, kind, found, depth + 1)
            else:
                node[key] = self._replace(node[key], kind, found)


def _strings(value: Any, out: list[str], depth: int) -> None:
    """Every string and number inside ``value`` (as text), to look for echoes of it."""
    if depth > MAX_DEPTH:
        return
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, (int, float)):
        out.append(str(value))
    elif isinstance(value, dict):
        for v in value.values():
            _strings(v, out, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _strings(v, out, depth + 1)


def _scrub(value: Any, echoes: list[str], depth: int) -> Any:
    if isinstance(value, str):
        for e in echoes:
            if e in value:
                value = value.replace(e, MASKED)
        return value
    if depth > MAX_DEPTH:
        return MASKED
    if isinstance(value, dict):
        return {_scrub(k, echoes, depth + 1): _scrub(v, echoes, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, echoes, depth + 1) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and str(value) in echoes:
        return MASKED
    return value
