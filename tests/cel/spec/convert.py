"""Converts google/cel-spec's simple conformance files (textproto) into charter's JSON corpus.

Usage: python tests/cel/spec/convert.py DIR_WITH_TEXTPROTO_FILES

The source is google/cel-spec ``tests/simple/testdata/*.textproto`` (Apache-2.0), as captured in
cel-python 0.5.0's sdist (``features/``, cel-spec commit 9f069b3e, v0.24.0) plus
``network_ext.textproto``. Each case keeps its file, section and name; the values keep the
textproto's own field names (``int64_value``, ``list_value`` ...), with bytes written as hex.
Whether a case applies to charter (no protobuf messages) is decided here and recorded as ``skip``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

_TOKEN = re.compile(
    r"""\s+|\#[^\n]*|(?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')|(?P<ext>\[[^\]]*\])"""
    r"""|(?P<num>-?(?:(?:inf(?:inity)?|nan)\b|\d[\w.+-]*|\.\d[\w.+-]*))|(?P<id>[A-Za-z_][\w.]*)|(?P<p>[{}<>:,;\[\]])""",
    re.I,
)

#: Files of protobuf messages, enums and wrappers, and of unknowns/cel.block (not CEL values).
SKIP_FILES = {"proto2", "proto3", "proto2_ext", "wrappers", "enums", "unknowns", "block_ext"}
_MESSAGE_WORDS = re.compile(
    r"TestAllTypes|NestedTestAllTypes|google\.protobuf|cel\.expr\.|\.proto[23]?\b|TestRequired|GlobalEnum|NestedEnum|NestedMessage|proto\."
)
_OK_OBJECTS = ("google.protobuf.Timestamp", "google.protobuf.Duration")


def _unescape(body: str) -> bytes:
    out = bytearray()
    raw = body.encode("utf-8")
    i = 0
    simple = {
        ord("n"): 10,
        ord("t"): 9,
        ord("r"): 13,
        ord("a"): 7,
        ord("b"): 8,
        ord("f"): 12,
        ord("v"): 11,
        ord("\\"): 92,
        ord("'"): 39,
        ord('"'): 34,
        ord("?"): 63,
    }
    while i < len(raw):
        c = raw[i]
        if c != 92:
            out.append(c)
            i += 1
            continue
        n = raw[i + 1]
        if n in simple:
            out.append(simple[n])
            i += 2
        elif n in b"xX":
            m = re.match(rb"[0-9a-fA-F]{1,2}", raw[i + 2 : i + 4])
            assert m
            out.append(int(m.group(), 16))
            i += 2 + len(m.group())
        elif n in b"01234567":
            m = re.match(rb"[0-7]{1,3}", raw[i + 1 : i + 4])
            assert m
            out.append(int(m.group(), 8) & 0xFF)
            i += 1 + len(m.group())
        elif n in b"uU":
            k = 4 if n == ord("u") else 8
            out += chr(int(raw[i + 2 : i + 2 + k], 16)).encode("utf-8", "surrogatepass")
            i += 2 + k
        else:
            raise ValueError(f"bad escape {raw[i : i + 2]!r}")
    return bytes(out)


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks: list[tuple[str, Any]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m:
                raise ValueError(f"cannot tokenise at {text[pos : pos + 40]!r}")
            pos = m.end()
            kind = m.lastgroup
            if kind is None:
                continue
            val: Any = m.group()
            if kind == "str":
                val = _unescape(val[1:-1])
            self.toks.append((kind, val))
        self.i = 0

    def peek(self) -> tuple[str, Any] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, Any]:
        t = self.toks[self.i]
        self.i += 1
        return t

    def message(self, close: str | None) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        while True:
            t = self.peek()
            if t is None or (t[0] == "p" and t[1] == close):
                if close is not None:
                    self.take()
                return out
            kind, name = self.take()
            if kind == "p" and name in ",;":
                continue
            assert kind in ("id", "ext"), (kind, name)
            if self.peek() == ("p", ":"):
                self.take()
            out.setdefault(name, []).extend(self.value())

    def value(self) -> list[Any]:
        kind, v = self.take()
        if kind == "p" and v in "{<":
            return [self.message("}" if v == "{" else ">")]
        if kind == "p" and v == "[":
            items: list[Any] = []
            while self.peek() != ("p", "]"):
                if self.peek() == ("p", ","):
                    self.take()
                    continue
                items.extend(self.value())
            self.take()
            return items
        if kind == "str":
            while self.peek() is not None and self.peek()[0] == "str":  # type: ignore[index]
                v += self.take()[1]
            return [v]
        return [v]


