"""Completion: keywords that fit where the cursor is, declared names, CEL roots, fields and functions."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from charter.cel import CelType
from charter.compiler.resolve import ALLOWED, Symbols
from charter.compiler.typecheck import SIGNAL_FIELDS, Environments, args_type, environments
from charter.editing.cel_catalog import CATALOG, CelForm
from charter.editing.context import BlockKind, CursorContext, analyse
from charter.editing.symbols import SymbolIndex, SymbolKind
from charter.editing.text import WORD
from charter.enums import Calendar, RuleKind, Scope, Severity


class ItemKind(enum.Enum):
    """What a completion offers (the shell maps it to the editor's icons)."""

    KEYWORD = "keyword"
    SNIPPET = "snippet"
    SYMBOL = "symbol"
    FIELD = "field"
    FUNCTION = "function"
    METHOD = "method"
    VALUE = "value"


@dataclass(frozen=True)
class Item:
    """One completion: what is shown, what is inserted (a snippet when ``snippet``)."""

    label: str
    kind: ItemKind
    detail: str = ""
    insert: str | None = None
    snippet: bool = False
    symbol: SymbolKind | None = None


@dataclass(frozen=True)
class Completions:
    """The items, and the [start, end) offsets of the text they replace (the word being typed)."""

    items: list[Item]
    start: int
    end: int


_TOP = [
    "policy", "include", "units", "roles", "attribute", "context", "agents from", "agent", "tool",
    "group", "signal", "rank", "stops", "escalation", "mask", "hash",
]  # fmt: skip
_SNIPPETS = {
    "permit": 'permit ${1:id} {\n  actor role ${2:role}\n  action call ${3:tool}\n  reason "${4:why}"\n}',
    "forbid": 'forbid ${1:id} {\n  action call ${2:tool}\n  when ${3:condition}\n  reason "${4:why}"\n}',
    "halt": "halt ${1:id} {\n  action call ${2:tool}\n  when ${3:condition}\n  stop ${4:agent}\n"
    '  reason "${5:why}"\n}',
    "escalate": "escalate ${1:id} {\n  action call ${2:tool}\n  signal ${3:kind}\n  to ${4:chain}\n"
    '  reason "${5:why}"\n}',
    "require approval": "require approval ${1:id} {\n  action call ${2:tool}\n  when ${3:condition}\n"
    '  approvers ${4:group}\n  reason "${5:why}"\n}',
    "budget": "budget ${1:id} {\n  scope ${2:agent}\n  limit ${3:50} ${4:USD} per ${5:day}\n"
    '  reason "${6:why}"\n}',
    "rate": "rate ${1:id} {\n  scope ${2:agent}\n  action call ${3:tool}\n  limit ${4:30} per ${5:1m}\n"
    '  reason "${6:why}"\n}',
    "tripwire": "tripwire ${1:id} {\n  trigger repeated call more than ${2:5} times within ${3:2m}\n"
    '  then halt agent\n  reason "${4:why}"\n}',
    "on result": "on result ${1:id} {\n  action call ${2:tool}\n  when ${3:result.failed}\n"
    '  then halt agent\n  reason "${4:why}"\n}',
    "tool": "tool ${1:name} {\n  category ${2:category}\n  arg ${3:name}: ${4:string}\n}",
    "group": "group ${1:name} {\n  members ${2:alice}\n}",
    "escalation": "escalation ${1:name} {\n  to ${2:group} for ${3:1h}\n  finally deny\n}",
}
#: How each clause is written (resolve.ALLOWED names clauses; some take more than one word).
_CLAUSE_TEXT = {
    "on error": "on error",
    "on timeout": "on timeout",
    "on exceed": "on exceed",
    "separation of duties": "separation of duties",
    "expires after": "expires after",
}
_OUTCOMES = ["allow", "deny", "halt", "escalate", "require approval", "ignore"]
_TRIGGERS = [
    "repeated call more than N times within DURATION",
    "delegation depth more than N",
    "ping-pong more than N times within DURATION",
    "spend more than AMOUNT UNIT within DURATION",
    "fan-out more than N within DURATION",
    "denied more than N times within DURATION",
]
_TYPES = ["int", "double", "number", "string", "bool", "timestamp", "duration", "any", "list of", "map of"]
_DECL_CLAUSES = {
    BlockKind.TOOL: ["category", "tags", "arg"],
    BlockKind.AGENT: ["role", "parent"],
    BlockKind.GROUP: ["members"],
    BlockKind.SIGNAL: ["from", "clears"],
    BlockKind.ESCALATION: ["to", "finally"],
    BlockKind.STOPS: ["operators", "resume requires"],
}
_CEL_TAIL = re.compile(r"((?:[A-Za-z_][A-Za-z0-9_]*\s*\.\s*)*)([A-Za-z_][A-Za-z0-9_]*)?$")
_MACRO_VAR = re.compile(
    r"([A-Za-z_][A-Za-z0-9_.]*)\s*\.\s*(?:all|exists|exists_one|map|filter)\(\s*([A-Za-z_]\w*)\s*,"
)


def complete(text: str, offset: int, index: SymbolIndex | None, symbols: Symbols | None) -> Completions:
    """Completions at ``offset`` in ``text``; ``index`` and ``symbols`` come from the last compile."""
    ctx = analyse(text, offset)
    word = _word_start(text, offset, ctx.in_condition)
    if ctx.in_literal:
        return Completions([], word, offset)
    prefix = text[word:offset]
    line_before = ctx.line[: len(ctx.line) - len(prefix)]
    items = _cel(ctx, index, symbols) if ctx.in_condition else _language(ctx, line_before, index)
    if prefix:
        low = prefix.lower()
        items = [i for i in items if i.label.lower().startswith(low)]
    return Completions(items, word, offset)


def _word_start(text: str, offset: int, cel: bool) -> int:
    i = offset
    allowed = re.compile(r"[A-Za-z0-9_]" if cel else r"[A-Za-z0-9_.\-]")
    while i > 0 and allowed.match(text[i - 1]):
        i -= 1
    return i


def _names(index: SymbolIndex | None, kind: SymbolKind, detail: str | None = None) -> list[Item]:
    if index is None:
        return []
    return [Item(n, ItemKind.SYMBOL, detail or kind.value, symbol=kind) for n in index.names(kind)]


def _keywords(words: Iterable[str], detail: str = "keyword") -> list[Item]:
    return [Item(w, ItemKind.KEYWORD, detail) for w in words]


def _language(ctx: CursorContext, line_before: str, index: SymbolIndex | None) -> list[Item]:
    words = [w.rstrip(",") for w in line_before.split()]
    if ctx.block is BlockKind.TOP:
        return _top(words)
    if ctx.block is BlockKind.RULE and ctx.rule is not None:
        return _rule(ctx.rule, _clause_words(words), index)
    if ctx.block in _DECL_CLAUSES:
        return _declaration(ctx.block, _clause_words(words), index)
    return []


def _clause_words(words: list[str]) -> list[str]:
    """The words of the clause being written (one-line blocks hold several clauses on a line)."""
    starts = {"actor", "action", "when", "unless", "signal", "after", "before", "reason", "mode",
              "approvers", "quorum", "separation", "expires", "to", "severity", "stop", "scope",
              "limit", "timezone", "trigger", "then", "category", "tags", "arg", "members", "from",
              "clears", "finally", "operators", "resume", "role", "parent"}  # fmt: skip
    last = 0
    for i, w in enumerate(words):
        if w in starts and not (i and words[i - 1] in ("actor", "action", "delegate", "on", "halt")):
            last = i
        if w == "on" and (i + 1 == len(words) or words[i + 1] in ("error", "timeout", "exceed")):
            last = i
    return words[last:]


def _top(words: list[str]) -> list[Item]:
    if not words:
        snippets = [Item(k, ItemKind.SNIPPET, "rule" if k not in _TOP else "declaration", v, True)
                    for k, v in _SNIPPETS.items()]  # fmt: skip
        return _keywords(_TOP) + snippets
    if words == ["require"]:
        return _keywords(["approval"])
    if words == ["on"]:
        return _keywords(["result"])
    if words == ["agents"]:
        return _keywords(["from"])
    return []


def _rule(kind: RuleKind, words: list[str], index: SymbolIndex | None) -> list[Item]:
    if not words:
        allowed = sorted(_CLAUSE_TEXT.get(c, c) for c in ALLOWED[kind])
        return _keywords(allowed, f"clause of a {kind.value} rule")
    head, rest = words[0], words[1:]
    if head == "actor":
        if not rest:
            return _keywords(["any", "role", "agent"])
        return _names(index, SymbolKind.ROLE if rest[0] == "role" else SymbolKind.AGENT)
    if head in ("action", "after", "before"):
        return _target(head, rest, index)
    if head == "approvers":
        return _names(index, SymbolKind.GROUP)
    if head == "to":
        return _names(index, SymbolKind.ESCALATION) + _names(index, SymbolKind.GROUP)
    if head == "signal":
        return _names(index, SymbolKind.SIGNAL) if not rest else _keywords(["where"])
    if head in ("scope", "stop") and not rest:
        return [Item(s.value, ItemKind.VALUE, "scope") for s in Scope]
    if head == "scope" and len(rest) == 1:
        return _keywords(["by"], "count per an argument's value too")
    if head == "scope" and rest[-1] == "by":
        args = sorted({n.partition("/")[2] for n in index.names(SymbolKind.TOOL_ARG)}) if index else []
        return [Item(f"args.{a}", ItemKind.SYMBOL, "tool argument") for a in args] or _keywords(["args."])
    if head == "mode":
        return _keywords(["enforce", "shadow"])
    if head == "severity":
        return [Item(s.value, ItemKind.VALUE, "severity") for s in Severity]
    if head == "separation":
        return _keywords(["of duties on", "of duties off"])
    if head == "expires":
        return _keywords(["after"])
    if head == "limit":
        if rest and rest[-1] == "per":
            return [Item(c.value, ItemKind.VALUE, "calendar window") for c in Calendar]
        if len(rest) == 1:
            return _names(index, SymbolKind.UNIT) + _keywords(["per"])
        return _keywords(["per"]) if len(rest) == 2 else []
    if head == "trigger":
        return [Item(t, ItemKind.SNIPPET, "trigger", _trigger_snippet(t), True) for t in _TRIGGERS]
    if head == "on" and not rest:
        return _keywords(sorted(c.split()[1] for c in ALLOWED[kind] if c.startswith("on ")))
    if head in ("on", "then"):
        if rest and rest[-1] == "from":
            return _names(index, SymbolKind.GROUP)
        if rest and rest[-1] == "halt":
            return [Item(s.value, ItemKind.VALUE, "scope") for s in Scope]
        return _keywords(_OUTCOMES + (["label"] if kind is RuleKind.RESULT else []), "outcome")
    return []


def _trigger_snippet(form: str) -> str:
    n = iter(range(1, 10))
    return re.sub(r"\b(N|DURATION|AMOUNT|UNIT)\b", lambda m: f"${{{next(n)}:{m.group(1)}}}", form)


def _target(head: str, rest: list[str], index: SymbolIndex | None) -> list[Item]:
    kinds = (
        ["any", "call", "delegate", "model", "message"]
        if head == "action"
        else ["call", "delegate", "labelled"]
    )
    if not rest:
        return _keywords(kinds)
    verb, names = rest[0], rest[1:]
    if names and names[0] in ("tagged", "category", "role"):
        return _names(
            index,
            {"tagged": SymbolKind.TAG, "category": SymbolKind.CATEGORY, "role": SymbolKind.ROLE}[names[0]],
        )
    if verb == "call":
        extra = _keywords(["any", "tagged", "category"]) if not names else []
        return extra + _names(index, SymbolKind.TOOL, "tool")
    if verb == "delegate":
        extra = _keywords(["any", "role"]) if not names else []
        return extra + _names(index, SymbolKind.AGENT)
    return []


def _declaration(block: BlockKind, words: list[str], index: SymbolIndex | None) -> list[Item]:
    if not words:
        items = _keywords(_DECL_CLAUSES[block])
        if block is BlockKind.AGENT:
            items += _names(index, SymbolKind.ATTRIBUTE)
        return items
    head = words[0]
    if block is BlockKind.TOOL:
        if head == "category":
            return _names(index, SymbolKind.CATEGORY)
        if head == "tags":
            return _names(index, SymbolKind.TAG)
        if head == "arg" and (len(words) >= 3 or (len(words) == 2 and words[1].endswith(":"))):
            return _keywords(_TYPES, "type")
        return []
    if head == "role":
        return _names(index, SymbolKind.ROLE)
    if head == "parent":
        return _names(index, SymbolKind.AGENT)
    if head == "to" or head == "operators":
        return _names(index, SymbolKind.GROUP)
    if head == "finally":
        return _keywords(_OUTCOMES, "outcome")
    if head == "from":
        return _names(index, SymbolKind.SIGNAL_SOURCE) + _names(index, SymbolKind.ROLE)
    if head == "resume":
        return _keywords(["requires"])
    return []


# ---- conditions ------------------------------------------------------------------------------
_METHODS_BY_KIND: dict[str, list[str]] = {}
for _f in CATALOG:
    for _kind in _f.receivers:
        if _f.form is not CelForm.FUNCTION and _f.name not in _METHODS_BY_KIND.setdefault(_kind, []):
            _METHODS_BY_KIND[_kind].append(_f.name)


def rule_environment(
    block_text: str, rule: RuleKind | None, index: SymbolIndex | None, symbols: Symbols | None
) -> dict[str, CelType]:
    """The CEL roots a condition in this rule sees (``args`` typed by the tools it selects)."""
    if symbols is None:
        return {}
    envs: Environments = environments(symbols)
    tools = _tools(block_text, index)
    env = envs.base(*args_type(tools, envs))
    if rule is RuleKind.RESULT:
        money = CelType.MAP(CelType.STRING, CelType.DOUBLE)
        fields = {"outcome": CelType.STRING, "failed": CelType.BOOL, "cost": money}
        env["result"] = CelType.OBJECT({**fields, "labels": CelType.LIST(CelType.STRING)})
        env["estimate"] = money
    return env


def _tools(block_text: str, index: SymbolIndex | None) -> list[str] | None:
    m = re.search(r"(?:^|\s)action\s+call\s+([^\n]*)", block_text)
    if m is None:
        return None
    words = [w for w in re.split(r"[\s,]+", m.group(1)) if w]
    out: list[str] = []
    mode = "name"
    for w in words:
        if w in ("tagged", "category"):
            mode = w
            continue
        if not WORD.fullmatch(w) or w in ("when", "unless", "reason", "actor"):
            break
        if mode == "name":
            out.append(w)
        elif index is not None:
            out.extend((index.tags if mode == "tagged" else index.categories).get(w, []))
    return out or None


def member_type(env: dict[str, CelType], path: Sequence[str]) -> CelType | None:
    """The type of a dotted path in an environment (None when unknown)."""
    if not path or path[0] not in env:
        return None
    t: CelType | None = env[path[0]]
    for name in path[1:]:
        if t is None:
            return None
        if t.kind == "object" and t.fields is not None and name in t.fields:
            t = t.fields[name]
        elif t.kind == "map":
            t = t.val
        else:
            return None
    return t


def _cel(ctx: CursorContext, index: SymbolIndex | None, symbols: Symbols | None) -> list[Item]:
    env = rule_environment(ctx.block_text, ctx.rule, index, symbols)
    if ctx.line.lstrip().startswith("signal") or " where " in ctx.line:
        env.update(SIGNAL_FIELDS)
    for m in _MACRO_VAR.finditer(ctx.condition):
        receiver = member_type(env, [p.strip() for p in m.group(1).split(".")])
        if receiver is not None and receiver.kind == "list" and receiver.elem is not None:
            env[m.group(2)] = receiver.elem
    tail = _CEL_TAIL.search(ctx.condition)
    dotted = tail.group(1) if tail else ""
    if dotted:
        path = [p.strip() for p in dotted.rstrip().rstrip(".").split(".")]
        t = member_type(env, path)
        if t is None:
            return _methods(None)
        items: list[Item] = []
        if t.kind == "object" and t.fields:
            items = [Item(n, ItemKind.FIELD, str(ft)) for n, ft in sorted(t.fields.items())]
        elif path == ["cost"] or path == ["estimate"]:
            items = _names(index, SymbolKind.UNIT)
        return items + _methods(t)
    roots = [Item(n, ItemKind.FIELD, str(t)) for n, t in sorted(env.items())]
    funcs = [Item(f.name, ItemKind.FUNCTION, f.signature, f"{f.name}($1)", True)
             for f in CATALOG if f.form is CelForm.FUNCTION or f.name == "has"]  # fmt: skip
    return roots + funcs + _keywords(["true", "false", "null", "in"], "literal")


def _methods(t: CelType | None) -> list[Item]:
    names = (
        _METHODS_BY_KIND.get(t.kind, [])
        if t is not None
        else [f.name for f in CATALOG if f.form is not CelForm.FUNCTION and f.name != "has"]
    )
    by = {f.name: f for f in CATALOG}
    out = []
    for n in names:
        f = by[n]
        snippet = f"{n}(${{1:x}}, $2)" if f.form is CelForm.MACRO else f"{n}($1)"
        out.append(Item(n, ItemKind.METHOD, f.signature, snippet, True))
    return out
