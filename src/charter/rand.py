"""charter's own random stream (pruning chances, row nonces, retry jitter), apart from ``random``'s.

A library that draws from the global ``random`` state changes what a program that seeded it gets
next, and a background thread doing so makes that depend on timing (hypothesis reports it as a
strategy that uses ``random``). Like the global instance, this one is reseeded in a forked child, so
two processes forked from one parent never draw the same nonces (SQLite rows of a counter are keyed
by time and a 62-bit nonce: equal draws at one instant would collide).
"""

from __future__ import annotations

import os
import random

__all__ = ["chance", "nonce"]

_rng = random.Random()
os.register_at_fork(after_in_child=_rng.seed)

#: a float in [0, 1)
chance = _rng.random


def nonce() -> int:
    """A random 62-bit integer (fits SQLite's and PostgreSQL's signed 64-bit integers)."""
    return _rng.getrandbits(62)
