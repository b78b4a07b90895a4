"""The digest binding an approval to one exact action: canonical JSON of actor, action and context."""

from __future__ import annotations

import hashlib
import json
from typing import Any

_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
# the C encoder with the same options, without JSONEncoder.encode's Python layers (None off CPython)
_C: Any = getattr(json.encoder, "c_make_encoder", None)
_ENCODE_STR: Any = json.encoder.encode_basestring


def canonical(obj: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, UTF-8, floats as repr."""
    if _C is not None:
        # markers: circular structures raise ValueError as with json.dumps
        return "".join(_C({}, str, _ENCODE_STR, None, ":", ",", True, False, True)(obj, 0))
    return _CANONICAL.encode(obj)


def action_digest(req: Any) -> str:
    """SHA-256 over the actor, delegation chain, action kind, target, arguments and context ids."""
    body = {
        "actor": req.actor_id,
        "chain": list(req.chain),
        "kind": req.kind._value_,
        "target": req.target,
        "args": req.args,
        "context": {"workflow": req.workflow, "run": req.run, "tenant": req.tenant, "env": req.env},
    }
    return hashlib.sha256(canonical(body).encode()).hexdigest()
