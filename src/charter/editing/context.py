"""Where the cursor is, read from the text alone (it may not parse while someone types).

The scan skips strings and comments, tracks the blocks opened by ``{`` with the header that
opened each (``permit pay {``, ``tool kb.read {``), and finds the clause the cursor's line is in.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from charter.enums import RuleKind


class BlockKind(enum.Enum):
    """What a ``{ ... }`` block is."""

    TOP = "top"
    RULE = "rule"
    TOOL = "tool"
    AGENT = "agent"
    GROUP = "group"
    SIGNAL = "signal"
    ESCALATION = "escalation"
    STOPS = "stops"
    OTHER = "other"


_RULE_HEADS: dict[str, RuleKind] = {
    "permit": RuleKind.PERMIT,
    "forbid": RuleKind.FORBID,
    "halt": RuleKind.HALT,
    "escalate": RuleKind.ESCALATE,
    "require": RuleKind.APPROVAL,
    "budget": RuleKind.BUDGET,
    "rate": RuleKind.RATE,
    "tripwire": RuleKind.TRIPWIRE,
    "on": RuleKind.RESULT,
}
_DECL_HEADS = {
    "tool": BlockKind.TOOL,
    "agent": BlockKind.AGENT,
    "group": BlockKind.GROUP,
    "signal": BlockKind.SIGNAL,
    "escalation": BlockKind.ESCALATION,
    "stops": BlockKind.STOPS,
}
_CEL_START = re.compile(r"(?:^|\s)(when|unless|where)\s")


@dataclass(frozen=True)
class CursorContext:
    """What surrounds the cursor."""

    block: BlockKind
    #: the rule kind, inside a rule block
    rule: RuleKind | None
    #: the block's text from its ``{`` to the cursor (clauses written so far)
    block_text: str
    #: the cursor's line up to the cursor (for one-line blocks: from the block's ``{``)
    line: str
    #: True inside a condition (``when``, ``unless``, ``where``)
    in_condition: bool
    #: the condition's text up to the cursor
    condition: str
    #: True inside a string or a comment (nothing to complete)
    in_literal: bool


_EVENT = re.compile(r'[#"{}\n]')


def analyse(text: str, offset: int) -> CursorContext:
    """The context of the cursor at ``offset`` in ``text`` (linear in the text before it)."""
    offset = max(0, min(offset, len(text)))
    stack: list[tuple[str, int]] = []  # (header, offset after '{')
    in_literal = False
    stmt_start = 0
    pos = 0
    while True:
        m = _EVENT.search(text, pos, offset)
        if m is None:
            break
        ch, i = m.group(), m.start()
        if ch == "#":
            nl = text.find("\n", i)
            if nl < 0 or nl >= offset:
                in_literal = True
                break
            pos = nl
            continue
        if ch == '"':
            j = i + 1
            while j < len(text) and text[j] not in '"\n':
                j += 2 if text[j] == "\\" else 1
            if j >= offset:
                in_literal = True
                break
            pos = j + 1
            continue
        if ch == "{":
            stack.append((text[stmt_start:i].strip(), i + 1))
            stmt_start = i + 1
        elif ch == "}":
            if stack:
                stack.pop()
            stmt_start = i + 1
        elif not stack:
            stmt_start = i + 1
        pos = i + 1
    line_start = text.rfind("\n", 0, offset) + 1
    header, body_start = stack[-1] if stack else ("", 0)
    line = text[max(line_start, body_start if stack else 0) : offset]
    block, rule = _block(header) if stack else (BlockKind.TOP, None)
    if len(stack) > 1:
        block, rule = BlockKind.OTHER, None
    cel = _CEL_START.search(line) if block is BlockKind.RULE else None
    return CursorContext(
        block=block,
        rule=rule,
        block_text=text[body_start:offset] if stack else "",
        line=line,
        in_condition=cel is not None,
        condition=line[cel.end() :] if cel is not None else "",
        in_literal=in_literal,
    )


def _block(header: str) -> tuple[BlockKind, RuleKind | None]:
    words = header.split()
    if not words:
        return BlockKind.OTHER, None
    head = words[0]
    if head in _RULE_HEADS and not (head == "on" and (len(words) < 2 or words[1] != "result")):
        return BlockKind.RULE, _RULE_HEADS[head]
    return _DECL_HEADS.get(head, BlockKind.OTHER), None
