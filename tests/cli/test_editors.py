"""The TextMate grammar's keywords are exactly the Lark grammar's word literals, and it is up to date."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _gen():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_textmate", ROOT / "scripts" / "gen_textmate.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_textmate_keywords_agree_with_the_lark_grammar() -> None:
    gen = _gen()
    words = gen.keywords((ROOT / "grammar" / "charter.lark").read_text())
    tm = json.loads((ROOT / "editors" / "charter.tmLanguage.json").read_text())
    assert tm["x-keywords"] == words
    assert {"permit", "forbid", "require", "approval", "tripwire", "budget", "escalate", "halt"} <= set(words)
    pattern = next(p["match"] for p in tm["patterns"] if p["name"] == "keyword.control.charter")
    for w in words:
        assert re.fullmatch(pattern, w), w
    assert not re.search(pattern, "args.amount")


def test_textmate_file_is_generated_from_the_current_grammar() -> None:
    gen = _gen()
    expected = json.dumps(gen.language(gen.keywords(gen.GRAMMAR.read_text())), indent=2) + "\n"
    assert (ROOT / "editors" / "charter.tmLanguage.json").read_text() == expected


def test_vscode_extension_reuses_the_textmate_grammar_and_starts_charter_lsp() -> None:
    ext = ROOT / "editors" / "vscode"
    package = json.loads((ext / "package.json").read_text())
    (grammar,) = package["contributes"]["grammars"]
    copy = ext / grammar["path"]
    assert copy.read_text() == (ROOT / "editors" / "charter.tmLanguage.json").read_text(), (
        "editors/vscode/syntaxes is a copy of editors/charter.tmLanguage.json: npm run grammar"
    )
    assert grammar["scopeName"] == json.loads(copy.read_text())["scopeName"]
    (language,) = package["contributes"]["languages"]
    assert language["extensions"] == [".charter"] and (ext / language["configuration"]).is_file()
    main = (ext / package["main"]).read_text()
    assert 'args: ["lsp"]' in main
    # the options the extension sends are the ones the server reads (charter.lsp.server.initialize)
    server = (ROOT / "src" / "charter" / "lsp" / "server.py").read_text()
    for option in re.findall(r"^\s+(\w+): config\.get", main, re.M):
        assert f'options.get("{option}")' in server, option


def test_editor_setups_in_the_docs_start_the_real_server() -> None:
    """docs/editors.md: the Helix configuration parses and runs `charter lsp`; the Neovim one too;
    the VS Code settings it names are the extension's."""
    import tomllib

    doc = (ROOT / "docs" / "editors.md").read_text()
    blocks = dict(re.findall(r"```(toml|lua)\n(.*?)```", doc, re.S))
    helix = tomllib.loads(blocks["toml"])
    assert helix["language-server"]["charter"] == {
        "command": "charter",
        "args": ["lsp"],
        "config": {"roots": ["policies"]},
    }
    assert helix["language"][0]["file-types"] == ["charter"]
    assert 'cmd = { "charter", "lsp" }' in blocks["lua"]
    package = json.loads((ROOT / "editors" / "vscode" / "package.json").read_text())
    for setting in re.findall(r"`(charter\.\w+)`", doc):
        assert setting in package["contributes"]["configuration"]["properties"], setting
    run = subprocess.run([sys.executable, "-m", "charter", "lsp", "--help"], capture_output=True, text=True)
    assert run.returncode == 0 and "language server" in run.stdout
