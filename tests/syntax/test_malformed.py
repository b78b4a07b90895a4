"""Malformed input, generated and mutated: diagnostics with a code and position, never a crash."""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

from click.testing import CliRunner
from tests.syntax.gen import random_policy

from charter.cli.main import cli
from charter.compiler.pipeline import compile_text
from charter.diagnostics import Code
from charter.syntax.parser import decode, parse_text

#: Malformed inputs per run.
MALFORMED = 5000
#: Longest any one input may take.
MAX_SECONDS = 1.0

_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|[A-Za-z_0-9][\w.\-]*|\s+|.', re.S)
_JUNK = [
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    '"',
    "'",
    "#",
    ",",
    ":",
    ">",
    "\\",
    "when",
    "permit",
    "\x00",
    "\ufeff",
    "\u2028",
    "🙂",
    "-",
    "..",
    "1e9",
    "\r",
    "\t",
    "==",
]


def _mutate(r: random.Random, text: str) -> str | bytes:
    toks = _TOKEN.findall(text) or [""]
    op = r.randrange(12)
    i = r.randrange(len(toks))
    if op == 0:
        del toks[i]
    elif op == 1:
        toks.insert(i, toks[r.randrange(len(toks))])
    elif op == 2:
        j = r.randrange(len(toks))
        toks[i], toks[j] = toks[j], toks[i]
    elif op == 3:
        return text[: r.randrange(len(text) + 1)]
    elif op == 4:
        toks.insert(i, r.choice(_JUNK))
    elif op == 5:
        data = bytearray(text.encode())
        for _ in range(r.randint(1, 4)):
            data.insert(r.randrange(len(data) + 1), r.randrange(256))
        return bytes(data)
    elif op == 6:
        toks.insert(i, r.choice(["{", "}"]) * r.randint(1, 5))
    elif op == 7:
        return text.encode() + b"\xff\xfe" + bytes([r.randrange(128, 256)])
    elif op == 8:
        toks[i] = r.choice(_JUNK)
    elif op == 9:
        toks.insert(i, "\n" + r.choice(_JUNK) + "\n")
    elif op == 10:
        for _ in range(r.randint(2, 6)):
            k = r.randrange(len(toks))
            toks[k] = r.choice(_JUNK) if r.random() < 0.5 else ""
    else:
        toks.insert(i, r.choice(["when ", "reason ", "limit ", "action call "]) + r.choice(_JUNK))
    return "".join(toks)


def _generated(r: random.Random) -> str | bytes:
    k = r.randrange(10)
    if k == 0:
        return "permit r {\n  when " + "(" * r.choice([7, 65, 10_000]) + "x\n}\n"
    if k == 1:
        return "{" * r.choice([65, 1000, 10_000])
    if k == 2:
        return 'policy p\npermit r {\n  reason "' + "a" * r.choice([10_000, 100_000]) + "\n}\n"
    if k == 3:
        return "units " + ", ".join(["u"] * r.choice([100, 5000])) + ","
    if k == 4:
        return bytes(r.randrange(256) for _ in range(r.randint(1, 300)))
    if k == 5:
        return "".join(r.choice([*_JUNK, " ", "\n", "x", "1"]) for _ in range(r.randint(1, 200)))
    if k == 6:
        return "permit r {\n" + "  actor any\n" * r.randint(1, 3) + "  when x &&\n" * 3
    if k == 7:
        return "policy p\n" + "permit r { actor any }\n" * r.randint(1, 50) + "}" * r.randint(1, 3)
    if k == 8:
        return "x" * r.choice([1, 100_000]) + "\n"
    return "permit r {\n  limit 99999999999999999999 USD\n  quorum 1" + "0" * 30 + "\n}\n"


def _check_one(data: str | bytes, label: str) -> tuple[float, bool]:
    start = time.perf_counter()
    if isinstance(data, bytes):
        text, diags = decode("<m>", data)
        if text is None:
            assert diags and diags[0].code.value.startswith("E"), label
            return time.perf_counter() - start, True
    else:
        text = data
    result = compile_text(text, "<m>")
    took = time.perf_counter() - start
    for d in result.diagnostics:
        assert isinstance(d.code, Code), label
        assert d.span.path == "<m>" and d.span.line >= 1 and d.span.column >= 1, (label, d)
    # A mutation may still be a valid policy (or empty): then it compiles without errors.
    return took, bool(result.errors)


def test_malformed_inputs_give_diagnostics_fast() -> None:
    parse_text("policy warm-up", "<m>")  # build the parser outside the timings
    r = random.Random(20240611)
    bases = [random_policy(s, max_items=5).text for s in range(200)]
    bases += [p.read_text() for p in sorted(Path(__file__).parents[2].glob("policies/*.charter"))]
    worst = (0.0, "")
    erroring = 0
    for n in range(MALFORMED):
        if n % 5 == 0:
            data, label = _generated(r), f"generated #{n}"
        else:
            data = r.choice(bases)
            for _ in range(r.randint(1, 3)):
                text = data if isinstance(data, str) else data.decode("utf-8", "replace")
                data = _mutate(r, text)
            label = f"mutated #{n}"
        took, failed = _check_one(data, label)
        if took > worst[0]:
            worst = (took, label)
        erroring += failed
    assert worst[0] < MAX_SECONDS, worst
    assert erroring > MALFORMED * 0.6
    print(f"{MALFORMED} malformed, {erroring} with errors, slowest {worst[0]:.3f}s ({worst[1]})")


def test_hostile_files_through_the_cli(tmp_path: Path) -> None:
    cases: dict[str, bytes] = {
        "nul.charter": b"policy p\x00\n",
        "latin1.charter": b"policy caf\xe9\n",
        "deep.charter": b"permit r {\n  when " + b"(" * 10_000 + b"x\n}\n",
        "braces.charter": b"{" * 10_000,
        "long.charter": b"units " + b", ".join([b"u"] * 5_000) + b",",
        "truncated.charter": b"policy p\npermit r {\n  actor role",
        "junk.charter": bytes(range(1, 256)),
    }
    runner = CliRunner()
    for name, data in cases.items():
        f = tmp_path / name
        f.write_bytes(data)
        start = time.perf_counter()
        res = runner.invoke(cli, ["check", str(f)])
        assert time.perf_counter() - start < MAX_SECONDS * 3, name
        assert res.exception is None or isinstance(res.exception, SystemExit), (name, res.output)
        assert res.exit_code == 2, (name, res.output)
        assert re.search(r":\d+:\d+: E\d{3} ", res.output), (name, res.output)
        assert "Traceback" not in res.output


def test_nesting_ignores_brackets_in_strings_and_comments() -> None:
    from charter.syntax.parser import MAX_NESTING, _check_nesting

    deep = "(" * (MAX_NESTING + 1)
    found = _check_nesting("p", f'x\n  "{deep}" # {deep}\n  {deep}')
    assert found is not None and found.code.value == "E004"
    assert (found.span.line, found.span.column) == (3, MAX_NESTING + 3)
    assert _check_nesting("p", f"\"{deep}\"\n# {deep}\n'\\'{deep}'") is None
    # A backslash left pending at the end of an unterminated string escapes the next string's
    # first character, so the quote below does not close that string.
    assert _check_nesting("p", f'"a\\\n""{deep}') is None
    assert _check_nesting("p", f'"a\\\n"x"{deep}') is not None
