"""Unicode text: what a request's free text, a trace record and any UTF-8 writer can hold."""

from __future__ import annotations

import re

#: a surrogate code point (U+D800 to U+DFFF): a Python ``str`` can hold one (the sidecar's JSON
#: parser refuses a lone escape), but no UTF-8 text can, so no trace, store or response could
#: write it
SURROGATE = re.compile("[\ud800-\udfff]")


def text_ok(v: str) -> bool:
    """Whether ``v`` is Unicode text UTF-8 can hold (no surrogate code point). ``isascii`` reads
    a flag of the string, so ASCII text costs one call."""
    return v.isascii() or SURROGATE.search(v) is None
