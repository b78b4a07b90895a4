"""CEL text to AST: a lexer and a recursive-descent parser for the grammar of the language definition.

The grammar is google/cel-spec ``doc/langdef.md`` "Syntax" (precedence, right-associative
``?:``, repeated unary operators, literals and escapes of "String and Bytes Values"), with cel-go's
optional syntax (``a.?b``, ``a[?i]``, ``[?x]``, ``{?k: v}``). Macros are expanded while parsing
(langdef "Macros": ``has``, ``all``, ``exists``, ``exists_one``, ``map``, ``filter``; cel-go's
``existsOne``, two-variable comprehensions, ``transformList``/``transformMap``, ``cel.bind``,
``optMap``/``optFlatMap``, ``sortBy``). The parser is bounded: text length, token count and bracket
nesting are checked before parsing, so it never recurses deeper than the limits allow.
"""

from __future__ import annotations

import re
from typing import Any

from charter.cel.limits import Limits
from charter.cel.syntax import (
    Binary,
    Bind,
    Call,
    Comprehension,
    Cond,
    Has,
    Ident,
    Index,
    ListLit,
    Lit,
    Logic,
    MapLit,
    Method,
    Node,
    OptMap,
    Select,
    Unary,
    depth,
    dotted,
)
from charter.cel.types import CelProblem, ProblemKind, UInt
from charter.cel.values import INT_MAX, INT_MIN, UINT_MAX

_TOKENS = re.compile(
    r"""
    (?P<ws>[\t\n\f\r ]+|//[^\n]*)
  | (?P<str>(?:[rR][bB]?|[bB][rR]?)?
        (?:'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\"|'(?:\\.|[^\\'\n\r])*'|"(?:\\.|[^\\"\n\r])*"))
  | (?P<float>(?:\d+\.\d+(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+))
  | (?P<int>0[xX][0-9a-fA-F]+[uU]?|\d+[uU]?)
  | (?P<id>[_a-zA-Z][_a-zA-Z0-9]*)
  | (?P<quoted>`[^`\n]*`)
  | (?P<op>==|!=|<=|>=|&&|\|\||[-+*/%!<>?:.,()\[\]{}])
    """,
    re.X | re.S,
)
#: Words CEL reserves (the spec's lexis): never identifiers, also kept from charter's own names.
RESERVED_WORDS = frozenset(
    [
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
    ]
)
_OPEN = frozenset("([{")
_CLOSE = frozenset(")]}")
_RELOPS = frozenset({"<", "<=", ">", ">=", "==", "!=", "in"})

#: Receiver-style macros and their argument counts (langdef "Macros"; cel-go ext).
_MACROS = {
    "all": (2, 3),
    "exists": (2, 3),
    "exists_one": (2, 3),
    "existsOne": (2, 3),
    "map": (2, 3),
    "filter": (2,),
    "transformList": (3, 4),
    "transformMap": (3, 4),
    "transformMapEntry": (3, 4),
    "sortBy": (2,),
    "optMap": (2,),
    "optFlatMap": (2,),
}


class ParseFailure(Exception):
    """Carries compile problems out of the parser."""

    def __init__(self, problems: list[CelProblem]) -> None:
        super().__init__(problems[0].message if problems else "")
        self.problems = problems


class _Tok:
    __slots__ = ("end", "kind", "start", "text")

    def __init__(self, kind: str, text: str, start: int, end: int) -> None:
        self.kind = kind
        self.text = text
        self.start = start
        self.end = end


def _too_complex(msg: str, n: int, help: str | None = None) -> ParseFailure:
    return ParseFailure([CelProblem(ProblemKind.TOO_COMPLEX, msg, 0, n, help)])


