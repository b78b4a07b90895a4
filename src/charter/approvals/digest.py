"""The digest binding an approval to one exact action: everything the decision depended on, canonical JSON."""

from __future__ import annotations

import hashlib
from typing import Any

from charter.jsonenc import compact_encoder

#: Canonical JSON: sorted keys, no spaces, UTF-8, floats as repr; circular structures raise
#: ValueError as with json.dumps.
canonical = compact_encoder(sort_keys=True, default=str, check_circular=True)


def action_digest(req: Any) -> str:
    """SHA-256 over everything a decision on ``req`` (a validated request) may depend on.

    The actor (id, roles, attributes, delegation chain, human), the action (kind, target,
    arguments, provenance labels), the context (its ids and every other field), the cost and the
    signals. Left out: the context's ``time``, the approval id, the idempotency key and the trace
    id, which a resubmission legitimately changes.

    INVARIANT: an answer given for one request is unusable for any other: an approved 500 USD
    payment resubmitted with ``cost {"USD": 1}``, other labels or another context is refused.
    """
    body = {
        "actor": req.actor_id,
        "roles": sorted(req.roles),
        "attributes": req.attributes,
        "chain": list(req.chain),
        "human": req.human,
        "kind": req.kind._value_,
        "target": req.target,
        "args": req.args,
        "labels": {k: list(v) for k, v in req.labels.items()},
        "context": {"workflow": req.workflow, "run": req.run, "tenant": req.tenant, "env": req.env},
        "context_fields": req.context_extra,
        "cost": req.cost,
        "signals": [dict(s) for s in req.signals],
    }
    return hashlib.sha256(canonical(body).encode()).hexdigest()
