"""Where a trace lives: the storage interface of the chain (SQLite file or PostgreSQL URL) and its choice."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from charter.errors import Error

#: One stored record: (seq, id, kind, at, outcome, agent, rules, ref, prev, hash, body).
Row = tuple[int, str, str, float, Any, Any, str, Any, str, str, str]
#: One row as readers stream it: (seq, prev, hash, body, index columns as stored).
StoredRow = tuple[int, str, str, str, tuple[Any, ...]]
#: The SQL list of the index columns (see charter.trace.record.INDEX_COLUMNS).
INDEX_SQL = "id, kind, at, outcome, agent, rules, ref"
#: What a chain append produces from the head it continues: (rows, new seq, new head hash).
Built = tuple[list[Row], int, str]
#: Builds the rows of an append from the current head (seq, hash) of the chain.
Build = Callable[[int, str], Built]
#: Signs a checkpoint for (length, head hash).
Sign = Callable[[int, str], dict[str, Any]]

CHECKPOINT_FIELDS = ("length", "head", "at", "signature", "public_key")


class TraceError(Error):
    """The trace could not be written (or read); decisions fail closed while this lasts."""


class Sink(Protocol):
    """Storage of one hash chain. Appends and checkpoints are atomic and serialised across
    processes: each runs in one transaction that holds the chain's lock and reads the head first."""

    location: str
    display: str

    def head(self) -> tuple[int, str]:
        """(seq, hash) of the last stored record, or (0, GENESIS)."""
        ...

    def append(self, build: Build) -> tuple[int, str]:
        """In one transaction holding the chain lock: read the head, insert build(head), commit."""
        ...

    def add_checkpoint(self, sign: Sign) -> dict[str, Any]:
        """In one transaction holding the chain lock: sign the head and store the checkpoint."""
        ...

    def problem(self) -> str | None:
        """Why appends cannot succeed right now (for readiness), or None."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


class Reader(Protocol):
    """Read-only access to a stored chain (raises FileNotFoundError when there is none)."""

    def rows(self) -> Iterator[StoredRow]:
        """(seq, prev, hash, body, index columns) in chain order, streamed."""
        ...

    def batch(self, after: int, limit: int) -> list[StoredRow]:
        """Up to ``limit`` rows with ``seq > after``, in chain order, from a fresh snapshot (a
        follower calls it again and sees what was appended since). Appends are serialised and
        commit whole, so what one call sees is always a prefix of the chain: no gaps."""
        ...

    def checkpoints(self) -> list[dict[str, Any]]:
        """Stored checkpoints, oldest first."""
        ...

    def bodies(
        self, where: Sequence[str], args: Sequence[Any], *, newest_first: bool, limit: int | None
    ) -> list[str]:
        """Record bodies matching every ``where`` clause (``?`` placeholders), in chain order.

        Each row's index columns (what ``where`` filtered on) are checked against its hashed body
        (:func:`checked_bodies`): an edited column raises TraceError instead of misleading a reader.
        """
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


def is_postgres(location: str | Path) -> bool:
    """True when the trace location is a PostgreSQL URL rather than a SQLite file."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def display(location: str | Path) -> str:
    """The location without a password, for messages."""
    text = str(location)
    if not is_postgres(text):
        return text
    parts = urlsplit(text)
    netloc = parts.netloc
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        netloc = f"{user.split(':', 1)[0]}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def open_sink(location: str | Path) -> Sink:
    """The writable chain at ``location`` (created if missing)."""
    if is_postgres(location):
        from charter.trace.pg_sink import PostgresSink

        return PostgresSink(str(location))
    from charter.trace.sqlite_sink import SqliteSink

    return SqliteSink(str(location))


def open_reader(location: str | Path) -> Reader:
    """Read-only access to the chain at ``location`` (FileNotFoundError when there is none)."""
    if is_postgres(location):
        from charter.trace.pg_sink import PostgresReader

        return PostgresReader(str(location))
    from charter.trace.sqlite_sink import SqliteReader

    return SqliteReader(str(location))


def default_key_path(location: str | Path) -> str:
    """Where the checkpoint signing key lives: ``<file>.key`` for SQLite; for PostgreSQL the URL's
    ``key=`` parameter, else $CHARTER_TRACE_KEY, else ./charter-trace.key."""
    if not is_postgres(location):
        return str(location) + ".key"
    from urllib.parse import parse_qsl

    q = dict(parse_qsl(urlsplit(str(location)).query))
    return (
        q.get("key") or os.environ.get("CHARTER_TRACE_KEY") or os.path.join(os.getcwd(), "charter-trace.key")
    )


def checked_bodies(rows: Iterable[Sequence[Any]]) -> list[str]:
    """The bodies of (seq, body, *index columns) rows, each row's columns checked against its body.

    Raises TraceError at the first row whose columns were edited (``trace verify`` names them all).
    """
    from charter.trace.record import index_problem

    out: list[str] = []
    for seq, body, *columns in rows:
        problem = index_problem(seq, body, tuple(columns))
        if problem is not None:
            raise TraceError(f"the trace was tampered with: {problem} (run charter trace verify)")
        out.append(body)
    return out
