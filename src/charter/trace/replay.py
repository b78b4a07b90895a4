"""Replay: re-decide recorded requests under a candidate policy, with the state each decision saw."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from charter.enums import HitKind, Outcome

_RANK = {o.value: o.rank for o in Outcome}


@dataclass
class Change:
    """One recorded decision that the candidate decides differently."""

    id: str
    agent: str | None
    target: str | None
    before: str
    after: str
    rules_before: list[str]
    rules_after: list[str]

    @property
    def widens(self) -> bool:
        """The candidate is looser for this request (e.g. deny -> allow, approval dropped)."""
        return _RANK[self.after] < _RANK[self.before]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.id,
            "agent": self.agent,
            "target": self.target,
            "before": self.before,
            "after": self.after,
            "widens": self.widens,
            "rules_before": self.rules_before,
            "rules_after": self.rules_after,
        }


@dataclass
class ReplayReport:
    """What a candidate policy would have changed."""

    replayed: int = 0
    unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    @property
    def widened(self) -> list[Change]:
        """Changes that loosen a decision."""
        return [c for c in self.changes if c.widens]

    def transitions(self) -> dict[str, int]:
        """'deny -> allow': count."""
        return dict(Counter(f"{c.before} -> {c.after}" for c in self.changes))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "schema_version": 1,
            "replayed": self.replayed,
            "unchanged": self.unchanged,
            "changed": len(self.changes),
            "widened": len(self.widened),
            "transitions": self.transitions(),
            "changes": [c.to_dict() for c in self.changes],
            "skipped": [{"id": i, "why": w} for i, w in self.skipped],
        }


def records_from(source: str | Path) -> Iterator[dict[str, Any]]:
    """Decision records from a trace log (SQLite file or PostgreSQL URL) or a JSONL export, oldest first.

    A JSONL export is untrusted input: each line goes through the bounded document reader
    (raises charter.documents.DocumentError on an oversized, too deep or malformed line).
    """
    from charter.documents import MAX_DOCUMENT_BYTES, DocumentError, parse_document
    from charter.trace.sink import is_postgres, open_reader

    p = Path(source)
    if not is_postgres(source) and p.suffix == ".jsonl":
        with p.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if len(line) > MAX_DOCUMENT_BYTES:
                    raise DocumentError(f"{p}:{n}: a line is larger than {MAX_DOCUMENT_BYTES:,} bytes")
                row = parse_document(line, what=f"{p}:{n}", json_only=True)
                body = row.get("body") if isinstance(row, dict) else None
                rec = (
                    parse_document(body, what=f"{p}:{n} body", json_only=True)
                    if isinstance(body, str)
                    else row
                )
                if isinstance(rec, dict) and rec.get("kind") == "decision":
                    yield rec
        return
    reader = open_reader(source)
    try:
        for body in reader.bodies(["kind = 'decision'"], [], newest_first=False, limit=None):
            yield json.loads(body)
    finally:
        reader.close()


def _seed(store: Any, rec: dict[str, Any], now: float) -> None:
    """Put into an empty store the state the recorded decision saw (stops, budgets, counters)."""
    from charter.engine.boundaries import BY_KIND
    from charter.state import Batch, BudgetLine, HitOp, ReserveOp, StopRecord

    hits, lines = [], []
    for b in rec.get("boundaries", []):
        if b.get("kind") == HitKind.STOP:
            scope, _, value = str(b.get("id", "")).partition(":")
            store.set_stop(StopRecord(scope, value, b.get("detail") or "", "replay", now, "replay"))
            continue
        kind = BY_KIND.get(str(b.get("kind")))
        seed = kind.seed(b) if kind is not None else None
        if seed is None:
            continue
        if seed.spent_micros:
            lines.append(BudgetLine(seed.key, 2**62, seed.spent_micros))
        if seed.hits:
            hits.append(HitOp(seed.key, 3600.0 * 24, seed.hits))
    if hits or lines:
        reserve = ReserveOp("replay-seed", tuple(lines), 3600.0) if lines else None
        store.apply(Batch(now=now - 1e-3, hits=tuple(hits), reserve=reserve))
        if reserve is not None:
            store.commit("replay-seed", None, now=now)


def _fixed(t: float) -> Any:
    """A clock stopped at the time of the recorded decision."""
    return lambda: t


def replay(candidate: Any, records: Iterable[dict[str, Any]]) -> ReplayReport:
    """Decide each recorded request under the candidate policy, each in the state it saw."""
    from charter.engine.engine import Engine
    from charter.state.memory import MemoryStore

    report = ReplayReport()
    for rec in records:
        req = dict(rec["request"])
        if req.get("approval"):
            report.skipped.append((rec["id"], "resubmission with an approval (needs the human record)"))
            continue
        if any(v == "[redacted]" for v in (req.get("action", {}).get("args") or {}).values()):
            pass  # redacted arguments are replayed as recorded (conditions on them may differ)
        now = float(rec["at"])
        store = MemoryStore()
        try:
            _seed(store, rec, now)
        except Exception as exc:
            report.skipped.append((rec["id"], f"state could not be rebuilt: {exc}"))
            continue
        engine = Engine(candidate, store=store, clock=_fixed(now))
        req.pop("idempotency_key", None)
        try:
            got = engine.decide(req)
        except ValueError as exc:
            report.skipped.append((rec["id"], f"request no longer valid: {exc}"))
            continue
        report.replayed += 1
        after = got.outcome.value
        if after == rec["outcome"]:
            report.unchanged += 1
            continue
        report.changes.append(
            Change(
                rec["id"],
                rec.get("agent"),
                req.get("action", {}).get("target"),
                rec["outcome"],
                after,
                [r["id"] for r in rec.get("rules", [])],
                [h.id for h in got.rules],
            )
        )
    return report
