"""Attacks on what a hostile policy file (or its name) can make charter print.

Invariants attacked: policy text holds no control, bidi-control or line-separator character (a
terminal escape in a reason would reach `charter eval`, the trace and every listing; a bidi
override makes a reviewer read other text than the compiler, "Trojan Source"): such a file is
refused with E002 at the character; no diagnostic writes a control character to the terminal
(not from the file's name, its text or a message quoting it); a GitHub annotation cannot be given
another file, line or title by a file's name; the JSON output stays valid JSON.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from charter.cli.main import cli
from charter.diagnostics import Code, Severity, Span, error, render, warning
from charter.syntax.parser import parse_text

GOOD = 'policy p\ntool t { }\npermit a {\n  actor any\n  action call t\n  reason "r"\n}\n'
#: what may never reach a terminal raw: C0/C1 controls but tab and newline, bidi controls, separators
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

HOSTILE = {
    "osc52-clipboard": "\x1b]52;c;ZXZpbA==\x07",
    "clear-screen": "\x1b[2J\x1b[H",
    "title": "\x1b]0;pwned\x07",
    "c1-csi": "\x9b31m",
    "backspace": "ok\x08\x08",
    "bell": "\x07",
    "rtl-override": "\u202e",
    "rtl-isolate": "\u2067",
    "line-separator": "\u2028",
}


def _run(*args: str) -> str:
    res = CliRunner().invoke(cli, ["--color", "never", *args])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.output
    return res.output


@pytest.mark.parametrize("where", ["reason", "comment", "name"])
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_control_character_anywhere_in_policy_text_is_refused(name: str, where: str) -> None:
    bad = HOSTILE[name]
    text = {
        "reason": GOOD.replace('reason "r"', f'reason "r{bad}"'),
        "comment": GOOD.replace("tool t { }", f"tool t {{ }}  # {bad}"),
        "name": GOOD.replace("permit a", f"permit a{bad}"),
    }[where]
    res = parse_text(text, "p.charter")
    assert res.module is None
    (diag,) = res.diagnostics
    assert diag.code is Code.E002_NOT_UTF8 and "control character U+" in diag.message
    line = text.split("\n")[diag.span.line - 1]
    first = RAW.search(bad)
    assert first is not None and line[diag.span.column - 1] == first.group()  # the span is the character


def test_tabs_crlf_and_a_bom_are_still_policy_text(tmp_path: Path) -> None:
    (tmp_path / "crlf.charter").write_bytes(GOOD.replace("\n", "\r\n").replace("  ", "\t").encode())
    (tmp_path / "bom.charter").write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    for name in ("crlf.charter", "bom.charter"):
        out = _run("check", str(tmp_path / name))
        assert "0 errors" in out, out


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_check_never_prints_a_control_character_from_a_hostile_file(tmp_path: Path, name: str) -> None:
    bad = HOSTILE[name]
    (tmp_path / "p.charter").write_text(GOOD.replace('reason "r"', f'reason "{bad}"'), encoding="utf-8")
    out = _run("check", str(tmp_path / "p.charter"))
    assert "E002" in out and not RAW.search(out), out
    doc = json.loads(_run("check", str(tmp_path / "p.charter"), "--format", "json"))
    assert doc["ok"] is False


def test_a_hostile_file_name_is_printed_escaped(tmp_path: Path) -> None:
    name = "a\x1b]52;c;ZXZpbA==\x07\u202eb.charter"
    (tmp_path / name).write_text("policy p\ntool t { }\n")
    out = _run("check", str(tmp_path))
    assert "W505" in out and not RAW.search(out), out
    assert "\\x1b" in out  # shown, escaped
    assert json.loads(_run("check", str(tmp_path), "--format", "json"))["warnings"] == 1


def test_render_escapes_the_path_message_source_line_and_keeps_the_caret_on_the_span() -> None:
    source = 'policy p\nreason "\x1b[2J" tool\n'
    diag = error(
        Code.E101_SYNTAX, "unexpected '\x1b[2J\nforged: E000'", Span("p\x1b.charter", 2, 15, 2, 19), "x\ry"
    )
    text = render(diag, source)
    assert not RAW.search(text) and text.count("\n") == 3, text
    gutter, caret = text.splitlines()[1:3]
    assert gutter.endswith('reason "\\x1b[2J" tool')
    assert gutter[caret.index("^") :].startswith("tool")


def test_a_file_name_cannot_forge_a_github_annotation(tmp_path: Path) -> None:
    (tmp_path / "a,line=99,title=PWNED::x.charter").write_text("policy p\ntool t { }\n")
    out = _run("check", str(tmp_path), "--format", "github").strip()
    (line,) = out.splitlines()
    head, _, message = line.partition("::")[2].partition("::")
    level, _, props = head.partition(" ")
    fields = dict(p.split("=", 1) for p in props.split(","))
    assert level == "warning" and fields["line"] == "2" and fields["title"] == "W505 unused-tool", line
    assert set(fields) == {"file", "line", "col", "endLine", "endColumn", "title"}
    assert message.startswith("no rule mentions tool")


def test_a_github_annotation_is_one_line_without_controls() -> None:
    from charter.cli.output import github_annotation

    diag = warning(
        Code.W506_NO_REASON, "m\n::error::forged\x1b[2J", Span("p\n::error::x.charter", 1, 1, 1, 2)
    )
    out = github_annotation(diag)
    assert "\n" not in out and not RAW.search(out), out
    assert out.startswith("::warning file=p%0A%3A%3Aerror%3A%3Ax.charter,line=1,")
    assert diag.severity is Severity.WARNING
