"""Attacks on the documents the CLI reads (issue 15, item 6; charter.documents).

Invariants attacked: every request, test file, replay export, tokens file and checkpoint goes
through one bounded reader; a document too large, nested too deep or using YAML aliases (an alias
bomb) is refused quickly with exit status 2 and a one-line message: never a RecursionError, a
traceback or a hang.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.cli.main import cli
from charter.documents import (
    MAX_DOCUMENT_BYTES,
    MAX_DOCUMENT_DEPTH,
    DocumentError,
    load_document,
    parse_document,
)
from charter.server.auth import TokenError, load_tokens

POLICY = 'policy p\ntool t { }\npermit r { action call t reason "r" }\n'
BOMB = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


def _deep_json(depth: int, dicts: bool = False) -> str:
    return ('{"k":' * depth + "1" + "}" * depth) if dicts else ("[" * depth + "]" * depth)


def _deep_yaml_block(depth: int) -> str:
    return "".join("  " * i + f"k{i}:\n" for i in range(depth)) + "  " * depth + "v\n"


HOSTILE: dict[str, str] = {
    "json nested 1,000": _deep_json(1000),
    "json nested 100,000": _deep_json(100_000),
    "json objects nested 1,000": _deep_json(1000, dicts=True),
    "json one past the depth": _deep_json(MAX_DOCUMENT_DEPTH + 1),
    "yaml flow nested 1,000": "a: " + "[" * 1000 + "]" * 1000,
    "yaml block nested 200": _deep_yaml_block(200),
    "yaml alias bomb": BOMB,
    "yaml one alias": "a: &x 1\nb: *x\n",
    "yaml merge key alias": "base: &b {x: 1}\nreq:\n  <<: *b\n",
    "yaml python object": "!!python/object/apply:os.system ['true']\n",
    "over the size limit": '{"a": "' + "x" * (MAX_DOCUMENT_BYTES + 1) + '"}',
    "not json nor yaml": "{{{{: : :",
    "binary": "\x00\x01\x02",
}


def _run(args: list[str], stdin: str | None = None, timeout: float = 20.0) -> Result:
    box: list[Result] = []
    worker = threading.Thread(
        target=lambda: box.append(CliRunner().invoke(cli, args, input=stdin)), daemon=True
    )
    worker.start()
    worker.join(timeout)
    assert box, f"charter {' '.join(args[:2])} hung for {timeout}s"
    return box[0]


def _refused(r: Result) -> None:
    assert r.exit_code == 2, (r.exit_code, r.output[-500:])
    assert "Traceback" not in r.output and "RecursionError" not in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    p = tmp_path / "p.charter"
    p.write_text(POLICY)
    return p


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_eval_refuses_a_hostile_request_file(tmp_path: Path, policy: Path, name: str) -> None:
    req = tmp_path / "req.json"
    req.write_text(HOSTILE[name])
    t0 = time.perf_counter()
    _refused(_run(["eval", str(policy), "--request", str(req)]))
    assert time.perf_counter() - t0 < 10


@pytest.mark.parametrize("name", ["json nested 100,000", "yaml alias bomb", "over the size limit"])
def test_eval_refuses_a_hostile_request_on_stdin(policy: Path, name: str) -> None:
    _refused(_run(["eval", str(policy), "--request", "-"], stdin=HOSTILE[name]))


@pytest.mark.parametrize("special", ["/dev/zero", "/dev/urandom", "fifo", "directory", "missing"])
def test_eval_refuses_a_request_that_is_not_a_file(tmp_path: Path, policy: Path, special: str) -> None:
    if special == "fifo":
        path = tmp_path / "fifo"
        os.mkfifo(path)
    elif special == "directory":
        path = tmp_path
    elif special == "missing":
        path = tmp_path / "nope.json"
    else:
        path = Path(special)
    _refused(_run(["eval", str(policy), "--request", str(path)]))


def test_eval_still_reads_a_good_request(tmp_path: Path, policy: Path) -> None:
    req = tmp_path / "r.yaml"
    req.write_text("actor: {id: a}\naction: {target: t}\n")
    r = _run(["eval", str(policy), "--request", str(req), "--format", "json"])
    assert r.exit_code == 0 and json.loads(r.output)["outcome"] == "allow"


@pytest.mark.parametrize("name", ["yaml alias bomb", "yaml block nested 200", "json nested 1,000"])
def test_charter_test_refuses_a_hostile_test_file(tmp_path: Path, policy: Path, name: str) -> None:
    t = tmp_path / "p_test.yaml"
    t.write_text(HOSTILE[name])
    r = _run(["test", str(t)])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output


@pytest.mark.parametrize("line", [_deep_json(100_000), '{"body": "' + "[" * 5000 + '"}', "[" * 70 + "]" * 70])
def test_replay_refuses_a_hostile_jsonl_export(tmp_path: Path, policy: Path, line: str) -> None:
    export = tmp_path / "trace.jsonl"
    export.write_text(line + "\n")
    r = _run(["replay", str(policy), "--trace", str(export)])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and "RecursionError" not in r.output


@pytest.mark.parametrize("name", ["yaml alias bomb", "json nested 100,000", "over the size limit"])
def test_a_hostile_checkpoint_file_is_refused(tmp_path: Path, name: str) -> None:
    cp = tmp_path / "cp.json"
    cp.write_text(HOSTILE[name])
    r = _run(["trace", "verify", "--trace", str(tmp_path / "t.db"), "--checkpoint", str(cp)])
    assert r.exit_code == 2 and "Traceback" not in r.output


@pytest.mark.parametrize("name", ["yaml alias bomb", "json nested 100,000", "yaml python object"])
def test_a_hostile_tokens_file_is_refused(tmp_path: Path, name: str) -> None:
    f = tmp_path / "tokens.yaml"
    f.write_text(HOSTILE[name])
    t0 = time.perf_counter()
    with pytest.raises(TokenError):
        load_tokens(f)
    assert time.perf_counter() - t0 < 5


def test_a_tokens_file_that_is_a_device_is_refused() -> None:
    with pytest.raises(TokenError):
        load_tokens("/dev/zero")


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_the_reader_refuses_with_a_document_error(name: str) -> None:
    t0 = time.perf_counter()
    with pytest.raises(DocumentError):
        parse_document(HOSTILE[name])
    assert time.perf_counter() - t0 < 5


def test_the_depth_limit_is_exact() -> None:
    assert parse_document(_deep_json(MAX_DOCUMENT_DEPTH)) is not None
    with pytest.raises(DocumentError):
        parse_document(_deep_json(MAX_DOCUMENT_DEPTH + 1))
    yaml_ok = "a: " + "[" * (MAX_DOCUMENT_DEPTH - 1) + "]" * (MAX_DOCUMENT_DEPTH - 1)
    assert parse_document(yaml_ok) is not None


def test_brackets_inside_strings_do_not_count() -> None:
    assert parse_document(json.dumps({"s": "[" * 5000})) == {"s": "[" * 5000}


def test_a_file_growing_past_the_limit_is_cut(tmp_path: Path) -> None:
    f = tmp_path / "big.json"
    f.write_text(" " * (MAX_DOCUMENT_BYTES + 10) + "{}")
    with pytest.raises(DocumentError):
        load_document(f)


def _nest(leaf: Any, kinds: list[bool]) -> Any:
    for is_dict in kinds:
        leaf = {"k": leaf} if is_dict else [leaf]
    return leaf


@settings(max_examples=80, deadline=None)
@given(kinds=st.lists(st.booleans(), min_size=0, max_size=150), as_yaml=st.booleans())
def test_any_nesting_is_data_or_a_document_error(kinds: list[bool], as_yaml: bool) -> None:
    import yaml

    doc = _nest(1, kinds)
    text = yaml.safe_dump(doc) if as_yaml else json.dumps(doc)
    try:
        assert parse_document(text) == doc
        assert len(kinds) <= MAX_DOCUMENT_DEPTH
    except DocumentError:
        assert len(kinds) > MAX_DOCUMENT_DEPTH - 1


@settings(max_examples=80, deadline=None)
@given(text=st.text(alphabet="[]{}:&*!- ,\n\"'ax1", max_size=400))
def test_any_text_is_data_or_a_document_error(text: str) -> None:
    with contextlib.suppress(DocumentError):
        parse_document(text)
