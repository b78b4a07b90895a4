"""Verifies a trace log: every record chained to the previous one, nothing edited, removed,
inserted, reordered or truncated after a checkpoint."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from charter.trace.keys import check_checkpoint
from charter.trace.record import GENESIS, index_problem, link


@dataclass
class VerifyReport:
    """Result of a verification."""

    ok: bool
    records: int
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    checkpoints: int = 0

    @property
    def per_s(self) -> float:
        """Records verified per second."""
        return self.records / self.seconds if self.seconds > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "ok": self.ok,
            "records": self.records,
            "problems": self.problems,
            "checkpoints": self.checkpoints,
            "seconds": round(self.seconds, 4),
            "records_per_s": round(self.per_s),
        }


def verify_rows(
    rows: Iterable[tuple[Any, ...]],
    checkpoints: Iterable[dict[str, Any]] = (),
    trusted_key: str | None = None,
    first_problem_only: bool = True,
    after: tuple[int, str] = (0, GENESIS),
) -> VerifyReport:
    """Check (seq, prev, hash, body[, index columns]) rows in order against the chain rule and the
    checkpoints; when a row carries its stored index columns (outcome, agent, kind...), each must
    equal what its hashed body says, so an edited column is detected like an edited body.

    ``after=(seq, hash)`` verifies incrementally from a record already trusted (e.g. one a signed
    checkpoint vouches for): the rows then start at seq + 1.
    """
    t0 = time.perf_counter()
    problems: list[str] = []
    expected, prev = after[0] + 1, after[1]
    heads: dict[int, str] = {}
    cps = list(checkpoints)
    wanted = {int(c["length"]) for c in cps}
    n = 0
    for row in rows:
        seq, rprev, rhash, body = row[:4]
        n += 1
        if seq != expected:
            problems.append(f"record {expected} is missing or out of order (found seq {seq})")
        elif rprev != prev:
            problems.append(f"record {seq} does not follow record {seq - 1} (chain broken)")
        elif link(rprev, body) != rhash:
            problems.append(f"record {seq} was altered (its hash does not match its content)")
        elif len(row) > 4 and (bad := index_problem(seq, body, tuple(row[4]))) is not None:
            problems.append(bad)
        if problems and first_problem_only:
            break
        if seq in wanted:
            heads[seq] = rhash
        prev = rhash
        expected = seq + 1
    length = expected - 1
    for cp in cps:
        if not check_checkpoint(cp, trusted_key):
            problems.append(f"checkpoint at length {cp['length']} has an invalid signature")
            continue
        cl = int(cp["length"])
        if cl > length and not problems:
            problems.append(
                f"the log has {length} records but a checkpoint vouches for {cl}: "
                "records were removed after the checkpoint (truncated)"
            )
        elif cl in heads and heads[cl] != cp["head"]:
            problems.append(f"record {cl} differs from the checkpoint signed at that length")
    return VerifyReport(not problems, n, problems, time.perf_counter() - t0, len(cps))


def verify_log(
    path: str | Path, checkpoints: Iterable[dict[str, Any]] | None = None, trusted_key: str | None = None
) -> VerifyReport:
    """Verify a trace log (SQLite file or PostgreSQL URL) with its stored checkpoints (plus any
    exported ones given); rows are streamed, so a long chain is verified in constant memory."""
    from charter.trace.sink import open_reader

    reader = open_reader(path)
    try:
        stored = reader.checkpoints()
        return verify_rows(reader.rows(), [*stored, *(checkpoints or [])], trusted_key)
    finally:
        reader.close()
