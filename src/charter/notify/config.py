"""The humans section of the serve config: the inbox's settings and where notifications go.

A YAML (or JSON) file given to ``charter serve --humans FILE`` (docs/humans.md shows one). Secrets are
named by environment variable (``secret_env``, ``password_env``, ``key_env``), so the file can be
committed; an inline ``secret`` is accepted too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from charter.documents import DocumentError, load_document
from charter.errors import Error
from charter.notify.dispatch import Lane, Retry, Target
from charter.notify.email import EmailTarget
from charter.notify.message import ALL_EVENTS, DEFAULT_EVENTS
from charter.notify.webhook import SlackTarget, WebhookTarget, secret_key

MAX_QUEUE = 100_000


class NotifyConfigError(Error, ValueError):
    """A humans config that cannot be used; the message names the file, the entry and what to do."""


@dataclass(frozen=True)
class InboxSettings:
    """How the inbox signs sessions and where links into it point."""

    #: the inbox's address as people reach it (links in notifications); None: no links
    url: str | None = None
    #: how long a sign-in lasts
    session_s: float = 8 * 3600.0
    #: the HMAC key that signs sessions (None: one kept in the state store, shared by the replicas)
    session_key: bytes | None = None
    #: mark cookies Secure even on plain HTTP (behind a TLS-terminating proxy)
    secure_cookies: bool = False


@dataclass
class HumansConfig:
    """The parsed file: inbox settings and notification lanes (not started until used)."""

    inbox: InboxSettings = field(default_factory=InboxSettings)
    lanes: list[Lane] = field(default_factory=list)


def _secret(item: Mapping[str, Any], key: str, at: str, env: Mapping[str, str]) -> str | None:
    if f"{key}_env" in item:
        name = str(item[f"{key}_env"])
        if name not in env:
            raise NotifyConfigError(f"{at}: ${name} ({key}_env) is not set")
        return env[name]
    value = item.get(key)
    return None if value is None else str(value)


def _url(value: Any, at: str) -> str:
    if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https"):
        raise NotifyConfigError(f"{at}: expected an http:// or https:// URL, got {value!r}")
    return value


def _positive(item: Mapping[str, Any], key: str, default: float, at: str) -> float:
    value = item.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1e6:
        raise NotifyConfigError(f"{at}: {key} must be a positive number, got {value!r}")
    return float(value)


_KNOWN = {
    "webhook": {"webhook", "secret", "secret_env", "url_env"},
    "slack": {"slack", "url_env"},
    "email": {"email"},
}
_COMMON = {"events", "retries", "backoff", "timeout", "queue", "name"}
_EMAIL = {"host", "port", "tls", "from", "to", "username", "username_env", "password", "password_env"}


def _lane(item: Any, at: str, env: Mapping[str, str]) -> Lane:
    if not isinstance(item, Mapping):
        raise NotifyConfigError(f"{at}: expected a mapping with one of webhook, slack, email")
    kinds = [k for k in _KNOWN if k in item]
    if len(kinds) != 1:
        raise NotifyConfigError(f"{at}: give exactly one of webhook, slack, email")
    kind = kinds[0]
    unknown = set(item) - _KNOWN[kind] - _COMMON
    if unknown:
        raise NotifyConfigError(f"{at}: unknown key(s) {', '.join(sorted(unknown))}")
    timeout = _positive(item, "timeout", 5.0, at)
    target: Target
    if kind == "webhook":
        url = _url(env.get(str(item["url_env"])) if "url_env" in item else item["webhook"], at)
        secret = _secret(item, "secret", at, env)
        try:
            key = secret_key(secret) if secret is not None else None
        except ValueError as exc:
            raise NotifyConfigError(f"{at}: {exc}") from None
        target = WebhookTarget(url, key, timeout)
    elif kind == "slack":
        url = _url(env.get(str(item["url_env"])) if "url_env" in item else item["slack"], at)
        target = SlackTarget(url, timeout)
    else:
        e = item["email"]
        if not isinstance(e, Mapping):
            raise NotifyConfigError(f"{at}: email: expected a mapping (host, port, from, to ...)")
        bad = set(e) - _EMAIL
        if bad:
            raise NotifyConfigError(f"{at}: email: unknown key(s) {', '.join(sorted(bad))}")
        to = e.get("to")
        to = [to] if isinstance(to, str) else to
        if not e.get("host") or not e.get("from") or not to or not all(isinstance(t, str) for t in to):
            raise NotifyConfigError(f"{at}: email needs host, from and to (one address or a list)")
        port = e.get("port", 587)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise NotifyConfigError(f"{at}: email: port must be 1-65535")
        try:
            target = EmailTarget(
                str(e["host"]),
                port,
                str(e["from"]),
                to,
                tls=str(e.get("tls", "starttls")),
                username=_secret(e, "username", at, env),
                password=_secret(e, "password", at, env),
                timeout_s=timeout,
            )
        except ValueError as exc:
            raise NotifyConfigError(f"{at}: email: {exc}") from None
    events = item.get("events")
    if events is None:
        wanted = DEFAULT_EVENTS
    elif events == "all":
        wanted = frozenset(ALL_EVENTS)
    else:
        if not isinstance(events, list) or not all(isinstance(x, str) for x in events):
            raise NotifyConfigError(f"{at}: events is a list of event names, or 'all'")
        unknown_events = set(events) - ALL_EVENTS
        if unknown_events:
            raise NotifyConfigError(
                f"{at}: unknown event(s) {', '.join(sorted(unknown_events))}; "
                f"known: {', '.join(sorted(ALL_EVENTS))}"
            )
        wanted = frozenset(events)
    retries = item.get("retries", 5)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 20:
        raise NotifyConfigError(f"{at}: retries must be 0-20")
    queue_len = item.get("queue", 1000)
    if isinstance(queue_len, bool) or not isinstance(queue_len, int) or not 1 <= queue_len <= MAX_QUEUE:
        raise NotifyConfigError(f"{at}: queue must be 1-{MAX_QUEUE}")
    retry = Retry(attempts=retries + 1, base_s=_positive(item, "backoff", 0.5, at))
    name = str(item.get("name") or kind)
    return Lane(target, name, wanted, retry, queue_len)


def parse_humans_config(doc: Any, where: str, env: Mapping[str, str] | None = None) -> HumansConfig:
    """A HumansConfig from the parsed document (``inbox:`` and ``notify:`` sections)."""
    env = os.environ if env is None else env
    if doc is None:
        return HumansConfig()
    if not isinstance(doc, Mapping):
        raise NotifyConfigError(f"{where}: expected a mapping with inbox: and notify:")
    unknown = set(doc) - {"inbox", "notify"}
    if unknown:
        raise NotifyConfigError(f"{where}: unknown section(s) {', '.join(sorted(unknown))} (inbox, notify)")
    inbox_doc = doc.get("inbox") or {}
    if not isinstance(inbox_doc, Mapping):
        raise NotifyConfigError(f"{where}: inbox: expected a mapping")
    bad = set(inbox_doc) - {"url", "session_hours", "session_key_env", "secure_cookies"}
    if bad:
        raise NotifyConfigError(f"{where}: inbox: unknown key(s) {', '.join(sorted(bad))}")
    url = inbox_doc.get("url")
    if url is not None:
        url = _url(url, f"{where}: inbox.url")
    hours = _positive(inbox_doc, "session_hours", 8.0, f"{where}: inbox")
    key = None
    if "session_key_env" in inbox_doc:
        raw = _secret(inbox_doc, "session_key", f"{where}: inbox", env) or ""
        if len(raw) < 32:
            raise NotifyConfigError(f"{where}: inbox: the session key must be at least 32 characters")
        key = raw.encode()
    inbox = InboxSettings(url, hours * 3600.0, key, bool(inbox_doc.get("secure_cookies", False)))
    items = doc.get("notify") or []
    if not isinstance(items, list):
        raise NotifyConfigError(f"{where}: notify: expected a list of targets")
    lanes = [_lane(item, f"{where}: notify[{n}]", env) for n, item in enumerate(items)]
    return HumansConfig(inbox, lanes)


def load_humans_config(path: str | Path, env: Mapping[str, str] | None = None) -> HumansConfig:
    """Read and parse a humans config file (YAML or JSON)."""
    try:
        doc = load_document(path, what="humans config")
    except DocumentError as exc:
        raise NotifyConfigError(f"{path}: {exc}") from None
    return parse_humans_config(doc, str(path), env)