def tokenize(text: str, limits: Limits) -> list[_Tok]:
    """The tokens of ``text``, bounded in count and bracket nesting."""
    out: list[_Tok] = []
    pos = 0
    n = len(text)
    level = 0
    match = _TOKENS.match
    while pos < n:
        m = match(text, pos)
        if m is None:
            ch = text[pos]
            what = "an unterminated text" if ch in "'\"" else repr(ch)
            raise ParseFailure(
                [CelProblem(ProblemKind.SYNTAX, f"syntax error: unexpected {what} at character {pos + 1}",
                            pos, pos + 1)]
            )  # fmt: skip
        kind = m.lastgroup or ""
        end = m.end()
        if kind != "ws":
            tok = m.group()
            if kind == "op":
                if tok in _OPEN:
                    level += 1
                    if level > limits.max_nesting:
                        raise _too_deep(limits, n, limits.max_nesting)
                elif tok in _CLOSE:
                    level -= 1
            out.append(_Tok(kind, tok, pos, end))
            if len(out) > limits.max_tokens:
                raise _too_complex(
                    f"the condition has too many parts (more than {limits.max_tokens} tokens)",
                    n,
                    "split it into several smaller conditions",
                )
        pos = end
    out.append(_Tok("eof", "", n, n))
    return out


def _too_deep(limits: Limits, n: int, levels: int | None = None) -> ParseFailure:
    return _too_complex(
        f"the condition is nested too deeply (the limit is {levels or limits.max_depth} levels)",
        n,
        "simplify it, or split it into several conditions",
    )


_SIMPLE_ESCAPES = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
    "\\": "\\", "?": "?", '"': '"', "'": "'", "`": "`",
}  # fmt: skip
_ESCAPE = re.compile(
    r"\\(?:([abfnrtv\\?\"'`])|[xX]([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|([0-3][0-7]{2})|(.|\n|$))"
)


_ESCAPE_HELP = (
    "backslash escapes in texts are \\n \\t \\\\ \\' \\\" \\xHH \\uHHHH ...; for a regular "
    "expression write a raw text, r'...', where backslashes are kept as they are"
)


def decode_string(tok: str) -> str | bytes:
    """The value of a string or bytes literal token (langdef "String and Bytes Values")."""
    i = 0
    raw = is_bytes = False
    while tok[i] in "rRbB":
        raw |= tok[i] in "rR"
        is_bytes |= tok[i] in "bB"
        i += 1
    q = 3 if tok[i : i + 3] in ("'''", '"""') else 1
    body = tok[i + q : len(tok) - q]
    if raw:
        return body.encode("utf-8") if is_bytes else body
    if is_bytes:
        out = bytearray()
        pos = 0
        for m in _ESCAPE.finditer(body):
            out += body[pos : m.start()].encode("utf-8")
            out += _escape_bytes(m)
            pos = m.end()
        out += body[pos:].encode("utf-8")
        return bytes(out)
    return _ESCAPE.sub(_escape_text, body)


def _escape_text(m: re.Match[str]) -> str:
    simple, hx, u4, u8, octal, bad = m.groups()
    if simple is not None:
        return _SIMPLE_ESCAPES[simple]
    if bad is not None:
        raise ValueError(f"invalid escape sequence '\\{bad}'")
    code = int(hx or u4 or u8, 16) if octal is None else int(octal, 8)
    if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
        raise ValueError(f"invalid code point in escape '{m.group()}'")
    return chr(code)


def _escape_bytes(m: re.Match[str]) -> bytes:
    simple, hx, u4, u8, octal, bad = m.groups()
    if simple is not None:
        return _SIMPLE_ESCAPES[simple].encode()
    if bad is not None:
        raise ValueError(f"invalid escape sequence '\\{bad}'")
    if hx is not None or octal is not None:
        return bytes([int(hx, 16) if hx is not None else int(octal, 8)])
    code = int(u4 or u8, 16)
    if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
        raise ValueError(f"invalid code point in escape '{m.group()}'")
    return chr(code).encode("utf-8")


def _int_literal(text: str, negative: bool) -> int:
    unsigned = text[-1] in "uU"
    digits = text[:-1] if unsigned else text
    v = int(digits, 16) if digits[:2] in ("0x", "0X") else int(digits, 10)
    if unsigned:
        if negative or v > UINT_MAX:
            raise ValueError("uint literal out of range")
        return UInt(v)
    if negative:
        v = -v
    if not INT_MIN <= v <= INT_MAX:
        raise ValueError("int literal out of range")
    return v


