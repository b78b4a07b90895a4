"""The one way charter opens a file it was pointed at: confined to a root, regular files only, bounded.

Every reader of policy files (the loader and its ``include`` and ``agents from``, the compile cache
of the editors, ``charter fmt``) and of documents named on the command line goes through here, so
the rules hold in one place:

- a path is resolved (symlinks followed) and must stay under the resolved root it was reached
  from: an absolute path, a ``..`` or a symlink that leads outside is refused (``OUTSIDE_ROOT``);
- only a regular file is read: a device (``/dev/zero``), a FIFO, a socket or a directory is
  refused without reading from it (``NOT_A_FILE``); a FIFO is opened non-blocking, so it cannot
  stall the reader;
- at most ``limit`` bytes are read, in chunks; a file that grows past it is refused
  (``TOO_LARGE``), whatever its ``st_size`` said;
- a dangling symlink or a symlink loop is a problem with a message (``MISSING`` / ``LOOP``),
  never a traceback, and never a silent skip.

The content of a refused file is never read, so it cannot be echoed in a message.
"""

from __future__ import annotations

import enum
import errno
import os
import stat
from pathlib import Path

from charter.errors import Error

#: Bytes read per chunk while a file is streamed up to its limit.
_CHUNK = 1 << 16


class FileProblem(enum.Enum):
    """Why a file was not read."""

    MISSING = "missing"
    OUTSIDE_ROOT = "outside-root"
    NOT_A_FILE = "not-a-file"
    LOOP = "symlink-loop"
    UNREADABLE = "unreadable"
    TOO_LARGE = "too-large"


class FileError(Error, OSError):
    """A file that was refused: ``problem`` says why, ``reason`` in words (without the path, for a
    diagnostic whose span names the file); ``str()`` is ``path: reason``. Never the file's content."""

    def __init__(self, problem: FileProblem, reason: str, path: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.problem = problem
        self.reason = reason
        self.path = path

    def __str__(self) -> str:
        return str(self.args[0])


def root_of(path: str | Path) -> Path:
    """The root a path named by the user confines: a directory itself, a file's directory (resolved)."""
    p = Path(path)
    try:
        return (p if p.is_dir() else p.parent).resolve()
    except (OSError, RuntimeError):
        return p.parent.absolute()


def resolve(path: Path, root: Path | None = None, *, must_exist: bool = True) -> Path:
    """``path`` with every symlink followed; under ``root`` (already resolved) when one is given.

    ``must_exist=False`` accepts a path that is not on disk (an editor's unsaved buffer) but still
    confines it. Raises :class:`FileError` (missing, dangling, loop, outside the root).
    """
    shown = str(path)
    try:
        real = path.resolve(strict=must_exist)
    except FileNotFoundError:
        if path.is_symlink():
            raise FileError(FileProblem.MISSING, "dangling symlink", shown) from None
        raise FileError(FileProblem.MISSING, "no such file", shown) from None
    except RuntimeError:  # Python 3.11 reports a symlink loop this way
        raise FileError(FileProblem.LOOP, "symlink loop", shown) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FileError(FileProblem.LOOP, "symlink loop", shown) from None
        raise FileError(FileProblem.UNREADABLE, f"cannot read file: {exc.strerror}", shown) from None
    if root is not None and not real.is_relative_to(root):
        raise FileError(FileProblem.OUTSIDE_ROOT, f"outside the policy directory {root}", shown)
    return real


def read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them (else ``TOO_LARGE``).

    Opened non-blocking and checked with ``fstat`` on the open descriptor, so what is checked is
    what is read (no race between a check and the open) and a FIFO never blocks.
    """
    shown = str(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        kind = "dangling symlink" if path.is_symlink() else "no such file"
        raise FileError(FileProblem.MISSING, kind, shown) from None
    except IsADirectoryError:
        raise FileError(FileProblem.NOT_A_FILE, "is a directory", shown) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FileError(FileProblem.LOOP, "symlink loop", shown) from None
        raise FileError(FileProblem.UNREADABLE, f"cannot read file: {exc.strerror}", shown) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise FileError(FileProblem.NOT_A_FILE, "is a directory", shown)
        if not stat.S_ISREG(st.st_mode):
            raise FileError(
                FileProblem.NOT_A_FILE, "not a regular file (a device, FIFO or socket is never read)", shown
            )
        if st.st_size > limit:
            raise FileError(
                FileProblem.TOO_LARGE, f"file is {st.st_size:,} bytes; the limit is {limit:,}", shown
            )
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(_CHUNK, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise FileError(
                    FileProblem.TOO_LARGE, f"file is larger than the limit of {limit:,} bytes", shown
                )
        return b"".join(chunks)
    except FileError:
        raise
    except OSError as exc:
        raise FileError(FileProblem.UNREADABLE, f"cannot read file: {exc.strerror}", shown) from None
    finally:
        os.close(fd)


def read_confined(path: Path, root: Path | None, limit: int) -> bytes:
    """``read_bounded`` of ``path`` after ``resolve`` confined it to ``root``."""
    return read_bounded(resolve(path, root), limit)


def policy_files(directory: Path, suffix: str, limit: int) -> tuple[list[Path], list[FileError]]:
    """Every ``*suffix`` entry under ``directory`` (sorted, symlinked directories not followed), and
    the entries that cannot be policy files: a dangling or looping symlink, one leading outside the
    directory, a non-regular file. None is skipped silently: a vanished policy file fails closed.
    At most ``limit`` entries are listed (the caller reports more as too large).
    """
    root = directory.resolve()
    found: list[Path] = []
    problems: list[FileError] = []
    for dirpath, dirnames, filenames in os.walk(directory, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames + [d for d in dirnames if d.endswith(suffix)]):
            if not name.endswith(suffix):
                continue
            p = Path(dirpath) / name
            try:
                real = resolve(p, root)
                if not real.is_file():
                    raise FileError(FileProblem.NOT_A_FILE, "not a regular file", str(p))
            except FileError as exc:
                problems.append(exc)
                continue
            found.append(p)
            if len(found) > limit:
                return found, problems
    return sorted(found), problems
