"""Slash-separated paths, purely lexical (Go's path package): path.clean(), path.base(), path.dir().

``path.clean`` is Go's ``path.Clean`` (https://pkg.go.dev/path#Clean): the shortest equivalent
path, by applying until nothing changes: (1) runs of slashes become one; (2) each ``.`` element
goes; (3) each inner ``..`` goes with the non-``..`` element before it; (4) ``..`` at the start
of a rooted path goes (``/..`` becomes ``/``). No trailing slash but on ``/``; ``''`` is ``.``.
A leading ``..`` of a relative path stays: ``path.clean('../x') == '../x'``. Nothing here reads
the file system (no symbolic links are followed), so a policy must not take a clean path for
where a write really lands if links may be in the way.
"""

from __future__ import annotations

from typing import Any

from charter.cel.limits import text_cost
from charter.cel.signatures import Function, fn
from charter.cel.stdlib import no_overload


def clean(p: str) -> str:
    """Go's path.Clean, element by element (one pass: each rule's result is already clean)."""
    rooted = p.startswith("/")
    out: list[str] = []
    dotdot = 0  # leading '..' elements of a relative result, which no later '..' may remove
    for part in p.split("/"):
        if part == "" or part == ".":
            continue
        if part == "..":
            if len(out) > dotdot:
                out.pop()
            elif not rooted:
                out.append("..")
                dotdot += 1
            continue
        out.append(part)
    text = "/".join(out)
    return ("/" + text if rooted else text) or "."


def base(p: str) -> str:
    """Go's path.Base: the last element, trailing slashes removed; '.' for '', '/' for slashes."""
    if p == "":
        return "."
    p = p.rstrip("/")
    return p[p.rfind("/") + 1 :] if p else "/"


def dir_(p: str) -> str:
    """Go's path.Dir: everything before the last element, cleaned."""
    return clean(p[: p.rfind("/") + 1])


def _text(name: str, f: Any) -> Any:
    def call(p: Any) -> str:
        if type(p) is not str:
            raise no_overload(name, p)
        return str(f(p))

    call.__doc__ = f"``{name}(string)``."
    return call


def _cost(p: Any) -> int:
    return text_cost(len(p)) if type(p) is str else 0


FUNCTIONS: list[Function] = [
    fn("path.clean", _text("path.clean", clean), "(string) -> string", cost=_cost,
       doc="the shortest equivalent slash-separated path, lexically (Go's path.Clean): no '.', "
           "no inner '..', single slashes, no trailing slash; a leading '..' stays",
       examples=["path.clean('src/../.git/config') == '.git/config'",
                 "path.clean('a//b/./c/') == 'a/b/c'", "path.clean('../x') == '../x'",
                 "path.clean('/../etc') == '/etc'"]),
    fn("path.base", _text("path.base", base), "(string) -> string", cost=_cost,
       doc="the last element of a path (Go's path.Base)",
       examples=["path.base('a/b/c.txt') == 'c.txt'", "path.base('') == '.'"]),
    fn("path.dir", _text("path.dir", dir_), "(string) -> string", cost=_cost,
       doc="all but the last element of a path, cleaned (Go's path.Dir)",
       examples=["path.dir('a/b/c.txt') == 'a/b'", "path.dir('c.txt') == '.'"]),
]  # fmt: skip
