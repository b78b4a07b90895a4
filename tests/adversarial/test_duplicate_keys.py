"""Attacks on documents with a key given twice (a careless or hostile test file, request, export).

Invariant attacked: JSON and PyYAML keep the last of two equal keys without a word, so a policy
test's second `expect` would silently replace the first (a test that reads as checking a deny and
checks an allow), and a request's second `target` would replace the one a reviewer read. Every
document the CLI reads (charter.documents) refuses a mapping with a key given twice, naming the
key, with exit status 2; different keys, equal keys in different mappings and a YAML merge key
are still read.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from charter.cli.main import cli
from charter.documents import DocumentError, parse_document

POLICY = 'policy p\ntool t { }\npermit a {\n  actor any\n  action call t\n  reason "ok"\n}\n'


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "a": 2}',
        '{"x": {"target": "t", "target": "u"}}',
        "a: 1\na: 2\n",
        "x:\n  - {k: 1, k: 2}\n",
        "a: 1\n'a': 2\n",
        '{a: 1, "a": 2}',
    ],
)
def test_a_key_given_twice_is_refused(text: str) -> None:
    with pytest.raises(DocumentError, match="appears twice"):
        parse_document(text)


@pytest.mark.parametrize(
    "text, data",
    [
        ('{"a": 1, "b": 2}', {"a": 1, "b": 2}),
        ("[{a: 1}, {a: 2}]", [{"a": 1}, {"a": 2}]),
        ("a: {k: 1}\nb: {k: 2}\n", {"a": {"k": 1}, "b": {"k": 2}}),
        ("<<: {a: 1}\nb: 2\n", {"a": 1, "b": 2}),
    ],
)
def test_distinct_keys_are_still_read(text: str, data: object) -> None:
    assert parse_document(text) == data


def test_a_policy_test_with_two_expects_fails_instead_of_passing(tmp_path: Path) -> None:
    (tmp_path / "p.charter").write_text(POLICY)
    (tmp_path / "p_test.yaml").write_text(
        "scenarios:\n  - name: t is denied\n    steps:\n      - decide: {actor: ag, call: t}\n"
        "        expect: {outcome: deny}\n        expect: {outcome: allow}\n"
    )
    res = CliRunner().invoke(cli, ["--color", "never", "test", str(tmp_path)])
    assert res.exit_code == 2 and "'expect' appears twice" in res.output, res.output


def test_a_request_with_two_targets_is_refused(tmp_path: Path) -> None:
    (tmp_path / "p.charter").write_text(POLICY)
    (tmp_path / "r.json").write_text(
        '{"actor": {"id": "ag"}, "action": {"kind": "call", "target": "x", "target": "t"}}'
    )
    res = CliRunner().invoke(
        cli, ["--color", "never", "eval", str(tmp_path / "p.charter"), "--request", str(tmp_path / "r.json")]
    )
    assert res.exit_code == 2 and "'target' appears twice" in res.output, res.output
