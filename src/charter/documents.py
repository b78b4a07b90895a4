"""The one reader of untrusted JSON and YAML documents: bounded in size, nesting and YAML aliases.

Requests given to ``charter eval``, test files, replay inputs, inventories and the other documents
charter reads from a file or stdin all come through :func:`load_document`, so none of them can
raise ``RecursionError`` on deep nesting, hang on a YAML alias bomb or fill memory:

- at most :data:`MAX_DOCUMENT_BYTES` of text (streamed from a file: never read whole, then checked);
- at most :data:`MAX_DOCUMENT_DEPTH` levels of nested lists and mappings, checked *before* the
  JSON or YAML parser recurses (a bracket scan for JSON, the composer's event stream for YAML);
- YAML aliases (``*name``) are refused: a document that is data has no need of them, and an
  alias is how a kilobyte expands into gigabytes;
- YAML is parsed with the safe loader only (no Python objects).

Anything else raises :class:`DocumentError` with a message that says which limit; the CLI turns it
into exit status 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from charter.diagnostics import escape_controls
from charter.errors import Error
from charter.files import FileError, read_bounded
from charter.jsonenc import repeated_key

#: Largest document read, in bytes (the sidecar's request body limit is the same 1 MiB).
MAX_DOCUMENT_BYTES = 1 << 20
#: Deepest nesting of lists and mappings in a document.
MAX_DOCUMENT_DEPTH = 64
#: Most YAML nodes (scalars, lists, mappings) in one document.
MAX_DOCUMENT_NODES = 200_000


class DocumentError(Error, ValueError):
    """A document that is refused: too large, too deep, an alias, or neither JSON nor YAML."""


def read_text(spec: str | Path, *, what: str = "document", limit: int = MAX_DOCUMENT_BYTES) -> str:
    """The UTF-8 text of a file, or of stdin for ``-``, at most ``limit`` bytes."""
    if str(spec) == "-":
        data = sys.stdin.buffer.read(limit + 1)
        if len(data) > limit:
            raise DocumentError(f"the {what} on stdin is larger than {limit:,} bytes")
    else:
        try:
            data = read_bounded(Path(spec), limit)
        except FileError as exc:
            raise DocumentError(f"cannot read the {what}: {exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"the {what} is not UTF-8 text (byte {exc.start})") from None


def _json_depth_ok(text: str, limit: int) -> bool:
    """True when brackets outside strings nest at most ``limit`` deep (a scan, no recursion)."""
    depth = 0
    in_string = False
    escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return False
        elif ch in "]}":
            depth -= 1
    return True


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader, refusing aliases and bounding depth and node count while composing."""

    depth_limit = MAX_DOCUMENT_DEPTH
    node_limit = MAX_DOCUMENT_NODES

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise DocumentError(
                f"YAML aliases are not accepted (line {event.start_mark.line + 1}): write the value out"
            )
        self._nodes += 1
        if self._nodes > self.node_limit:
            raise DocumentError(f"the document has more than {self.node_limit:,} values")
        nested = self.check_event(yaml.SequenceStartEvent) or self.check_event(yaml.MappingStartEvent)
        if nested:
            self._depth += 1
            if self._depth > self.depth_limit:
                raise DocumentError(f"the document nests more than {self.depth_limit} levels deep")
        try:
            return super().compose_node(parent, index)
        finally:
            if nested:
                self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        # PyYAML keeps the last of two equal keys: a test's second `expect` would silently drop
        # the first, so a document with one is refused (YAML itself requires unique keys)
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                dup = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the constructor below says so
                continue
            if dup:
                raise DocumentError(
                    f"the key {escape_controls(repr(key))[:80]} appears twice in one mapping "
                    f"(line {key_node.start_mark.line + 1})"
                )
        return super().construct_mapping(node, deep=deep)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key given twice (``json`` would keep the last one silently)."""
    out = dict(pairs)
    key = repeated_key(pairs, out)
    if key is not None:
        raise DocumentError(f"the key {escape_controls(repr(key))[:80]} appears twice in one object")
    return out


def parse_yaml(text: str, *, what: str = "document", depth: int = MAX_DOCUMENT_DEPTH) -> Any:
    """YAML text as data, with the limits of this module."""
    try:
        loader = _BoundedLoader(text)
    except yaml.YAMLError as exc:  # the reader refuses control characters up front
        raise DocumentError(f"the {what} is not valid YAML: {str(exc).splitlines()[0]}") from None
    loader.depth_limit = depth
    try:
        return loader.get_single_data()
    except DocumentError:
        raise
    except yaml.YAMLError as exc:
        raise DocumentError(f"the {what} is not valid YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:  # belt and braces: the depth check comes first
        raise DocumentError(f"the {what} nests too deep") from None
    finally:
        loader.dispose()


def parse_document(
    text: str,
    *,
    what: str = "document",
    json_only: bool = False,
    depth: int = MAX_DOCUMENT_DEPTH,
    limit: int = MAX_DOCUMENT_BYTES,
) -> Any:
    """JSON (or, unless ``json_only``, YAML) text as data, within the size, depth and alias limits."""
    if len(text) > limit:
        raise DocumentError(f"the {what} is larger than {limit:,} bytes")
    if not _json_depth_ok(text, depth):
        raise DocumentError(f"the {what} nests more than {depth} levels deep")
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        if json_only:
            raise DocumentError(f"the {what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise DocumentError(f"the {what} nests too deep") from None
    try:
        return parse_yaml(text, what=what, depth=depth)
    except DocumentError as exc:
        prefix = f"the {what} is not valid YAML: "
        if str(exc).startswith(prefix):
            raise DocumentError(f"the {what} is neither JSON nor YAML: {str(exc)[len(prefix) :]}") from None
        raise


def load_document(
    spec: str | Path,
    *,
    what: str = "document",
    json_only: bool = False,
    depth: int = MAX_DOCUMENT_DEPTH,
    limit: int = MAX_DOCUMENT_BYTES,
) -> Any:
    """The document in file ``spec`` (``-`` for stdin), JSON or YAML, within this module's limits."""
    return parse_document(
        read_text(spec, what=what, limit=limit), what=what, json_only=json_only, depth=depth, limit=limit
    )
