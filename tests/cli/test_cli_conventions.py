"""CLI conventions: stdin for check and fmt, completion scripts, the SQLite default store, fmt -w's
report, and docs/cli.md generated from the click commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from charter.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
GOOD = "policy p\n\ntool t.read {\n  category read\n}\n\npermit read {\n  action call t.read\n}\n"


def run(*args: str, input: str | bytes | None = None) -> tuple[int, str, str]:
    res = CliRunner().invoke(cli, ["--color", "never", *args], input=input)
    return res.exit_code, res.stdout, res.stderr


def test_fmt_stdin_writes_the_formatted_text_to_stdout() -> None:
    code, out, err = run("fmt", "-", input="policy   p\n\n\n\ntool t.read {\n category read\n}\n")
    assert code == 0, err
    assert out.startswith("policy p\n")
    assert "\n\n\n" not in out
    again, out2, _ = run("fmt", "-", input=out)
    assert again == 0 and out2 == out  # idempotent


def test_fmt_stdin_parse_error_exits_2_with_stdin_as_file() -> None:
    code, out, err = run("fmt", "-", input="policy p\npermit\n")
    assert code == 2
    assert out == ""
    assert "<stdin>:" in err


def test_fmt_stdin_refuses_other_paths_and_write() -> None:
    assert run("fmt", "-", "policies/")[0] == 2
    assert run("fmt", "-w", "-", input=GOOD)[0] == 2


def test_check_stdin_reports_diagnostics_against_stdin() -> None:
    code, out, err = run("check", "-", input=GOOD)
    assert code == 0, out + err
    bad = "policy p\npermit x {\n  action call nope.tool\n}\n"
    code, out, err = run("check", "--format", "json", "-", input=bad)
    assert code == 2
    assert '"<stdin>"' in out
    code, out, _ = run("check", "-", input=bad)
    assert "<stdin>:3:" in out


def test_check_stdin_cannot_be_mixed_with_paths() -> None:
    assert run("check", "-", "policies/", input=GOOD)[0] == 2


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_click_script(shell: str) -> None:
    code, out, _ = run("completion", shell)
    assert code == 0
    assert "_CHARTER_COMPLETE" in out
    assert f"{shell}_complete" in out


def test_completion_unknown_shell_is_a_usage_error() -> None:
    assert run("completion", "powershell")[0] == 2


def test_completion_candidates_come_from_the_commands() -> None:
    env = {"COMP_WORDS": "charter fm", "COMP_CWORD": "1", "_CHARTER_COMPLETE": "bash_complete"}
    res = subprocess.run(
        [sys.executable, "-c", "from charter.cli.main import main; main()"],
        env={**__import__("os").environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "plain,fmt" in res.stdout


def test_eval_and_serve_default_to_sqlite_under_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from charter.cli.stores import DEFAULT_STORE
    from charter.server.cli import serve_cmd

    assert DEFAULT_STORE == "sqlite:///./.charter/state.db"
    store_opt = next(p for p in serve_cmd.params if p.name == "store_url")
    assert store_opt.default == DEFAULT_STORE
    monkeypatch.delenv("CHARTER_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.charter").write_text(GOOD)
    (tmp_path / "r.json").write_text('{"actor": {"id": "a"}, "action": {"target": "t.read", "args": {}}}')
    code, out, err = run("eval", "p.charter", "--request", "r.json")
    assert code == 0, out + err
    assert (tmp_path / ".charter" / "state.db").is_file()
    assert "ALLOW" in out


def test_memory_store_is_still_selectable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.charter").write_text(GOOD)
    (tmp_path / "r.json").write_text('{"actor": {"id": "a"}, "action": {"target": "t.read", "args": {}}}')
    code, out, err = run("eval", "p.charter", "--request", "r.json", "--store", "memory://")
    assert code == 0, out + err
    assert not (tmp_path / ".charter").exists()


def test_fmt_write_names_rewritten_files_and_counts_unchanged(tmp_path: Path) -> None:
    (tmp_path / "a.charter").write_text("policy   a\n")
    (tmp_path / "b.charter").write_text("policy b\n")
    (tmp_path / "c.charter").write_text("policy c\n")
    code, _, err = run("fmt", "-w", str(tmp_path))
    assert code == 0, err
    assert f"reformatted {tmp_path / 'a.charter'}" in err
    assert "1 file reformatted, 2 files unchanged" in err
    code, _, err = run("fmt", "-w", str(tmp_path))
    assert "0 files reformatted" not in err and "3 files unchanged" in err


def _all_commands(group: click.Group, ctx: click.Context, prefix: str) -> list[tuple[str, click.Command]]:
    out = []
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None
        out.append((f"{prefix} {name}", cmd))
        if isinstance(cmd, click.Group):
            out += _all_commands(cmd, ctx, f"{prefix} {name}")
    return out


def test_cli_reference_covers_every_command_and_option() -> None:
    doc = (ROOT / "docs" / "cli.md").read_text("utf-8")
    with click.Context(cli, info_name="charter") as ctx:
        commands = _all_commands(cli, ctx, "charter")
    assert len(commands) > 15
    for name, cmd in commands:
        section = doc.split(f"### `{name}`\n", 1)
        assert len(section) == 2, f"docs/cli.md has no section for {name}"
        body = section[1].split("\n### ", 1)[0]
        for p in cmd.params:
            if isinstance(p, click.Option) and not p.hidden:
                assert f"`{p.opts[0]}`" in body, f"{name}: {p.opts[0]} undocumented"


def test_cli_reference_is_not_stale() -> None:
    res = subprocess.run(
        [sys.executable, "scripts/gen_cli_docs.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr + " (run: python scripts/gen_cli_docs.py)"
