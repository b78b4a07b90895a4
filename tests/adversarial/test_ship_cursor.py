"""Hostile `charter trace ship --cursor` files: refused with a clear error before anything is sent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.adversarial.test_trace_ship import _ship, _trace

CORRUPT = {
    "infinite seq": '{"seq": 1e400, "hash": "x"}',
    "negative seq": '{"seq": -3, "hash": "x"}',
    "bool seq": '{"seq": true, "hash": "x"}',
    "text seq": '{"seq": "2", "hash": "x"}',
    "fractional seq": '{"seq": 1.5, "hash": "x"}',
    "NaN seq": '{"seq": NaN, "hash": "x"}',
    "number hash": '{"seq": 0, "hash": 5}',
    "seq 0 with a foreign hash": '{"seq": 0, "hash": "abc"}',
    "not an object": "[1]",
    "not UTF-8": "\x00\xff",
    "empty": "",
    "10,000 levels": "[" * 10_000 + "]" * 10_000,
    "2,000 levels (under the size cap)": "[" * 2_000 + "]" * 2_000,
    "huge": '{"seq": ' + "9" * 5000 + ', "hash": "x"}',
}


@pytest.mark.parametrize("text", list(CORRUPT.values()), ids=list(CORRUPT))
def test_a_corrupt_cursor_is_an_error_and_nothing_is_sent(tmp_path: Path, text: str) -> None:
    loc = str(tmp_path / "t.db")
    _trace(loc, 4)
    cursor = tmp_path / "cursor.json"
    cursor.write_bytes(text.encode("latin-1"))
    stats, sink = _ship(loc, cursor)  # never raises: a traceback here was the hole
    assert stats.error is not None and "is not a shipper cursor" in stats.error
    assert stats.refused is None  # a corrupt cursor is not blamed on the trace
    assert sink.lines == [] and stats.shipped == 0
    assert cursor.read_bytes() == text.encode("latin-1")  # left as it was


def test_a_cursor_that_is_a_directory_is_an_error(tmp_path: Path) -> None:
    loc = str(tmp_path / "t.db")
    _trace(loc, 2)
    (tmp_path / "dir").mkdir()
    stats, sink = _ship(loc, tmp_path / "dir")
    assert stats.error is not None and "directory" in stats.error.lower() and sink.lines == []


def test_a_symlinked_cursor_never_writes_through_the_link(tmp_path: Path) -> None:
    loc = str(tmp_path / "t.db")
    _trace(loc, 4)
    elsewhere = tmp_path / "elsewhere.json"
    link = tmp_path / "cursor.json"
    os.symlink(elsewhere, link)
    stats, sink = _ship(loc, link)
    assert stats.error is None and len(sink.lines) == 4
    assert not elsewhere.exists() and not link.is_symlink()  # the link was replaced, not followed


def test_a_cursor_in_a_missing_directory_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    loc = str(tmp_path / "t.db")
    _trace(loc, 4)
    stats, _ = _ship(loc, tmp_path / "nope" / "cursor.json")
    # At least once: the first batch may have gone out before the cursor could not be written.
    assert stats.error is not None and "No such file" in stats.error
    assert not (tmp_path / "nope").exists()


def test_cli_bounds_batch_size_poll_and_give_up(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from charter.cli.main import cli as main

    loc = str(tmp_path / "t.db")
    _trace(loc, 1)
    pol = tmp_path / "p.charter"
    pol.write_text("policy p\n", "utf-8")
    base = ["trace", "ship", "--trace", loc, "--to", "jsonl:http://127.0.0.1:9/x", "--policy", str(pol)]
    for extra in (
        ["--batch-size", "0"],
        ["--batch-size", "-1"],
        ["--batch-size", "99999999999999999999"],
        ["--batch-size", "nan"],
        ["--poll", "nan"],
        ["--poll", "inf"],
        ["--poll", "-1"],
        ["--poll", "0"],
        ["--give-up-after", "-1"],
        ["--give-up-after", "nan"],
        ["--cursor", str(tmp_path)],
        ["--policy", str(tmp_path / "missing")],
    ):
        r = CliRunner().invoke(main, [*base, *extra])
        assert r.exit_code == 2, (extra, r.output)
        assert r.exception is None or isinstance(r.exception, SystemExit), (extra, r.exception)
        assert "Traceback" not in r.output
