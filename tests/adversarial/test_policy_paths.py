"""Attacks on how a policy's files are found and read (issue 15, item 5; charter.files).

Invariants attacked: a policy reads only regular files under its root (the directory named, or the
named file's directory), at most the size limit, without blocking; a file outside the root is never
read, so nothing of it reaches a diagnostic, a source or the output; a symlink loop, a dangling or
non-regular ``*.charter`` is an error with a stable code (never a traceback, never a silent skip);
every reader (the loader and its ``include`` / ``agents from``, the editor's overlay compile,
``charter check``, ``charter fmt``) behaves the same.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charter.api import check
from charter.cli.main import cli
from charter.compiler.cache import CompileCache
from charter.compiler.load import load
from charter.syntax.parser import MAX_FILE_BYTES, parse_file

SECRET = "TOPSECRET-4f2a"
BASE = 'policy acme\ntool kb.read { category read }\npermit r { action call kb.read reason "r" }\n'


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """tmp/secret.txt and tmp/secret.charter (outside), tmp/pol/ (the policy root)."""
    (tmp_path / "secret.txt").write_text(f"root:x:0:0:{SECRET}\n")
    (tmp_path / "secret.charter").write_text(f'policy leak\npermit x {{ action call {SECRET} reason "r" }}\n')
    root = tmp_path / "pol"
    (root / "sub").mkdir(parents=True)
    (root / "main.charter").write_text(BASE)
    return root


def _compile(root: Path, include: str) -> tuple[list[str], str]:
    (root / "main.charter").write_text(BASE + f'include "{include}"\n')
    res = check([root])
    text = "\n".join(f"{d.code.value} {d.message} {d.help or ''}" for d in res.diagnostics)
    text += "\n".join(res.sources.values()) if hasattr(res, "sources") else ""
    return [d.code.value for d in res.diagnostics if d.is_error], text


def _escapes(tmp_path: Path) -> list[str]:
    return [
        str(tmp_path / "secret.txt"),
        str(tmp_path / "secret.charter"),
        "../secret.txt",
        "../secret.charter",
        "sub/../../secret.charter",
        "./../secret.charter",
        "sub/../../pol/../secret.charter",
        "/etc/passwd",
        "/dev/zero",
        "/dev/urandom",
        "/proc/self/environ",
        "//etc//passwd",
    ]


@pytest.mark.parametrize("n", range(12))
def test_an_include_outside_the_root_is_refused_and_never_read(tree: Path, n: int) -> None:
    path = _escapes(tree.parent)[n]
    t0 = time.perf_counter()
    codes, text = _compile(tree, path)
    assert time.perf_counter() - t0 < 5, "refused without reading (no /dev/zero growth)"
    assert codes == ["E208"], (path, codes)
    assert SECRET not in text and "root:x" not in text


def test_a_symlink_inside_the_root_pointing_outside_is_refused(tree: Path) -> None:
    (tree / "link.charter").symlink_to(tree.parent / "secret.charter")
    codes, text = _compile(tree, "link.charter")
    assert "E208" in codes and SECRET not in text


def test_a_symlinked_directory_escaping_the_root_is_refused(tree: Path) -> None:
    (tree / "escape").symlink_to(tree.parent)
    codes, text = _compile(tree, "escape/secret.charter")
    assert codes == ["E208"] and SECRET not in text


def test_a_symlink_to_a_device_inside_the_root_is_refused(tree: Path) -> None:
    (tree / "zero.part").symlink_to("/dev/zero")
    codes, _ = _compile(tree, "zero.part")
    assert codes == ["E208"]


def test_a_symlink_inside_the_root_is_followed(tree: Path) -> None:
    (tree / "sub" / "real.part").write_text("tool kb.write { category write }\n")
    (tree / "alias.part").symlink_to(tree / "sub" / "real.part")
    codes, _ = _compile(tree, "alias.part")
    assert codes == []


def test_a_symlink_loop_is_a_diagnostic(tree: Path) -> None:
    (tree / "a.part").symlink_to(tree / "b.part")
    (tree / "b.part").symlink_to(tree / "a.part")
    codes, text = _compile(tree, "a.part")
    assert codes == ["E001"] and "symlink loop" in text


def test_a_symlink_loop_named_charter_in_the_directory_fails_closed(tree: Path) -> None:
    (tree / "loop.charter").symlink_to(tree / "loop.charter")
    res = check([tree])
    assert res.policy is None and [d.code.value for d in res.errors] == ["E001"]


def test_a_dangling_policy_file_fails_closed(tree: Path) -> None:
    """A forbid file that vanished must not leave the rest of the policy in force."""
    (tree / "forbid.charter").symlink_to(tree / "gone.charter")
    res = check([tree])
    assert res.policy is None
    assert [d.code.value for d in res.errors] == ["E204"]
    assert "dangling symlink" in res.errors[0].message


def test_a_fifo_is_refused_without_blocking(tree: Path) -> None:
    fifo = tree / "pipe.charter"
    os.mkfifo(fifo)
    done: list[object] = []
    worker = threading.Thread(target=lambda: done.append(check([tree])), daemon=True)
    worker.start()
    worker.join(10)
    assert done, "a FIFO in the policy directory blocked the compiler"
    res = done[0]
    assert res.policy is None and "E001" in [d.code.value for d in res.errors]  # type: ignore[attr-defined]
    codes, _ = _compile(tree, "sub/../pipe.charter")
    assert "E001" in codes


def test_a_sparse_huge_file_is_refused_without_reading_it(tree: Path) -> None:
    big = tree / "sub" / "big.part"
    with big.open("wb") as f:
        f.truncate(8 * 1024**3)  # 8 GiB of holes
    t0 = time.perf_counter()
    codes, _ = _compile(tree, "sub/big.part")
    assert codes == ["E003"] and time.perf_counter() - t0 < 5


def test_read_bounded_streams_at_most_the_limit(tmp_path: Path) -> None:
    from charter.files import FileError, FileProblem, read_bounded

    f = tmp_path / "f"
    f.write_bytes(b"x" * 101)
    assert read_bounded(f, 101) == b"x" * 101
    with pytest.raises(FileError) as exc:
        read_bounded(f, 100)
    assert exc.value.problem is FileProblem.TOO_LARGE
    for dev in ("/dev/zero", "/dev/null", "/dev/urandom"):
        with pytest.raises(FileError) as exc:
            read_bounded(Path(dev), 10)
        assert exc.value.problem is FileProblem.NOT_A_FILE
    with pytest.raises(FileError) as exc:
        read_bounded(tmp_path, 10)
    assert exc.value.problem is FileProblem.NOT_A_FILE


def test_parse_file_of_a_device_is_a_diagnostic() -> None:
    t0 = time.perf_counter()
    res = parse_file("/dev/zero")
    assert res.module is None and [d.code.value for d in res.diagnostics] == ["E001"]
    assert time.perf_counter() - t0 < 2 and MAX_FILE_BYTES > 0


def test_resolve_confines(tmp_path: Path) -> None:
    from charter.files import FileError, resolve

    root = (tmp_path / "r").resolve()
    root.mkdir()
    (root / "ok").write_text("x")
    assert resolve(root / "ok", root) == root / "ok"
    for bad in (root / ".." / "r" / ".." / "x", Path("/etc/passwd")):
        with pytest.raises(FileError):
            resolve(bad, root)


@pytest.mark.parametrize("target", ["/etc/passwd", "../secret.txt", "/dev/zero"])
def test_an_inventory_outside_the_root_is_refused(tree: Path, target: str) -> None:
    (tree / "main.charter").write_text(BASE + f'agents from "{target}"\n')
    res = check([tree])
    assert [d.code.value for d in res.errors] == ["E208"]
    assert all(SECRET not in d.message and "root:x" not in d.message for d in res.diagnostics)


def test_an_inventory_alias_bomb_is_refused_quickly(tree: Path) -> None:
    bomb = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    (tree / "agents.yaml").write_text(bomb)
    (tree / "main.charter").write_text(BASE + 'agents from "agents.yaml"\n')
    t0 = time.perf_counter()
    res = check([tree])
    assert time.perf_counter() - t0 < 5
    assert [d.code.value for d in res.errors] == ["E205"] and "alias" in res.errors[0].message


def test_an_inventory_nested_deep_is_refused(tree: Path) -> None:
    (tree / "agents.yaml").write_text("agents: " + "[" * 5000 + "]" * 5000 + "\n")
    (tree / "main.charter").write_text(BASE + 'agents from "agents.yaml"\n')
    res = check([tree])
    assert [d.code.value for d in res.errors] == ["E205"]


def test_the_editor_overlay_cannot_include_outside_the_root(tree: Path) -> None:
    """An unsaved buffer goes through the same resolver (the LSP's compile path)."""
    main = (tree / "main.charter").resolve()
    overlay = {main: BASE + 'include "../secret.charter"\n'}
    cache = CompileCache()
    for _ in range(2):  # cold and warm cache
        cache.begin()
        loaded = load([tree], overlay=overlay, cache=cache)
        cache.end()
        assert [d.code.value for d in loaded.diagnostics] == ["E208"]
        assert all(SECRET not in s for s in loaded.sources.values())


def test_an_overlay_outside_the_root_is_not_read_as_part_of_it(tree: Path) -> None:
    outside = (tree.parent / "secret.charter").resolve()
    loaded = load([tree], overlay={outside: "policy x\n"})
    assert all("secret" not in s for s in loaded.sources)


def test_cli_check_never_echoes_an_outside_file(tree: Path) -> None:
    (tree / "main.charter").write_text(BASE + f'include "{tree.parent / "secret.txt"}"\n')
    r = CliRunner().invoke(cli, ["check", str(tree)])
    assert r.exit_code == 2 and "E208" in r.output
    assert (SECRET not in r.output and "Traceback" not in r.output and r.exception is None) or isinstance(
        r.exception, SystemExit
    )


def test_cli_fmt_refuses_a_fifo_and_a_dangling_file(tree: Path) -> None:
    os.mkfifo(tree / "pipe.charter")
    (tree / "gone.charter").symlink_to(tree / "nowhere.charter")
    box: list[object] = []
    worker = threading.Thread(
        target=lambda: box.append(CliRunner().invoke(cli, ["fmt", "--check", str(tree)])), daemon=True
    )
    worker.start()
    worker.join(10)
    assert box, "charter fmt blocked on a FIFO"
    r = box[0]
    assert r.exit_code == 2, r.output  # type: ignore[attr-defined]
    assert "Traceback" not in r.output  # type: ignore[attr-defined]


SEGMENTS = st.sampled_from(["..", ".", "sub", "pol", "secret.charter", "secret.txt", "main.charter", ""])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(SEGMENTS, min_size=1, max_size=6), absolute=st.booleans())
def test_no_include_path_reads_outside_the_root(tree: Path, parts: list[str], absolute: bool) -> None:
    path = "/".join(parts)
    if absolute:
        path = str(tree) + "/" + path
    codes, text = _compile(tree, path)
    assert SECRET not in text and "root:x" not in text
    assert set(codes) <= {"E208", "E204", "E001", "E203", "E006", "E202", "E101", "E206"}, codes
