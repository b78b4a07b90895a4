"""CLI behaviour: exit codes, formats, error messages (no tracebacks)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from charter.cli.main import cli


def run(*args: str, input: str | None = None) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["--color", "never", *args], input=input)
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, res.output


def test_version() -> None:
    code, out = run("--version")
    assert code == 0 and out.startswith("charter, version ")


def test_check_clean_examples(root: Path) -> None:
    code, out = run("check", "--strict", str(root / "policies"))
    assert code == 0 and "0 errors, 0 warnings" in out


def test_check_errors_exit_2_and_json(tmp_path: Path) -> None:
    p = tmp_path / "bad.charter"
    p.write_text("roles a\npermit p { actor role b }\n")
    code, out = run("check", str(p))
    assert code == 2 and "E201 unknown role 'b'" in out
    code, out = run("check", "--format", "json", str(p))
    data = json.loads(out)
    assert code == 2 and data["errors"] == 1 and data["diagnostics"][0]["code"] == "E201"


def test_check_strict_warnings_exit_1(tmp_path: Path) -> None:
    p = tmp_path / "w.charter"
    p.write_text("tool t {}\npermit p { action call t }\n")
    assert run("check", str(p))[0] == 0
    code, out = run("check", "--strict", str(p))
    assert code == 1 and "W506" in out


def test_check_github_format(tmp_path: Path) -> None:
    p = tmp_path / "w.charter"
    p.write_text("tool t {}\npermit p { action call t }\n")
    code, out = run("check", "--format", "github", str(p))
    assert code == 0  # warnings only, no --strict
    assert out.startswith("::warning file=") and "title=W506 no-reason::" in out


def test_check_bad_inputs_never_traceback(tmp_path: Path) -> None:
    (tmp_path / "bin.charter").write_bytes(b"\x00\x01\x02")
    (tmp_path / "latin.charter").write_bytes(b"policy caf\xe9\n")
    (tmp_path / "deep.charter").write_text("permit p { when " + "(" * 10000 + "true" + ")" * 10000 + " }\n")
    (tmp_path / "big.charter").write_text("#" * (5 * 1024 * 1024))
    (tmp_path / "empty.charter").write_text("")
    code, out = run("check", str(tmp_path))
    assert code == 2
    assert "E002 this is a binary file, not a policy" in out
    assert "E002 invalid UTF-8 byte 0xe9" in out
    assert "E004 brackets nest more than 64 levels deep" in out
    assert "E003 file is 5,242,880 bytes; the limit is 4,194,304" in out
    empty = tmp_path / "only-empty"
    empty.mkdir()
    code, out = run("check", str(empty))
    assert code == 2 and "E005 no policy files (.charter) in directory" in out


def test_eval_explain_and_fail_on(root: Path, tmp_path: Path) -> None:
    req = tmp_path / "r.json"
    req.write_text(json.dumps({"actor": {"id": "research-agent"}, "action": {"target": "kb.write"}}))
    code, out = run("eval", str(root / "policies"), "--request", str(req), "--explain")
    assert code == 0 and out.startswith("DENY\n")
    assert "Research agents must never write the knowledge base." in out
    code, _ = run("eval", str(root / "policies"), "--request", str(req), "--fail-on", "not-allow")
    assert code == 1
    code, out = run(
        "eval",
        str(root / "policies"),
        "--request",
        "-",
        "--format",
        "json",
        input=json.dumps({"actor": {"id": "research-agent"}, "action": {"target": "kb.read"}}),
    )
    assert code == 0 and json.loads(out)["outcome"] == "allow"


def test_eval_malformed_request_names_field(root: Path) -> None:
    code, out = run(
        "eval",
        str(root / "policies"),
        "--request",
        "-",
        input=json.dumps({"actor": {"id": "x"}, "action": {}}),
    )
    assert code == 2 and "request field 'action.target': Field required" in out
    code, out = run("eval", str(root / "policies"), "--request", "-", input="{not json: [")
    assert code == 2 and "neither JSON nor YAML" in out
