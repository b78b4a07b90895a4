"""`python -m charter.demo` end to end: in-process on SQLite, and against a real `charter serve`."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEY_LINES = [
    "1. Agents get to work",
    "2. A spend limit bites",
    "budget agent-daily-paid-apis: 28 used + 30 asked > 50 USD",
    "NEEDS APPROVAL",
    "approves",
    "(2 of 2)",
    "was already used",
    "ESCALATE",
    "compliance-officers (60 min) -> head-of-risk (240 min) -> finally deny",
    "same-call-loop",
    "HALT",
    "stop:workflow:wf-inv-2026-117",
    "resumed: True (2 of 2 operators)",
    "charter trace explain",
    "by alice, bob",
    "Demo complete: every step decided as scripted",
]
HUMANS = {
    "orchestrator-1": "orchestrator",
    "alice": "approver",
    "bob": "approver",
    "olga": "operator",
    "peter": "operator",
}


def _flat(text: str) -> str:
    """Output with every run of whitespace as one space (the terminal wraps long lines)."""
    return re.sub(r"\s+", " ", text)


def _run(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "charter.demo", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_demo_in_process(tmp_path: Path) -> None:
    t0 = time.monotonic()
    p = _run("--dir", str(tmp_path / "demo"), cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert time.monotonic() - t0 < 30
    flat = _flat(p.stdout)
    for line in KEY_LINES:
        assert line in flat, line
    assert "OK: " in p.stdout and "chain intact" in p.stdout
    assert "\x1b[" not in p.stdout  # piped + NO_COLOR: plain text
    assert "d-demo-0009" in p.stdout  # fixed decision ids
    assert (tmp_path / "demo" / "trace.db").exists()
    # the trace the demo left behind explains itself with the real CLI too
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "charter",
            "trace",
            "explain",
            "d-demo-0009",
            "--trace",
            str(tmp_path / "demo" / "trace.db"),
        ],
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 0 and "alice, through the Python API, approved it" in cli.stdout, (
        cli.stdout + cli.stderr
    )


def test_demo_is_deterministic_apart_from_gate_ids(tmp_path: Path) -> None:
    outs = []
    for i in range(2):
        p = _run("--dir", str(tmp_path / f"d{i}"), cwd=tmp_path)
        assert p.returncode == 0
        text = re.sub(r"\b(ap|es)-[0-9a-f]{16}\b", r"\1-X", p.stdout.replace(str(tmp_path / f"d{i}"), "DIR"))
        outs.append(_flat(text))
    assert outs[0] == outs[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _secret(name: str) -> str:
    return f"demo-token-{name}-0123456789abcdef"


def test_demo_against_a_real_sidecar(tmp_path: Path) -> None:
    pytest.importorskip("uvicorn", reason="the sidecar needs the server extra (uvicorn)")
    from charter.server.auth import hash_token

    tokens = tmp_path / "tokens.json"
    tokens.write_text(
        json.dumps(
            {"tokens": [{"name": n, "role": r, "sha256": hash_token(_secret(n))} for n, r in HUMANS.items()]}
        ),
        "utf-8",
    )
    port = _free_port()
    trace = tmp_path / "trace.db"
    log = (tmp_path / "serve.log").open("wb")
    env = {k: v for k, v in os.environ.items() if k != "CHARTER_TOKENS"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "charter",
            "serve",
            str(ROOT / "policies"),
            "--store",
            f"sqlite:///{tmp_path / 'state.db'}",
            "--trace",
            str(trace),
            "--port",
            str(port),
            "--tokens",
            str(tokens),
            "--log-level",
            "warning",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
    )
    try:
        import http.client

        deadline = time.time() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            assert time.time() < deadline, "charter serve did not become ready"
            time.sleep(0.1)
        humans = [f"--human={n}={_secret(n)}" for n in ("alice", "bob", "olga", "peter")]
        p = _run(
            "--sidecar",
            f"http://127.0.0.1:{port}",
            "--token",
            _secret("orchestrator-1"),
            *humans,
            "--trace",
            str(trace),
            cwd=tmp_path,
        )
        assert p.returncode == 0, p.stdout + p.stderr
        flat = _flat(p.stdout)
        for line in KEY_LINES:
            assert line in flat, line
        assert "sidecar at http://127.0.0.1" in p.stdout
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
