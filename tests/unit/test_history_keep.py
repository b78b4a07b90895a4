"""keep_values: the bound-first shortcut keeps and cuts exactly what encoding every value does."""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

import pytest

from charter.cel.history import CALL_LIMIT, VALUE_LIMIT, keep_values

_encode = json.JSONEncoder(separators=(",", ":"), sort_keys=True, allow_nan=False, ensure_ascii=False).encode


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _reference(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The rule as docs/semantics.md states it: every value encoded, in order."""
    kept: dict[str, Any] = {}
    cut: dict[str, str] = {}
    used = 0
    for name, value in values.items():
        try:
            text = _encode(value)
        except (TypeError, ValueError, RecursionError):
            cut[name] = _digest(repr(value)[:100_000])
            continue
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > VALUE_LIMIT or used + size > CALL_LIMIT:
            cut[name] = _digest(text)
            continue
        used += size
        kept[name] = value
    return kept, cut


def _value(rng: random.Random) -> Any:
    pick = rng.random()
    if pick < 0.35:
        n = rng.choice([0, 1, 5, 100, 169, 170, 171, 300, 1000, 1022, 1023, 1024, 2000])
        alphabet = rng.choice(["ab", 'a"\\', "a\n\x01", "é€", "\U0001f600", "\ud800x"])
        return "".join(rng.choice(alphabet) for _ in range(n))
    if pick < 0.5:
        return rng.choice([0, -1, 10**18, 10**19 - 1, 10**19, -(10**19), 10**40, True, False, None])
    if pick < 0.6:
        return rng.choice([0.0, -0.0, 1e308, -2.5e-308, float("nan"), float("inf"), 0.1])
    if pick < 0.8:
        return [_value(rng) for _ in range(rng.randrange(4))]
    if pick < 0.9:
        return {str(i): _value(rng) for i in range(rng.randrange(3))}
    return rng.choice([{1, 2}, ("t", 1), {"k": object()}])


@pytest.mark.parametrize("seed", range(40))
def test_keep_values_is_the_rule(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(50):
        values = {f"a{i}": _value(rng) for i in range(rng.randrange(12))}
        kept, cut = keep_values(values)
        want_kept, want_cut = _reference(values)
        assert list(kept) == list(want_kept) and all(kept[k] is want_kept[k] for k in kept)
        assert cut == want_cut


def _leaf(rng: random.Random, kind: int, width: int) -> Any:
    if kind == 0:  # texts whose JSON is longer than they are: escapes, multi-byte characters
        return "".join(rng.choice('ab"\\\n\x01é\U0001f600\ud800') for _ in range(width))
    if kind == 1:
        return rng.choice([True, None, 10**18, 10**19, -(10**19) + 1, 0.5, float("nan"), -0.0, 1e308])
    return rng.choice(["x" * width, ["nested"], {"k": 1}, ("t",)])


@pytest.mark.parametrize("seed", range(10))
def test_lists_of_leaves_near_the_limits(seed: int) -> None:
    """Lists of leaves (recipients, attachments) are bounded without encoding: still exact."""
    rng = random.Random(1000 + seed)
    for _ in range(200):
        n = rng.choice([0, 1, 2, 10, 60, 140, 170, 200, 511, 512, 513])
        width = rng.choice([0, 1, 2, 5, 20])
        kind = rng.randrange(3)
        values = {f"a{i}": [_leaf(rng, kind, width) for _ in range(n)] for i in range(rng.randrange(1, 10))}
        kept, cut = keep_values(values)
        want_kept, want_cut = _reference(values)
        assert list(kept) == list(want_kept) and all(kept[k] is want_kept[k] for k in kept)
        assert cut == want_cut


def test_keep_values_at_the_call_limit() -> None:
    # eight values of exactly 1 KiB of JSON fill the call; a ninth byte anywhere is cut
    full = {f"v{i}": "x" * (VALUE_LIMIT - 2) for i in range(CALL_LIMIT // VALUE_LIMIT)}
    assert keep_values(full) == (full, {})
    kept, cut = keep_values({**full, "more": 1})
    assert list(cut) == ["more"] and kept == full
