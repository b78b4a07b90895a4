"""Run grants in the stores: the one sequence every store runs inside its atomic step.

A store keeps a run's grant instances as one document (a JSON list of GrantRecord docs) beside
the run's state. ``apply_with_grants`` wraps a store's decide batch: read the run's grants, pick
the uses to consume (``pick_grant_uses``), refuse the batch if a kind has none left (stops and
replays still answer first), apply the batch, and write the uses iff the batch went through.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence

from charter.state.types import Batch, BatchResult, GrantRecord, dumps, narrowed, pick_grant_uses

__all__ = ["apply_with_grants", "decode_grants", "encode_grants", "narrow_all", "went_through"]


def encode_grants(grants: Sequence[GrantRecord]) -> str:
    """The stored document of a run's grants."""
    return dumps([g.to_doc() for g in grants])


def decode_grants(doc: str | bytes | None) -> tuple[GrantRecord, ...]:
    """A run's grants from their stored document (none: ``()``)."""
    if not doc:
        return ()
    return tuple(GrantRecord.from_doc(d) for d in json.loads(doc))


def went_through(res: BatchResult) -> bool:
    """The batch wrote its effects: not stopped, replayed, limited, tripped or refused."""
    if res.stop is not None or res.replayed_payload is not None or res.grant_refused:
        return False
    if any(h.limited or h.tripped for h in res.hits):
        return False
    return res.reserve is None or res.reserve.ok


def apply_with_grants(
    batch: Batch,
    read: Callable[[str], tuple[GrantRecord, ...]],
    apply: Callable[[Batch], BatchResult],
    write: Callable[[str, tuple[GrantRecord, ...]], None],
) -> BatchResult:
    """``apply(batch)`` with its grant-use op, inside the caller's atomic step (transaction)."""
    op = batch.grant_use
    if op is None:
        return apply(batch)
    current = read(op.run_key)
    picked = pick_grant_uses({g.id: g for g in current}, op)
    if picked is None:
        # only the stops and the replay are read: a halted or retried request answers as such
        probe = apply(Batch(now=batch.now, stop_keys=batch.stop_keys, idempotency_key=batch.idempotency_key))
        if probe.stop is not None or probe.replayed_payload is not None:
            return probe
        return BatchResult(grant_refused=True)
    res = apply(batch)
    if went_through(res):
        used = {g.id: g for g in picked}
        write(op.run_key, tuple(used.get(g.id, g) for g in current))
        res.grant_uses = picked
    return res


def narrow_all(
    grants: Sequence[GrantRecord], revoke: Sequence[str], uses: Mapping[str, int]
) -> tuple[GrantRecord, ...]:
    """The grants left after revoking ``revoke`` and lowering ``uses`` (never widening)."""
    gone = frozenset(revoke)
    out = []
    for g in grants:
        kept = narrowed(g, gone, uses)
        if kept is not None:
            out.append(kept)
    return tuple(out)
