"""How the rules behind a decision read to people: a rule whose condition failed says so.

A rule whose condition could not be evaluated contributes its ``on error`` outcome and is listed
among the deciding rules with an ``error``. Shown like any other deciding rule it would read as
the reason for the decision (``DENY  permit a: Readers read.``), which is false: the permit did
not deny anything, its condition failed and the failure mode did. Every place that shows a
decision without ``--explain`` (``charter eval``, ``charter trace list``, the demo, test
failures, the guard and the integrations' messages to the model) words hits through here.

Works on :class:`~charter.engine.decision.RuleHit` objects and on their JSON form (trace records).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from charter.diagnostics import escape_controls

__all__ = ["decision_reasons", "failed", "hit_line", "hit_tag", "reason_text", "reasons_text"]

#: the engine words a condition error as ``condition 'TEXT': MESSAGE`` (engine/evaluate.py)
_CONDITION = re.compile(r"^condition '(?P<text>.*)': (?P<msg>.*)$", re.DOTALL)
#: how much of an error one line shows
MAX_ERROR = 300


def _one_line(text: str) -> str:
    """An error message as one printable line: control characters escaped, long ones cut, so
    text from a request can never forge a second line of output."""
    out = escape_controls(text)
    return out if len(out) <= MAX_ERROR else out[: MAX_ERROR - 1] + "…"


def _get(hit: Any, name: str) -> Any:
    if isinstance(hit, Mapping):
        return hit.get(name)
    value = getattr(hit, name, None)
    return getattr(value, "value", value)  # Outcome -> "deny"


def failed(hit: Any) -> bool:
    """True when the rule did not hold or fail to hold: its condition could not be evaluated."""
    return bool(_get(hit, "error"))


def _failure(hit: Any) -> str:
    """``condition args.y == "z" failed: no such key: 'y' (on error deny)``."""
    error = _one_line(str(_get(hit, "error")))
    effect = str(_get(hit, "effect") or "deny").replace("_", " ")
    m = _CONDITION.match(error)
    what = f"condition {m['text']} failed: {m['msg']}" if m else f"condition failed: {error}"
    return f"{what} (on error {effect})"


def hit_line(hit: Any) -> str:
    """One line per deciding rule: ``permit a: REASON``, or, when its condition failed,
    ``permit a — condition args.y == "z" failed: no such key: 'y' (on error deny)``."""
    head = f"{_get(hit, 'kind')} {_get(hit, 'id')}"
    if failed(hit):
        return f"{head} — {_failure(hit)}"
    return f"{head}: {_get(hit, 'reason') or '(no reason given)'}"


def hit_tag(hit: Any) -> str:
    """The rule id for a compact list: ``a``, or ``a (condition failed)``."""
    rid = str(_get(hit, "id"))
    return f"{rid} (condition failed)" if failed(hit) else rid


def reason_text(hit: Any) -> str:
    """The reason a person (or a model) reads: the rule's reason, or what failed and what it took."""
    if failed(hit):
        return f"rule {_get(hit, 'id')}: {_failure(hit)}"
    return str(_get(hit, "reason") or "")


def reasons_text(hits: Iterable[Any], default_deny: bool = False, fallback: str = "") -> str:
    """The reasons of the enforced deciding rules joined with ``; `` (shadow hits left out)."""
    text = "; ".join(r for h in hits if not _get(h, "shadow") and (r := reason_text(h)))
    return text or ("no rule permits it (default deny)" if default_deny else fallback)


def decision_reasons(decision: Any) -> str:
    """A decision's reasons in one line, for a message to a model or a person: the deciding rules'
    reasons, else default deny, else the outcome."""
    return reasons_text(decision.rules, decision.default_deny, decision.outcome.value)
