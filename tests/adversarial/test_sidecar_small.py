"""The smaller attacks of issue 15, items 3, 11 and 13.

Invariants attacked:
- a tokens file in which one token names two callers does not load (the sidecar does not start);
- no response of the sidecar carries a ``Location`` built from the request's ``Host`` header (real HTTP);
- ``/readyz`` answers 503 while the state store is corrupt (real HTTP, SQLite store);
- the policy ``revision`` hashes content and root-relative paths only: the same from any working
  directory, by absolute or relative path;
- ``charter trace explain`` of any record id (an approval's, an event record's, garbage) never
  prints a traceback.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.server.conftest import secret
from tests.server.procs import Serve, tokens_file

import charter
from charter.cli.main import cli
from charter.server.auth import TokenError, TokenSet, hash_token, load_tokens
from charter.trace import TraceLog

POLICY = 'policy p\ntool t { }\npermit r { action call t reason "r" }\n'


# ---- item 11: tokens -------------------------------------------------------------------------


def _doc(*entries: tuple[str, str, str]) -> dict[str, object]:
    return {"tokens": [{"name": n, "role": r, "token": t} for n, r, t in entries]}


@pytest.mark.parametrize(
    "doc",
    [
        _doc(("orch", "orchestrator", "x" * 32), ("ops", "operator", "x" * 32)),
        _doc(
            ("orch", "orchestrator", "x" * 32), ("alice", "approver", "y" * 32), ("bob", "approver", "x" * 32)
        ),
        {
            "tokens": [
                {"name": "a", "role": "approver", "sha256": hash_token("z" * 32)},
                {"name": "b", "role": "approver", "token": "z" * 32},
            ]
        },
        {
            "tokens": [
                {"name": "a", "role": "approver", "sha256": hash_token("z" * 32).upper()},
                {"name": "b", "role": "operator", "sha256": hash_token("z" * 32)},
            ]
        },
    ],
)
def test_one_token_for_two_callers_is_refused(doc: dict[str, object]) -> None:
    with pytest.raises(TokenError, match="one token names one caller"):
        TokenSet.parse(doc, "tokens.json")


def test_distinct_tokens_still_load(tmp_path: Path) -> None:
    f = tmp_path / "t.json"
    f.write_text(json.dumps(_doc(("a", "approver", "a" * 32), ("b", "approver", "b" * 32))))
    tokens = load_tokens(f)
    assert tokens.lookup("a" * 32).name == "a" and tokens.lookup("b" * 32).name == "b"  # type: ignore[union-attr]


def test_the_sidecar_does_not_start_with_a_shared_token(tmp_path: Path) -> None:
    (tmp_path / "p.charter").write_text(POLICY)
    f = tmp_path / "tokens.json"
    f.write_text(json.dumps(_doc(("orch", "orchestrator", "s" * 32), ("alice", "approver", "s" * 32))))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "charter",
            "serve",
            str(tmp_path / "p.charter"),
            "--tokens",
            str(f),
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode != 0 and "one token names one caller" in r.stderr + r.stdout
    assert "Traceback" not in r.stderr


# ---- item 11: redirects and readiness over real HTTP ----------------------------------------


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Serve, Path]]:
    tmp = tmp_path_factory.mktemp("small")
    (tmp / "p.charter").write_text(POLICY)
    db = tmp / "state.db"
    proc = Serve(tmp / "p.charter", f"sqlite://{db}", tmp, tokens=tokens_file(tmp / "tokens.json"))
    try:
        proc.wait_ready()
        yield proc, db
    finally:
        proc.stop()


def _get(proc: Serve, path: str, host: str = "evil.example", method: str = "GET") -> http.client.HTTPResponse:
    c = http.client.HTTPConnection("127.0.0.1", proc.port, timeout=10)
    c.request(
        method,
        path,
        headers={"Host": host, "Authorization": f"Bearer {secret('orch')}"},
        body=b"{}" if method == "POST" else None,
    )
    return c.getresponse()


@pytest.mark.parametrize(
    "path",
    [
        "/readyz/",
        "/livez/",
        "/v1/decide/",
        "/v1/approvals/",
        "/ui",
        "/ui/",
        "/ui/approvals",
        "/ui/login/",
        "//evil.example/",
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_no_location_reflects_the_host_header(sidecar: tuple[Serve, Path], path: str, method: str) -> None:
    r = _get(sidecar[0], path, method=method)
    r.read()
    location = r.getheader("Location")
    assert r.status < 500
    assert location is None or (location.startswith("/") and not location.startswith("//")), location
    assert "evil.example" not in (location or "")


def test_readyz_reports_a_corrupt_store(sidecar: tuple[Serve, Path]) -> None:
    proc, db = sidecar
    assert _get(proc, "/readyz", host="127.0.0.1").status == 200
    files = [p for p in (db, db.with_name(db.name + "-wal")) if p.exists()]
    originals = {p: p.read_bytes() for p in files}
    try:
        for p in files:  # garbage over every page of the file and its write-ahead log
            with p.open("r+b") as f:
                f.write(os.urandom(max(p.stat().st_size, 8192)))
        r = _get(proc, "/readyz", host="127.0.0.1")
        body = json.loads(r.read())
        assert r.status == 503 and body["checks"]["store"] is False, body
    finally:
        for p, data in originals.items():
            p.write_bytes(data)


# ---- item 13: revision -----------------------------------------------------------------------


def _revision(cwd: Path, target: str) -> str:
    r = subprocess.run(
        [sys.executable, "-c", "import sys, charter; print(charter.load(sys.argv[1]).revision)", target],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(charter.__file__).parents[1])},
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    root = tmp_path / "repo" / "policies"
    (root / "sub").mkdir(parents=True)
    (root / "main.charter").write_text(
        'policy p\ninclude "sub/tools.charter"\npermit r { action call t reason "r" }\n'
    )
    (root / "sub" / "tools.charter").write_text("tool t { }\n")
    (tmp_path / "elsewhere" / "deep").mkdir(parents=True)
    return root


def test_the_revision_is_the_same_from_any_working_directory(policies: Path) -> None:
    repo = policies.parent
    seen = {
        _revision(repo, "policies"),
        _revision(repo, "policies/"),
        _revision(repo, "./policies/../policies"),
        _revision(policies, "."),
        _revision(policies / "sub", ".."),
        _revision(repo.parent / "elsewhere" / "deep", str(policies)),
        _revision(Path("/"), str(policies)),
    }
    assert len(seen) == 1, seen


def test_the_revision_of_a_file_is_the_same_from_any_working_directory(policies: Path) -> None:
    main = policies / "main.charter"
    seen = {
        _revision(policies, "main.charter"),
        _revision(policies.parent, "policies/main.charter"),
        _revision(Path("/"), str(main)),
    }
    assert len(seen) == 1, seen


def test_the_revision_follows_content_and_relative_paths(policies: Path) -> None:
    before = charter.load(policies).revision
    (policies / "sub" / "tools.charter").write_text("tool t { }\n# edited\n")
    edited = charter.load(policies).revision
    assert edited != before
    (policies / "sub" / "tools.charter").rename(policies / "tools2.charter")
    (policies / "main.charter").write_text(
        (policies / "main.charter").read_text().replace("sub/tools.charter", "tools2.charter")
    )
    assert charter.load(policies).revision not in (before, edited)


def test_a_moved_policy_directory_keeps_its_revision(policies: Path, tmp_path: Path) -> None:
    before = charter.load(policies).revision
    moved = tmp_path / "moved" / "x"
    moved.parent.mkdir()
    policies.rename(moved)
    assert charter.load(moved).revision == before


# ---- item 3: trace explain of any id ---------------------------------------------------------

GATED = """
policy g
roles payer
group finance { members alice, bob }
agent payer-1 { role payer }
tool pay { arg amount: double }
permit pay { action call pay  reason "r" }
require approval big {
  action call pay
  when args.amount > 100.0
  approvers finance
  reason "big"
}
"""


def test_trace_explain_of_any_record_id_never_raises(tmp_path: Path) -> None:
    where = str(tmp_path / "trace.db")
    log = TraceLog(where)
    engine = charter.Engine(charter.loads(GATED), trace=log)
    d = engine.decide({"actor": {"id": "payer-1"}, "action": {"target": "pay", "args": {"amount": 500.0}}})
    approval = d.obligations.get("approval_id") if isinstance(d.obligations, dict) else None
    approval = approval or getattr(d.obligations, "approval_id", None)
    log.flush()
    ids = [d.id, "nope", "", "approval:", "settle::0", "'; DROP TABLE trace; --", "x" * 5000]
    if approval:
        ids.append(str(approval))
    ids += [r[0] for r in __import__("sqlite3").connect(where).execute("SELECT id FROM trace")]
    log.close()
    for rid in ids:
        for fmt in ("pretty", "json"):
            r = CliRunner().invoke(cli, ["trace", "explain", rid, "--trace", where, "--format", fmt])
            assert r.exit_code in (0, 1), (rid, r.output)
            assert r.exception is None or isinstance(r.exception, SystemExit), (rid, repr(r.exception))
