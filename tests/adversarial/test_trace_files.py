"""Attacks on the trace file the CLI is pointed at (`--trace`): any file can be named.

Invariant attacked: `charter trace verify`, `list` and `replay` on a file that is not a trace log
(random bytes, a JSON file, a device) say so in one line with a non-zero exit, never a
`sqlite3.DatabaseError` traceback, and never read a device.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from charter.cli.main import cli


@pytest.mark.parametrize("content", [b"garbage", b"SQLite format 3\x00" + b"\x00" * 100, b'{"seq": 1}\n'])
@pytest.mark.parametrize("command", [["trace", "verify"], ["trace", "list"]])
def test_a_file_that_is_not_a_trace_log_is_refused(
    tmp_path: Path, content: bytes, command: list[str]
) -> None:
    (tmp_path / "t.db").write_bytes(content)
    res = CliRunner().invoke(cli, [*command, "--trace", str(tmp_path / "t.db")])
    assert res.exit_code != 0 and isinstance(res.exception, SystemExit), repr(res.exception)
    assert "is not a trace log" in res.output, res.output


def test_a_device_is_never_opened_as_a_trace_log() -> None:
    res = CliRunner().invoke(cli, ["trace", "verify", "--trace", "/dev/zero"])
    assert isinstance(res.exception, SystemExit) and "not a regular file" in res.output, res.output
