"""The core install: the wheel in a fresh venv with no extras checks and decides, and each extra's
module fails with an error naming the extra (pyproject.toml's packaging contract)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.packaging, pytest.mark.timeout(900)]

#: Distributions that only extras may bring (a core install that has one of them is a regression).
NOT_CORE = {
    "redis",
    "hiredis",
    "psycopg",
    "psycopg-binary",
    "rich",
    "starlette",
    "uvicorn",
    "httpx",
    "greenlet",
    "mcp",
    "pygls",
    "lsprotocol",
    "opentelemetry-api",
    "opentelemetry-sdk",
    "langgraph",
    "openai-agents",
    "mkdocs",
}

#: module -> the extra its error must name.
EXTRA_MODULES = {
    "charter.server.app": "server",
    "charter.state.redis_store": "redis",
    "charter.state.postgres": "postgres",
    "charter.trace.pg_sink": "postgres",
    "charter.lsp.server": "lsp",
    "charter.demo.render": "demo",
    "charter.integrations.gateway": "mcp",
    "charter.integrations.langgraph": "langgraph",
    "charter.integrations.openai_agents": "openai-agents",
    "charter.integrations.ag2": "ag2",
    "charter.integrations.crewai": "crewai",
}


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, **kw)  # type: ignore[call-overload, no-any-return]


@pytest.fixture(scope="module")
def core_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the charter wheel and its core dependencies only."""
    tmp = tmp_path_factory.mktemp("core")
    env_dir = tmp / "venv"
    try:
        venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    except Exception as exc:  # no ensurepip, read-only tmp ...: the packaging test cannot run here
        pytest.skip(f"cannot create a venv with pip here ({type(exc).__name__}: {exc})")
    py = env_dir / "bin" / "python"
    if not py.exists():
        pytest.skip("the venv has no bin/python (not a POSIX layout)")
    wheels = tmp / "dist"
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)])
    assert built.returncode == 0, built.stderr
    assert "deprecat" not in built.stderr.lower(), built.stderr  # PEP 639 license: no setuptools warning
    (wheel,) = wheels.glob("charter-*.whl")
    installed = _run([str(py), "-m", "pip", "install", "-q", str(wheel)])
    if installed.returncode != 0 and "Could not find a version" in installed.stderr:
        pytest.skip(f"the core dependencies cannot be fetched here: {installed.stderr[-300:]}")
    assert installed.returncode == 0, installed.stderr
    return env_dir


def test_core_install_has_no_extra(core_venv: Path) -> None:
    out = _run([str(core_venv / "bin" / "python"), "-m", "pip", "list", "--format", "json"])
    names = {d["name"].lower() for d in json.loads(out.stdout)}
    assert "charter" in names
    assert not names & NOT_CORE, sorted(names & NOT_CORE)


def test_core_install_checks_and_decides(core_venv: Path, tmp_path: Path) -> None:
    charter = str(core_venv / "bin" / "charter")
    checked = _run([charter, "check", "--strict", "policies/"], cwd=ROOT)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "0 errors" in checked.stderr + checked.stdout
    req = tmp_path / "req.json"
    req.write_text(
        json.dumps(
            {
                "actor": {"id": "payments-agent"},
                "action": {"target": "payments.transfer", "args": {"amount": 12000.0}},
            }
        )
    )
    decided = _run(
        [
            charter,
            "eval",
            str(ROOT / "policies"),
            "--request",
            str(req),
            "--format",
            "json",
            "--store",
            "memory://",
        ]
    )
    assert decided.returncode == 0, decided.stderr
    assert json.loads(decided.stdout)["outcome"] in {"allow", "deny", "require_approval", "escalate", "halt"}
    formatted = _run([charter, "fmt", "--check", "policies/"], cwd=ROOT)
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
    tested = _run([charter, "test", "policies/"], cwd=ROOT)
    assert tested.returncode == 0, tested.stdout + tested.stderr


@pytest.mark.parametrize("module", sorted(EXTRA_MODULES))
def test_extra_modules_name_their_extra(core_venv: Path, module: str) -> None:
    extra = EXTRA_MODULES[module]
    res = _run([str(core_venv / "bin" / "python"), "-c", f"import {module}"])
    assert res.returncode != 0
    assert f"pip install 'charter[{extra}]'" in res.stderr, res.stderr[-2000:]
    assert "MissingExtra" in res.stderr


def test_serve_without_the_extra_says_which(core_venv: Path) -> None:
    res = _run([str(core_venv / "bin" / "charter"), "serve", "policies/", "--no-auth"], cwd=ROOT)
    assert res.returncode == 2
    assert "pip install 'charter[server]'" in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize(
    ("code", "extra"),
    [
        ("from charter.export import OtlpLogsSink; OtlpLogsSink('http://127.0.0.1:1/v1/logs')", "otel"),
        ("import charter as c, charter.telemetry as t; t.instrument(c.Engine(c.load('policies')))", "otel"),
        ("from charter.state import open_store; open_store('redis://127.0.0.1:1/0')", "redis"),
        ("from charter.state import open_store; open_store('postgresql://x@127.0.0.1:1/db')", "postgres"),
    ],
)  # fmt: skip
def test_optional_features_name_their_extra(core_venv: Path, code: str, extra: str) -> None:
    res = _run([str(core_venv / "bin" / "python"), "-c", code], cwd=ROOT)
    assert res.returncode != 0
    assert f"pip install 'charter[{extra}]'" in res.stderr, res.stderr[-2000:]


def test_the_jsonl_export_works_in_the_core_install(core_venv: Path) -> None:
    code = (
        "import charter; from charter.export import Exporter, JsonlHttpSink; "
        "p = charter.load('policies'); e = Exporter(JsonlHttpSink('http://127.0.0.1:9/'), p, retries=0); "
        "e.close(); print('ok')"
    )
    res = _run([str(core_venv / "bin" / "python"), "-c", code], cwd=ROOT)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr
