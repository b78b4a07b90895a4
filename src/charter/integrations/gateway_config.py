"""The `charter gateway` configuration: a small YAML file naming the upstream MCP servers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from charter.documents import DocumentError, load_document
from charter.errors import Error

__all__ = [
    "GatewayConfig",
    "GatewayConfigError",
    "Namespacing",
    "UpstreamConfig",
    "load_config",
    "parse_config",
]

#: A server name: it becomes the prefix of its tools' names, so it is kept plain.
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,62}$")
#: At most this many upstream servers (each is a live session).
MAX_SERVERS = 64


class GatewayConfigError(Error, ValueError):
    """A gateway configuration that cannot be used; the message says which entry and why."""


class Namespacing(Enum):
    """Whether tool names are prefixed with their server's name."""

    AUTO = "auto"  # prefixed when more than one server is aggregated
    ALWAYS = "always"
    NEVER = "never"


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    """One upstream MCP server: a command (stdio) or a URL (Streamable HTTP)."""

    name: str
    command: tuple[str, ...] = ()
    url: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    #: the charter target of a tool is ``prefix + tool name`` (e.g. ``kb.`` + ``read``)
    prefix: str = ""
    #: labels every result of this server carries when it is settled (``on result`` rules see them)
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """The whole gateway configuration."""

    servers: tuple[UpstreamConfig, ...]
    separator: str = "__"
    namespacing: Namespacing = Namespacing.AUTO
    #: the inbox of `charter serve` (e.g. http://127.0.0.1:8181/ui): approvals link there
    inbox: str | None = None
    #: context of every call (``context.workflow`` / ``context.run``)
    workflow: str | None = None
    run: str | None = None

    @property
    def namespaced(self) -> bool:
        """Whether exposed tool names carry their server's name."""
        if self.namespacing is Namespacing.AUTO:
            return len(self.servers) > 1
        return self.namespacing is Namespacing.ALWAYS


def _str_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise GatewayConfigError(f"{where}: expected a mapping of strings")
    return dict(value)


def _opt_str(doc: Mapping[str, Any], key: str, where: str) -> str | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, str):
        raise GatewayConfigError(f"{where}: '{key}' must be a string")
    return value


_SERVER_KEYS = {"name", "command", "url", "env", "cwd", "headers", "prefix", "labels"}
_TOP_KEYS = {"servers", "separator", "namespacing", "inbox", "workflow", "run"}


def _server(item: Any, n: int, separator: str) -> UpstreamConfig:
    where = f"servers[{n}]"
    if not isinstance(item, Mapping):
        raise GatewayConfigError(f"{where}: expected a mapping")
    unknown = set(item) - _SERVER_KEYS
    if unknown:
        raise GatewayConfigError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    name = item.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise GatewayConfigError(f"{where}: 'name' must match {_NAME.pattern}")
    if separator in name:
        raise GatewayConfigError(f"{where} ({name}): the name contains the separator {separator!r}")
    command = item.get("command")
    url = item.get("url")
    if (command is None) == (url is None):
        raise GatewayConfigError(f"{where} ({name}): give exactly one of 'command' (stdio) or 'url' (HTTP)")
    cmd: tuple[str, ...] = ()
    if command is not None:
        if isinstance(command, str):
            command = command.split()
        if not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command):
            raise GatewayConfigError(f"{where} ({name}): 'command' must be a non-empty list of strings")
        cmd = tuple(command)
    if url is not None and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
        raise GatewayConfigError(f"{where} ({name}): 'url' must be an http:// or https:// URL")
    labels = item.get("labels") or []
    if not isinstance(labels, list) or not all(isinstance(x, str) and x for x in labels):
        raise GatewayConfigError(f"{where} ({name}): 'labels' must be a list of names")
    return UpstreamConfig(
        name=name,
        command=cmd,
        url=url,
        env=_str_map(item.get("env"), f"{where} ({name}).env"),
        cwd=_opt_str(item, "cwd", where),
        headers=_str_map(item.get("headers"), f"{where} ({name}).headers"),
        prefix=_opt_str(item, "prefix", where) or "",
        labels=tuple(labels),
    )


def parse_config(doc: Any) -> GatewayConfig:
    """A :class:`GatewayConfig` from the parsed YAML document."""
    if not isinstance(doc, Mapping):
        raise GatewayConfigError("the gateway configuration must be a mapping with 'servers'")
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise GatewayConfigError(f"unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    separator = doc.get("separator", "__")
    if (
        not isinstance(separator, str)
        or not 1 <= len(separator) <= 4
        or not re.fullmatch(r"[_.\-]+", separator)
    ):
        raise GatewayConfigError("'separator' must be 1 to 4 of the characters _ . -")
    try:
        namespacing = Namespacing(doc.get("namespacing", "auto"))
    except ValueError:
        raise GatewayConfigError("'namespacing' must be auto, always or never") from None
    items = doc.get("servers")
    if not isinstance(items, list) or not items:
        raise GatewayConfigError("'servers' must be a non-empty list")
    if len(items) > MAX_SERVERS:
        raise GatewayConfigError(f"at most {MAX_SERVERS} servers")
    servers = tuple(_server(item, n, separator) for n, item in enumerate(items))
    names = [s.name for s in servers]
    if len(set(names)) != len(names):
        raise GatewayConfigError("server names must be unique")
    return GatewayConfig(
        servers=servers,
        separator=separator,
        namespacing=namespacing,
        inbox=_opt_str(doc, "inbox", "gateway"),
        workflow=_opt_str(doc, "workflow", "gateway"),
        run=_opt_str(doc, "run", "gateway"),
    )


def load_config(path: str | Path) -> GatewayConfig:
    """Read and check a gateway configuration file (YAML or JSON)."""
    try:
        doc = load_document(path, what="gateway configuration")
    except DocumentError as exc:
        raise GatewayConfigError(f"{path}: {exc}") from None
    try:
        return parse_config(doc)
    except GatewayConfigError as exc:
        raise GatewayConfigError(f"{path}: {exc}") from None
