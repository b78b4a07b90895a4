"""Signed sessions and CSRF tokens for the inbox: nothing about a session lives in one process.

A session is a cookie ``payload.mac``: the payload (name, a tag of the token's hash, session id,
expiry) is HMAC-SHA256-signed with a key every replica shares — the serve config's, or one kept in
the state store. Each request re-checks the token behind the tag against the tokens in force (a
removed token ends its sessions; roles come from the tokens, never from the cookie) and asks the
store whether the session was signed out. The CSRF token is an HMAC of the session id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from charter.state import StateStore

COOKIE = "charter_session"
KEY_KIND, KEY_ID = "inbox-key", "session"
SIGNED_OUT = "inbox-signed-out"
#: hex digits of the token's SHA-256 a session carries (enough to tell tokens apart, not to guess one)
TAG_LEN = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in person: their token's name, the token tag, the session id and its expiry."""

    name: str
    tag: str
    sid: str
    expires: float


class SessionKeys:
    """The signing key: from the config, or created once in the store and shared by every replica.

    Two replicas starting together may both write a key; the later write wins and a verification
    that fails re-reads the key (at most once a second), so they converge within a second.
    """

    def __init__(self, store: StateStore, configured: bytes | None = None):
        self.store = store
        self.configured = configured
        self._key: bytes | None = configured
        self._read_at = 0.0
        self._lock = threading.Lock()

    def key(self) -> bytes:
        """The current key (read from, or created in, the store on first use)."""
        if self._key is None:
            self.refresh(force=True)
        assert self._key is not None
        return self._key

    def refresh(self, force: bool = False) -> bool:
        """Re-read the stored key (True if it changed); a configured key never changes."""
        if self.configured is not None:
            return False
        with self._lock:
            now = time.monotonic()
            if not force and now - self._read_at < 1.0:
                return False
            self._read_at = now
            got = self.store.get_record(KEY_KIND, KEY_ID)
            if got is None:
                self.store.put_record(KEY_KIND, KEY_ID, {"key": os.urandom(32).hex()}, ttl_s=None)
                got = self.store.get_record(KEY_KIND, KEY_ID)
            assert got is not None
            key = bytes.fromhex(got[1]["key"])
            changed = key != self._key
            self._key = key
            return changed


class Sessions:
    """Issues, verifies and signs out sessions; makes and checks CSRF tokens."""

    def __init__(self, keys: SessionKeys, lifetime_s: float, clock: Any = time.time):
        self.keys = keys
        self.lifetime_s = lifetime_s
        self.clock = clock

    def _mac(self, key: bytes, data: bytes) -> str:
        return _b64(hmac.new(key, data, hashlib.sha256).digest())

    def issue(self, name: str, token_sha256: str) -> tuple[Session, str]:
        """A new session and its cookie value."""
        s = Session(name, token_sha256[:TAG_LEN], os.urandom(16).hex(), self.clock() + self.lifetime_s)
        payload = _b64(json.dumps([s.name, s.tag, s.sid, s.expires], separators=(",", ":")).encode())
        return s, f"{payload}.{self._mac(self.keys.key(), payload.encode())}"

    def read(self, cookie: str | None) -> Session | None:
        """The session a cookie carries, or None (missing, forged, expired or signed out)."""
        if not cookie or len(cookie) > 2048 or cookie.count(".") != 1:
            return None
        payload, mac = cookie.split(".")
        ok = hmac.compare_digest(mac, self._mac(self.keys.key(), payload.encode()))
        if not ok and self.keys.refresh():
            ok = hmac.compare_digest(mac, self._mac(self.keys.key(), payload.encode()))
        if not ok:
            return None
        try:
            name, tag, sid, expires = json.loads(_unb64(payload))
            s = Session(str(name), str(tag), str(sid), float(expires))
        except (ValueError, TypeError):
            return None
        if s.expires <= self.clock():
            return None
        if self.keys.store.get_record(SIGNED_OUT, s.sid) is not None:
            return None
        return s

    def sign_out(self, s: Session) -> None:
        """Record the sign-out in the store until the session would have expired anyway."""
        left = max(1.0, s.expires - self.clock()) + 60.0
        self.keys.store.put_record(SIGNED_OUT, s.sid, {"at": self.clock()}, ttl_s=left)

    def csrf(self, s: Session) -> str:
        """The CSRF token of a session (an HMAC of its id: nothing to store)."""
        return self._mac(self.keys.key(), b"csrf|" + s.sid.encode())

    def csrf_ok(self, s: Session, presented: str | None) -> bool:
        """True when ``presented`` is this session's CSRF token (constant-time)."""
        return bool(presented) and hmac.compare_digest(str(presented), self.csrf(s))
