"""Unguessable record ids from os.urandom, read in blocks (one system call per 512 ids)."""

from __future__ import annotations

import os
import threading

_BLOCK = 4096
_lock = threading.Lock()
_pool = b""
_at = 0


def _reset() -> None:
    global _pool, _at
    _pool, _at = b"", 0


# a forked child must not hand out the ids its parent's pool still holds
os.register_at_fork(after_in_child=_reset)


def random_hex(nbytes: int = 8) -> str:
    """``nbytes`` fresh bytes from the operating system's CSPRNG, as hex."""
    global _pool, _at
    with _lock:
        if _at + nbytes > len(_pool):
            _pool, _at = os.urandom(_BLOCK), 0
        chunk = _pool[_at : _at + nbytes]
        _at += nbytes
    return chunk.hex()