class _Parser:
    def __init__(self, text: str, toks: list[_Tok], limits: Limits) -> None:
        self.text = text
        self.toks = toks
        self.i = 0
        self.limits = limits

    # -- helpers ---------------------------------------------------------------------------
    def peek(self, k: int = 0) -> _Tok:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def at(self, text: str) -> bool:
        t = self.toks[self.i]
        return t.kind == "op" and t.text == text

    def next(self) -> _Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def expect(self, text: str, what: str) -> _Tok:
        t = self.toks[self.i]
        if t.kind == "op" and t.text == text:
            self.i += 1
            return t
        raise self.error(t, f"expected {what}")

    def error(self, t: _Tok, msg: str | None = None) -> ParseFailure:
        if t.kind == "eof":
            text = "the condition ends too early (something is missing at the end)"
        else:
            text = f"unexpected {t.text!r} at character {t.start + 1}"
            if msg:
                text += f" ({msg})"
        return ParseFailure(
            [CelProblem(ProblemKind.SYNTAX, f"syntax error: {text}", t.start, max(t.end, t.start + 1))]
        )

    def fail(self, start: int, end: int, msg: str, kind: ProblemKind = ProblemKind.SYNTAX,
             help: str | None = None) -> ParseFailure:  # fmt: skip
        return ParseFailure([CelProblem(kind, msg, start, end, help)])

    # -- grammar -----------------------------------------------------------------------------
    def parse(self) -> Node:
        node = self.expr()
        t = self.peek()
        if t.kind != "eof":
            raise self.error(t)
        return node

    def expr(self) -> Node:
        cond = self.logic("||")
        if not self.at("?"):
            return cond
        self.next()
        then = self.logic("||")
        self.expect(":", "':' of '? :'")
        other = self.expr()
        return Cond(cond.start, other.end, cond, then, other)

    def logic(self, op: str) -> Node:
        first = self.logic("&&") if op == "||" else self.relation()
        if not self.at(op):
            return first
        operands = [first]
        while self.at(op):
            self.next()
            operands.append(self.logic("&&") if op == "||" else self.relation())
        return Logic(first.start, operands[-1].end, op, operands)

    def relation(self) -> Node:
        left = self.addition()
        while True:
            t = self.peek()
            if not ((t.kind == "op" or t.kind == "id") and t.text in _RELOPS):
                return left
            self.next()
            right = self.addition()
            left = Binary(left.start, right.end, t.text, left, right)

    def addition(self) -> Node:
        left = self.multiplication()
        while self.at("+") or self.at("-"):
            op = self.next().text
            right = self.multiplication()
            left = Binary(left.start, right.end, op, left, right)
        return left

    def multiplication(self) -> Node:
        left = self.unary()
        while self.at("*") or self.at("/") or self.at("%"):
            op = self.next().text
            right = self.unary()
            left = Binary(left.start, right.end, op, left, right)
        return left

    def unary(self) -> Node:
        t = self.peek()
        if t.kind == "op" and t.text in ("!", "-"):
            ops: list[_Tok] = []
            while self.at(t.text):
                ops.append(self.next())
            nxt = self.peek()
            # An even run of '!' or '-' cancels out, as in cel-go's and cel-cpp's parsers.
            odd = len(ops) % 2 == 1
            if t.text == "-" and odd and nxt.kind in ("int", "float"):
                # the '-' belongs to a number literal: -9223372036854775808 is an int
                self.next()
                return self.member(self._number(nxt, negative=True, start=ops[-1].start))
            node = self.member(self.primary())
            if odd:
                node = Unary(ops[0].start, node.end, t.text, node)
            return node
        return self.member(self.primary())

    def _number(self, t: _Tok, negative: bool, start: int) -> Lit:
        try:
            if t.kind == "float":
                v: Any = float(t.text)
                if negative:
                    v = -v
            else:
                v = _int_literal(t.text, negative)
        except (ValueError, OverflowError) as ex:
            raise self.fail(start, t.end, f"the number {self.text[start:t.end]} is out of range ({ex})",
                            ProblemKind.TYPE) from None  # fmt: skip
        return Lit(start, t.end, v)

    def member(self, node: Node) -> Node:
        while True:
            t = self.peek()
            if t.kind != "op":
                return node
            if t.text == ".":
                self.next()
                optional = False
                if self.at("?"):
                    self.next()
                    optional = True
                name_tok = self.next()
                if name_tok.kind == "quoted":
                    name = name_tok.text[1:-1]
                elif name_tok.kind == "id":
                    name = name_tok.text
                else:
                    raise self.error(name_tok, "expected a field name")
                if not optional and self.at("("):
                    self.next()
                    args = self.exprlist(")")
                    end = self.expect(")", "')'").end
                    node = self.method(node, name, args, node.start, end, name_tok)
                else:
                    node = Select(node.start, name_tok.end, node, name, optional)
            elif t.text == "[":
                self.next()
                optional = False
                if self.at("?"):
                    self.next()
                    optional = True
                index = self.expr()
                end = self.expect("]", "']'").end
                node = Index(node.start, end, node, index, optional)
            elif t.text == "{" and isinstance(node, (Ident, Select)):
                msg = "message construction (Type{field: value}) is not supported"
                raise self.fail(node.start, t.end, msg,
                                ProblemKind.UNSUPPORTED)  # fmt: skip
            else:
                return node

    def exprlist(self, close: str) -> list[Node]:
        args: list[Node] = []
        if self.at(close):
            return args
        args.append(self.expr())
        while self.at(","):
            self.next()
            args.append(self.expr())
        return args

    def primary(self) -> Node:
        t = self.next()
        k = t.kind
        if k == "int" or k == "float":
            return self._number(t, negative=False, start=t.start)
        if k == "str":
            try:
                v = decode_string(t.text)
            except ValueError as ex:
                raise self.fail(t.start, t.end, f"syntax error: {ex}", help=_ESCAPE_HELP) from None
            if len(v) > self.limits.max_string_literal:
                raise self.fail(
                    t.start, t.end,
                    f"a text literal is too long ({len(v)} characters; the limit is "
                    f"{self.limits.max_string_literal})",
                    ProblemKind.TOO_COMPLEX,
                )  # fmt: skip
            return Lit(t.start, t.end, v)
        if k == "id":
            name = t.text
            if name == "true" or name == "false":
                return Lit(t.start, t.end, name == "true")
            if name == "null":
                return Lit(t.start, t.end, None)
            if name in RESERVED_WORDS or name == "in":
                raise self.error(t, f"'{name}' is a reserved word")
            if self.at("("):
                self.next()
                args = self.exprlist(")")
                end = self.expect(")", "')'").end
                return self.call(name, args, t.start, end)
            return Ident(t.start, t.end, name)
        if k == "op":
            if t.text == "(":
                inner = self.expr()
                self.expect(")", "')'")
                return inner
            if t.text == "[":
                return self.list_lit(t)
            if t.text == "{":
                return self.map_lit(t)
            if t.text == "." and self.peek().kind == "id":
                raise self.fail(t.start, self.peek().end, "names starting with '.' are not supported",
                                ProblemKind.UNSUPPORTED, "remove the leading '.'")  # fmt: skip
        raise self.error(t)

    def list_lit(self, open_tok: _Tok) -> Node:
        items: list[Node] = []
        optional: set[int] = set()
        while not self.at("]"):
            if self.at("?"):
                self.next()
                optional.add(len(items))
            items.append(self.expr())
            if not self.at(","):
                break
            self.next()
        end = self.expect("]", "']' or ','").end
        if len(items) > self.limits.max_list_elements:
            raise self._too_many(open_tok.start, end, len(items))
        return ListLit(open_tok.start, end, items, frozenset(optional))

    def map_lit(self, open_tok: _Tok) -> Node:
        entries: list[tuple[Node, Node, bool]] = []
        while not self.at("}"):
            optional = False
            if self.at("?"):
                self.next()
                optional = True
            key = self.expr()
            self.expect(":", "':' after a map key")
            value = self.expr()
            entries.append((key, value, optional))
            if not self.at(","):
                break
            self.next()
        end = self.expect("}", "'}' or ','").end
        if len(entries) > self.limits.max_list_elements:
            raise self._too_many(open_tok.start, end, len(entries))
        return MapLit(open_tok.start, end, entries)

    def _too_many(self, start: int, end: int, n: int) -> ParseFailure:
        return self.fail(
            start, end,
            f"a list or map literal has too many elements ({n}; the limit is "
            f"{self.limits.max_list_elements})",
            ProblemKind.TOO_COMPLEX,
        )  # fmt: skip

    # -- calls and macros ---------------------------------------------------------------------
    def call(self, name: str, args: list[Node], start: int, end: int) -> Node:
        if name == "has":
            if len(args) != 1 or not isinstance(args[0], Select) or args[0].optional:
                raise self.fail(start, end, "has() needs one field selection, e.g. has(actor.team)")
            sel = args[0]
            return Has(start, end, sel.operand, sel.field)
        return Call(start, end, name, args)

    def method(self, target: Node, name: str, args: list[Node], start: int, end: int, tok: _Tok) -> Node:
        qualified = _qualified(target)
        if qualified == "cel" and name == "bind":
            if len(args) != 3 or not isinstance(args[0], Ident):
                raise self.fail(start, end, "cel.bind() needs a variable name, a value and an expression")
            return Bind(start, end, args[0].name, args[1], args[2])
        if qualified is not None and f"{qualified}.{name}" in NAMESPACED:
            return Call(start, end, f"{qualified}.{name}", args)
        arities = _MACROS.get(name)
        if arities is None or len(args) not in arities:
            return Method(start, end, target, name, args)
        nvars = 2 if name.startswith("transform") or (name in ("all", "exists", "exists_one", "existsOne")
                                                        and len(args) == 3) else 1  # fmt: skip
        for v in args[:nvars]:
            if not isinstance(v, Ident):
                raise self.fail(v.start, v.end, f"the variables of {name}() must be simple names, "
                                f"e.g. list.{name}(x, x > 0)")  # fmt: skip
        names = [v.name for v in args[:nvars] if isinstance(v, Ident)]
        if nvars == 2 and names[0] == names[1]:
            raise self.fail(start, end, f"the two variables of {name}() must have different names")
        rest = args[nvars:]
        macro = "exists_one" if name == "existsOne" else name
        if macro in ("optMap", "optFlatMap"):
            return OptMap(start, end, target, names[0], rest[0], macro == "optFlatMap")
        flt = rest[0] if len(rest) == 2 else None
        return Comprehension(start, end, target, macro, names[0], rest[-1],
                             names[1] if nvars == 2 else None, flt)  # fmt: skip


