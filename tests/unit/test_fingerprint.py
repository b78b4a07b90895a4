"""The repeated-call fingerprint and the compact encoder it uses, against ``json.dumps``.

Fingerprints are store keys (a shared store keeps them across versions and replicas), so the text
they digest must stay exactly ``json.dumps([tool, args], sort_keys=True, default=str,
separators=(",", ":"))``, with integral floats written as ints (test_number_spellings.py):
compared here on generated arguments, and pinned on one call.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from charter.engine.stateful import call_fingerprint
from charter.jsonenc import compact_encoder

_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text()
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


class _View:
    def __init__(self, target: str, args: Any) -> None:
        self.target = target
        self.args = args


def _ints(v: Any) -> Any:
    """Integral floats as ints: the fingerprint digests numbers as conditions compare them."""
    if isinstance(v, float) and v.is_integer() and -(2**63) <= v < 2**63:
        return int(v)
    if isinstance(v, dict):
        return {k: _ints(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_ints(x) for x in v]
    return v


def _reference(target: str, args: Any) -> str:
    blob = json.dumps([target, _ints(args)], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.blake2b(blob.encode(), digest_size=8).hexdigest()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=20), _values)
def test_the_fingerprint_digests_exactly_the_json_dumps_text(target: str, args: Any) -> None:
    assert call_fingerprint(_View(target, args)) == _reference(target, args)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(_values)
def test_the_ascii_compact_encoder_is_json_dumps(value: Any) -> None:
    enc = compact_encoder(sort_keys=True, default=str, ensure_ascii=True)
    assert enc(value) == json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    plain = compact_encoder(sort_keys=True, default=str)
    assert plain(value) == json.dumps(
        value, sort_keys=True, default=str, separators=(",", ":"), ensure_ascii=False
    )


def test_a_fingerprint_is_pinned() -> None:
    view = _View("mail.send", {"to": ["ruth@ledgerly.example", "é"], "n": 2, "b": {"z": 1.5, "a": None}})
    assert call_fingerprint(view) == _reference(view.target, view.args)  # type: ignore[arg-type]
    assert call_fingerprint(view) == "18b8c31db8760598"  # the digest before the encoder was built once  # type: ignore[arg-type]


def test_values_that_are_not_json_are_written_as_their_text() -> None:
    view = _View("t", {"when": datetime(2026, 12, 7, tzinfo=UTC), "pair": (1, 2)})
    assert call_fingerprint(view) == _reference(view.target, view.args)  # type: ignore[arg-type]