def _scalar(name: str, v: Any) -> Any:
    if isinstance(v, bytes):
        return v.hex() if name == "bytes_value" else v.decode("utf-8", "surrogateescape")
    if name in ("int64_value", "uint64_value", "seconds", "nanos"):
        return int(v)
    if name == "double_value":
        s = str(v).lower()
        return s if s in ("nan", "inf", "-inf", "infinity", "-infinity") else float(v)
    if v in ("true", "false"):
        return v == "true"
    try:
        return int(v)
    except (TypeError, ValueError):
        return v


def _plain(msg: Any, name: str = "") -> Any:
    """A parsed message as JSON: repeated fields stay lists, single ones become the value."""
    if not isinstance(msg, dict):
        return _scalar(name, msg)
    out: dict[str, Any] = {}
    for k, vs in msg.items():
        conv = [_plain(v, k) for v in vs]
        out[k] = (
            conv
            if k
            in (
                "values",
                "entries",
                "errors",
                "test",
                "section",
                "type_env",
                "bindings",
                "elem_type",
                "params",
                "parameter_types",
            )
            else conv[-1]
        )
    return out


def _objects(x: Any) -> list[str]:
    found: list[str] = []
    if isinstance(x, dict):
        for k, v in x.items():
            if k.startswith("[") and k.endswith("]"):
                found.append(k.strip("[]").split("/")[-1])
            if k in ("message_type", "object_value") and isinstance(v, str):
                found.append(v)
            found += _objects(v)
    elif isinstance(x, list):
        for v in x:
            found += _objects(v)
    return found


def _skip(file: str, test: dict[str, Any]) -> str | None:
    if file in SKIP_FILES:
        return f"{file}: protobuf messages, enums, wrappers or non-value features"
    if _MESSAGE_WORDS.search(test.get("expr", "")):
        return "the expression names a protobuf message"
    if any(o not in _OK_OBJECTS for o in _objects({k: v for k, v in test.items() if k != "expr"})):
        return "a value or declaration is a protobuf message"
    if any("function" in d for d in test.get("type_env", [])):
        return "declares functions of its own (charter has no user-defined functions)"
    if str(test.get("container", "")).startswith(("cel.expr.conformance", "google.protobuf")):
        return "the container is a protobuf package"
    return None


def convert(path: Path) -> dict[str, Any]:
    parsed = _plain(_Parser(path.read_text("utf-8")).message(None))
    file = path.stem
    cases = []
    for section in parsed.get("section", []):
        for test in section.get("test", []):
            case = {"file": file, "section": section.get("name", ""), **test}
            skip = _skip(file, test)
            if skip:
                case["skip"] = skip
            cases.append(case)
    return {
        "name": parsed.get("name", file),
        "source": f"google/cel-spec tests/simple/testdata/{path.name}",
        "cases": cases,
    }


def main() -> None:
    src = Path(sys.argv[1])
    dest = Path(__file__).parent / "corpus"
    dest.mkdir(exist_ok=True)
    for p in sorted(src.glob("*.textproto")):
        data = convert(p)
        (dest / f"{p.stem}.json").write_text(json.dumps(data, indent=1, ensure_ascii=True) + "\n", "utf-8")
        n = len(data["cases"])
        skipped = sum(1 for c in data["cases"] if "skip" in c)
        print(f"{p.stem}: {n} cases, {n - skipped} apply")


if __name__ == "__main__":
    main()
