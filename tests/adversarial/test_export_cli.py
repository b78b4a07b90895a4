"""Attacks on the export masks and on the CLI's standard-input readers.

Masks: a declared secret must not leave the process through a nested path, a list element, a key
in another case, an echo in another field, or a value shaped to hide it; a mask path that names no
declared argument must not compile. stdin: huge, deeply nested, binary, invalid UTF-8 and empty
input exits 2 with a message, never a traceback.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

import charter
from charter.cli.main import cli
from charter.compiler.pipeline import compile_text
from charter.engine.engine import Engine
from charter.engine.policy import MaskRule
from charter.engine.validate import validate_request
from charter.enums import MaskKind
from charter.export.exporter import build_record
from charter.export.mask import HASH_PREFIX, MASKED, Masker
from charter.syntax.parser import MAX_FILE_BYTES

POLICY = """
policy adv

tool t.call {
  category write
  arg password: string
  arg card: map of string
  arg items: list of map of string
  arg blob: map of string
  arg note: string
  arg token: string
}

mask args.password, args.card.number, args.items.iban
hash args.token

permit t {
  action call t.call
  reason "ok"
}
"""


def _record(args: dict[str, Any], key: bytes = b"k") -> dict[str, Any]:
    policy = charter.loads(POLICY)
    req = {"actor": {"id": "a"}, "action": {"target": "t.call", "args": args}}
    decision = Engine(policy).decide(req)
    rec = build_record(validate_request(req), decision, 0)
    return Masker(key).apply(rec, policy.masks)


def _leaks(rec: dict[str, Any], *secrets: str) -> list[str]:
    text = json.dumps(rec)
    return [s for s in secrets if s in text]


def test_masked_value_that_is_a_structure_is_replaced_whole() -> None:
    rec = _record({"password": {"inner": ["hunter2-deep", {"x": "hunter2-deeper"}]}})
    assert rec["request"]["action"]["args"]["password"] == MASKED
    assert _leaks(rec, "hunter2-deep", "hunter2-deeper") == []


def test_nested_path_and_its_siblings() -> None:
    rec = _record({"card": {"number": "4111111111111111", "holder": "Ann", "cvc": "123"}})
    assert rec["request"]["action"]["args"]["card"] == {"number": MASKED, "holder": "Ann", "cvc": "123"}


def test_list_elements_and_lists_of_lists() -> None:
    items = [{"iban": "DE89370400440532013000"}, [{"iban": "FR7630006000011234567890189"}], {"other": 1}]
    rec = _record({"items": items})
    got = rec["request"]["action"]["args"]["items"]
    assert got[0] == {"iban": MASKED} and got[1] == [{"iban": MASKED}] and got[2] == {"other": 1}
    assert _leaks(rec, "DE8937", "FR7630") == []


def test_a_key_in_another_case_is_masked() -> None:
    rec = _record({"PassWord": "hunter2-case", "CARD": {"Number": "4111111111111111"}})
    args = rec["request"]["action"]["args"]
    assert args["PassWord"] == MASKED and args["CARD"]["Number"] == MASKED


def test_an_echo_in_another_field_is_masked() -> None:
    rec = _record(
        {"password": "hunter2-echo", "note": "my password is hunter2-echo!", "blob": {"hunter2-echo": "v"}}
    )
    assert _leaks(rec, "hunter2-echo") == []
    assert rec["request"]["action"]["args"]["note"] == f"my password is {MASKED}!"


def test_an_echo_in_the_decision_is_masked() -> None:
    masker = Masker(b"k")
    rec = {
        "decision": {"failures": [{"error": "value 'hunter2-in-error' is not allowed"}]},
        "request": {"action": {"args": {"password": "hunter2-in-error"}}},
    }
    out = masker.apply(rec, (MaskRule(("password",), MaskKind.MASK),))
    assert "hunter2-in-error" not in json.dumps(out)


def test_hash_is_keyed_and_never_the_value() -> None:
    a = _record({"token": "tok-123456"}, key=b"key-a")["request"]["action"]["args"]["token"]
    b = _record({"token": "tok-123456"}, key=b"key-b")["request"]["action"]["args"]["token"]
    again = _record({"token": "tok-123456"}, key=b"key-a")["request"]["action"]["args"]["token"]
    assert a.startswith(HASH_PREFIX) and b.startswith(HASH_PREFIX)
    assert a == again and a != b and "tok-123456" not in a


def test_numbers_and_nulls_at_a_masked_path() -> None:
    rec = _record({"password": 1234567890, "card": {"number": None}})
    args = rec["request"]["action"]["args"]
    assert args["password"] == MASKED and args["card"]["number"] == MASKED


def test_undeclared_arguments_are_not_a_way_around_a_declared_mask() -> None:
    """An argument the tool does not declare is refused by validation or kept as sent; a declared
    masked argument is masked whatever else the request carries."""
    rec = _record({"password": "hunter2-extra", "unknown": {"password": "hunter2-nested-unknown"}})
    assert rec["request"]["action"]["args"]["password"] == MASKED
    assert _leaks(rec, "hunter2-extra") == []


@pytest.mark.parametrize(
    ("decl", "code"),
    [
        ("mask args.pasword", "E201"),  # a typo: no declared argument
        ("mask args.nope.deeper", "E201"),
        ("hash password", "E402"),  # not under args
        ("mask context.env", "E402"),
        ("mask args", "E402"),
        ("mask args.note.x", "E402"),  # inside a scalar
        ("mask args.password, args.password", "E202"),  # twice
    ],
)
def test_mask_paths_that_name_no_declared_argument_do_not_compile(decl: str, code: str) -> None:
    result = compile_text(POLICY + decl + "\n", "<adv>")
    assert result.policy is None
    assert code in {d.code.value for d in result.errors}


def _run(*args: str, input: bytes) -> tuple[int, str, str]:
    res = CliRunner().invoke(cli, ["--color", "never", *args], input=input)
    return res.exit_code, res.stdout, res.stderr


STDIN_ATTACKS = {
    "huge": b"policy p\n" + b"# " + b"x" * (MAX_FILE_BYTES + 10) + b"\n",
    "binary": b"policy p\n\x00\x01\x02\xff",
    "not-utf8": b"policy p\nunits \xc3\x28\n",
    "deep": (
        b"policy p\ntool a { category read }\npermit x {\n  action call a\n  when "
        + b"(" * 20_000
        + b"true"
        + b")" * 20_000
        + b"\n}\n"
    ),
    "deep-braces": b"policy p\n" + b"{" * 100_000,
}


@pytest.mark.parametrize("name", sorted(STDIN_ATTACKS))
@pytest.mark.parametrize("command", ["check", "fmt"])
def test_stdin_attacks_exit_2_with_a_message(command: str, name: str) -> None:
    code, out, err = _run(command, "-", input=STDIN_ATTACKS[name])
    assert code == 2, (name, out[-500:], err[-500:])
    text = out + err
    assert "<stdin>" in text
    assert "Traceback" not in text
    if command == "fmt":
        assert out == ""  # nothing half-formatted on stdout


def test_huge_stdin_is_not_read_whole() -> None:
    """The reader stops one byte past the limit: a stream of 64 MiB is refused after 4 MiB."""
    from charter.cli.stdin import read_policy_stdin

    class Endless:
        read_bytes = 0

        def read(self, n: int = -1) -> bytes:
            assert n > 0, "must read with a bound"
            Endless.read_bytes += n
            return b"#" * n

    text, diags = read_policy_stdin(Endless())  # type: ignore[arg-type]
    assert text is None and diags[0].code.value == "E003"
    assert Endless.read_bytes == MAX_FILE_BYTES + 1


def test_empty_stdin() -> None:
    code, out, _ = _run("check", "-", input=b"")
    assert code == 2 and "E006" in out
    code, out, _ = _run("fmt", "-", input=b"")
    assert code == 0 and out == ""