def _qualified(n: Node) -> str | None:
    """``a.b.c`` for a select chain on an identifier, else None."""
    parts = dotted(n)
    return None if parts is None else ".".join(parts)


#: Functions whose names are qualified (``math.greatest``): parsed as global calls.
NAMESPACED = frozenset(
    {
        "math.greatest", "math.least", "math.ceil", "math.floor", "math.round", "math.trunc",
        "math.abs", "math.sign", "math.isNaN", "math.isInf", "math.isFinite", "math.bitAnd",
        "math.bitOr", "math.bitXor", "math.bitNot", "math.bitShiftLeft", "math.bitShiftRight",
        "math.sqrt",
        "strings.quote", "base64.encode", "base64.decode",
        "sets.contains", "sets.equivalent", "sets.intersects",
        "lists.range", "ip.isCanonical", "path.clean", "path.base", "path.dir",
        "optional.of", "optional.ofNonZeroValue", "optional.none",
    }
)  # fmt: skip


_BACKSPACE = re.compile(r"(?<!\\)(?:\\\\)*\\b")


def escape_warnings(text: str, limits: Limits) -> list[tuple[int, int]]:
    """Spans of ``\b`` escapes in texts that are not raw: a backspace character, almost always
    meant as a regular expression's word boundary (write ``r'\bword\b'``)."""
    if "\\b" not in text:
        return []
    try:
        toks = tokenize(text, limits)
    except ParseFailure:
        return []
    out = []
    for t in toks:
        if t.kind == "str" and t.text[:1] not in "rR" and t.text[1:2] not in "rR":
            m = _BACKSPACE.search(t.text)  # one finding per text
            if m is not None:
                out.append((t.start + m.end() - 2, t.start + m.end()))
    return out


def parse(text: str, limits: Limits) -> Node:
    """Parse and bound-check ``text``; raise ParseFailure with problems on failure."""
    n = len(text)
    if n > limits.max_length:
        raise _too_complex(
            f"the condition is too long ({n} characters; the limit is {limits.max_length})",
            n,
            "split it into several smaller conditions",
        )
    toks = tokenize(text, limits)
    if len(toks) == 1:
        raise ParseFailure([CelProblem(ProblemKind.SYNTAX, "the condition is empty", 0, n)])
    try:
        node = _Parser(text, toks, limits).parse()
    except RecursionError:
        raise _too_deep(limits, n) from None
    if depth(node) > limits.max_depth:
        raise _too_deep(limits, n)
    return node
