"""Policy text from standard input (``charter check -``, ``charter fmt -``): bounded, UTF-8, ``<stdin>``."""

from __future__ import annotations

import sys
from typing import BinaryIO

from charter.diagnostics import Code, Diagnostic, Span, error
from charter.syntax.parser import MAX_FILE_BYTES, decode

#: The file name diagnostics give to text read from standard input.
STDIN_NAME = "<stdin>"
#: The argument that means standard input (as formatters and linters spell it).
STDIN_ARG = "-"


def read_policy_stdin(stream: BinaryIO | None = None) -> tuple[str | None, list[Diagnostic]]:
    """Read one policy from ``stream`` (default: standard input's bytes), at most the file size limit.

    Reads one byte past the limit so that an oversized input is refused without reading it all;
    binary or non-UTF-8 input gives the same diagnostics as a file would.
    """
    src = stream if stream is not None else sys.stdin.buffer
    data = src.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        return None, [
            error(
                Code.E003_TOO_LARGE,
                f"standard input is larger than the {MAX_FILE_BYTES:,}-byte limit of a policy file",
                Span.point(STDIN_NAME),
                "split the policy into several files joined with include",
            )
        ]
    return decode(STDIN_NAME, data)
