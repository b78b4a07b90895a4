"""Trace records: what a decision or event record holds, redaction, canonical JSON and hashing."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from charter.telemetry import w3c_trace_id
from charter.text import text_ok

SCHEMA_VERSION = 1
GENESIS = "0" * 64
REDACTED = "[redacted]"


def canonical(obj: Any) -> str:
    """Canonical JSON (sorted keys, compact, UTF-8); the text that is hashed and stored.

    A record holding a surrogate code point (a Python caller's ``str`` can; no UTF-8 text can)
    is written with every non-ASCII character escaped (``\\ud800``): JSON that reads back to the
    same strings, where the UTF-8 form would fail to encode, and with it the whole batch of
    records and every later append (TraceLog's sticky failure). Verification hashes the stored
    text, so either form verifies.
    """
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_plain)
    if not text_ok(text):
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=_plain)
    return text


def _plain(value: Any) -> Any:
    # INVARIANT: records hold plain JSON only, never reprs of internal objects.
    msg = getattr(value, "message", None)
    if msg is not None:
        return f"error: {msg}"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "value"):
        return value.value
    return str(value)


def link(prev: str, body: str) -> str:
    """The hash chaining a record body to the previous record's hash."""
    return hashlib.sha256(f"{prev}\n{body}".encode()).hexdigest()


def redact(request: dict[str, Any], secret_args: Mapping[str, frozenset[str]]) -> dict[str, Any]:
    """The request with arguments the policy marks secret replaced by a marker."""
    action = request.get("action", {})
    secrets = secret_args.get(action.get("target", ""), frozenset())
    if secrets and action.get("args"):
        action = dict(action)
        action["args"] = {k: (REDACTED if k in secrets else v) for k, v in action["args"].items()}
        request = dict(request)
        request["action"] = action
    return request


def _before_after(b: dict[str, Any]) -> dict[str, Any]:
    if b.get("kind") == "budget" and b.get("amount") is not None:
        before = float(b.get("used") or 0) + float(b.get("reserved") or 0)
        b = dict(b)
        b["before"] = round(before, 6)
        b["after"] = round(before + float(b["amount"]), 6) if b.get("ok") else round(before, 6)
    return b


def decision_record(
    decision: dict[str, Any], request: dict[str, Any], at: float, secret_args: Mapping[str, frozenset[str]]
) -> dict[str, Any]:
    """The record of one decision (request redacted, budgets with before/after values)."""
    req = redact(request, secret_args)
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "decision",
        "id": decision["id"],
        "at": at,
        "revision": decision["revision"],
        "agent": req.get("actor", {}).get("id"),
        "request": req,
        "outcome": decision["outcome"],
        "rules": decision["rules"],
        "default_deny": decision["default_deny"],
        "boundaries": [_before_after(b) for b in decision["boundaries"]],
        "evidence": decision.get("evidence", {}),
        "signals": req.get("signals", []),
        "shadow": decision["shadow"],
        "failures": decision["failures"],
        "obligations": decision["obligations"],
        "latency_us": decision["elapsed_us"],
        "trace_id": w3c_trace_id(req.get("trace_id")),
    }


def event_record(kind: str, payload: Mapping[str, Any], at: float, ref: str | None) -> dict[str, Any]:
    """The record of a settlement, approval, escalation, stop or resume event."""
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "id": f"{kind}:{payload.get('id') or payload.get('decision_id') or ''}:{at:.6f}",
        "at": at,
        "ref": ref,
        "event": dict(payload),
    }


#: The index columns stored beside each record body, in storage order. Readers filter on them
#: (``trace list --outcome deny``), so each must equal what the hashed body says: verify and every
#: read check them with :func:`index_problem`.
INDEX_COLUMNS = ("id", "kind", "at", "outcome", "agent", "rules", "ref")


def index_of(rec: Mapping[str, Any]) -> tuple[Any, ...]:
    """The index columns of a record, derived from its body (the only way they are made)."""
    rules = " ".join(r["id"] for r in rec.get("rules", []))
    return (rec["id"], rec["kind"], rec["at"], rec.get("outcome"), rec.get("agent"), rules, rec.get("ref"))


def index_problem(
    seq: Any, body: str, columns: tuple[Any, ...], parsed: Mapping[str, Any] | None = None
) -> str | None:
    """Why a stored row's index columns disagree with its hashed body (an edit), or None;
    ``parsed`` is ``json.loads(body)`` when the caller has it already (it is not parsed again)."""
    try:
        derived = index_of(parsed if parsed is not None else json.loads(body))
    except (ValueError, TypeError, KeyError, AttributeError):
        return f"record {seq} has a body that is not a trace record"
    for name, stored, want in zip(INDEX_COLUMNS, columns, derived, strict=True):
        if stored != want and not (name == "at" and _same_float(stored, want)):
            return (
                f"record {seq} was altered: its {name!r} column says {stored!r} "
                f"but its hashed body says {want!r}"
            )
    return None


def _same_float(a: Any, b: Any) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False
