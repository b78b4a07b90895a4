"""Bearer tokens with roles: loaded from a YAML/JSON file or CHARTER_TOKENS, kept only as hashes."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from charter.documents import DocumentError, parse_document, read_text
from charter.errors import Error

ROLES = ("orchestrator", "approver", "operator", "admin")

#: What each permission needs (admin may do everything).
PERMISSIONS: dict[str, frozenset[str]] = {
    "decide": frozenset({"orchestrator"}),
    "read": frozenset({"orchestrator", "approver", "operator"}),
    "read-humans": frozenset({"orchestrator", "approver"}),
    "read-stops": frozenset({"orchestrator", "operator"}),
    "answer": frozenset({"approver"}),
    "stop": frozenset({"operator"}),
}


class TokenError(Error, ValueError):
    """A tokens file that cannot be used; the message says which entry and why."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a valid token belongs to."""

    name: str
    roles: frozenset[str]

    def may(self, permission: str) -> bool:
        """True if one of the roles grants ``permission``."""
        return "admin" in self.roles or bool(self.roles & PERMISSIONS[permission])


def hash_token(token: str) -> str:
    """The stored form of a token (hex SHA-256)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenSet:
    """Known tokens. Lookups hash the presented token and compare every entry in constant time."""

    def __init__(self, entries: Iterable[tuple[str, Principal]] = ()):
        self._entries = [(bytes.fromhex(h), p) for h, p in entries]

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, token: str) -> Principal | None:
        """The principal of ``token`` or None."""
        digest = hashlib.sha256(token.encode("utf-8", "replace")).digest()
        found = None
        for h, p in self._entries:  # no early exit: timing does not depend on which entry matched
            if hmac.compare_digest(h, digest):
                found = p
        return found

    def by_tag(self, tag: str) -> tuple[str, Principal] | None:
        """(hex SHA-256, principal) of the token whose hash starts with ``tag`` (an inbox session
        names its token this way), or None; every entry is compared, as in :meth:`lookup`."""
        want = tag.encode("ascii", "replace")
        found = None
        for h, p in self._entries:
            hexed = h.hex()
            if len(want) >= 16 and hmac.compare_digest(hexed[: len(want)].encode(), want):
                found = (hexed, p)
        return found

    @classmethod
    def parse(cls, doc: Any, where: str) -> TokenSet:
        """From ``{"tokens": [{"name", "role"|"roles", "sha256"|"token"}]}`` (or the bare list)."""
        items = doc.get("tokens") if isinstance(doc, Mapping) else doc
        if not isinstance(items, list):
            raise TokenError(f"{where}: expected a list under 'tokens'")
        entries: list[tuple[str, Principal]] = []
        names: set[str] = set()
        owners: dict[str, str] = {}
        for n, item in enumerate(items):
            at = f"{where}: tokens[{n}]"
            if not isinstance(item, Mapping):
                raise TokenError(f"{at}: expected a mapping")
            name = item.get("name")
            if not isinstance(name, str) or not name.strip():
                raise TokenError(f"{at}: 'name' is required")
            roles = item.get("roles", item.get("role"))
            roles = [roles] if isinstance(roles, str) else roles
            if not roles or not all(isinstance(r, str) and r in ROLES for r in roles):
                raise TokenError(f"{at} ({name}): role must be one or more of {', '.join(ROLES)}")
            if "sha256" in item:
                h = str(item["sha256"]).lower()
                if len(h) != 64 or any(c not in "0123456789abcdef" for c in h):
                    raise TokenError(f"{at} ({name}): 'sha256' must be 64 hex digits")
            elif isinstance(item.get("token"), str) and len(item["token"]) >= 16:
                h = hash_token(item["token"])
            else:
                raise TokenError(f"{at} ({name}): give 'sha256' (preferred) or a 'token' of >= 16 chars")
            if name in names:
                raise TokenError(f"{at}: duplicate name {name!r}")
            if h in owners:
                raise TokenError(
                    f"{at} ({name}): the same token as {owners[h]!r}: one token names one caller "
                    "(give each caller its own token)"
                )
            owners[h] = name
            names.add(name)
            entries.append((h, Principal(name, frozenset(roles))))
        return cls(entries)


def load_tokens(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> TokenSet:
    """Tokens from ``path`` (YAML or JSON), else from $CHARTER_TOKENS (the same document inline)."""
    env = os.environ if env is None else env
    if path:
        try:
            text, where = read_text(path, what="tokens file"), str(path)
        except DocumentError as exc:
            raise TokenError(str(exc)) from None
    elif env.get("CHARTER_TOKENS"):
        text, where = env["CHARTER_TOKENS"], "$CHARTER_TOKENS"
    else:
        return TokenSet()
    try:
        doc = parse_document(text, what="tokens file")
    except DocumentError as exc:
        raise TokenError(f"{where}: not valid YAML/JSON ({exc})") from None
    return TokenSet.parse(doc, where)
