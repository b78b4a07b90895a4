"""Rendering of diagnostics: path:line:col: CODE message, source line, caret, help."""

from charter.diagnostics import Code, Span, did_you_mean, error, render, to_json, warning


def test_render_error_with_caret_and_help() -> None:
    src = "permit p {\n  actor role reserch\n}\n"
    d = error(
        Code.E201_UNKNOWN_NAME,
        "unknown role 'reserch'",
        Span("a.charter", 2, 14, 2, 21),
        "did you mean 'research'?",
    )
    assert render(d, src) == (
        "a.charter:2:14: E201 unknown role 'reserch'\n"
        "   2 |   actor role reserch\n"
        "     |              ^^^^^^^\n"
        "  = help: did you mean 'research'?"
    )


def test_render_warning_and_no_source() -> None:
    d = warning(Code.W506_NO_REASON, "rule 'x' has no reason", Span("b.charter", 3, 8, 3, 9))
    assert render(d) == "b.charter:3:8: W506 warning: rule 'x' has no reason"


def test_did_you_mean() -> None:
    assert did_you_mean("reserch", ["research", "risk"]) == "did you mean 'research'?"
    assert did_you_mean("zzz", ["research"]) is None


def test_json_has_schema_version_and_stable_fields() -> None:
    d = error(Code.E101_SYNTAX, "unexpected '}'", Span("c.charter", 1, 2, 1, 3))
    out = to_json([d])
    assert '"schema_version": 1' in out
    assert '"code": "E101"' in out and '"name": "syntax"' in out
