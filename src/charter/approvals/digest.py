"""The digest binding an approval to one exact action: canonical JSON of actor, action and context."""

from __future__ import annotations

import hashlib
from typing import Any

from charter.jsonenc import compact_encoder

#: Canonical JSON: sorted keys, no spaces, UTF-8, floats as repr; circular structures raise
#: ValueError as with json.dumps.
canonical = compact_encoder(sort_keys=True, default=str, check_circular=True)


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
