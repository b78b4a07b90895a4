"""Property: a policy with constants and named conditions decides exactly as the same policy with
every constant and call written out by hand (hypothesis over requests)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import charter
from charter.engine.engine import Engine

NAMED = """
const org = "lumen.example"
const members: set of string = ["amir", "beth", "chen"]
const cap = 100.0
condition colleague(a: string) = a.endsWith("@" + org)
condition known(n: string, among: set of string) = n in among
condition small(x: double, limit: double) = x >= 0.0 && x <= limit
condition all_ok(xs: list of string) = xs.size() > 0 && xs.all(a, colleague(a) || known(a, members))
tool t.x { arg to: list of string  arg who: string  arg amount: double }
permit p {
  action call t.x
  when all_ok(args.to) && small(args.amount, cap)
  reason "r"
}
forbid f {
  action call t.x
  when args.to.exists(a, !colleague(a)) && !known(args.who, members)
  reason "r"
}
"""

WRITTEN = """
tool t.x { arg to: list of string  arg who: string  arg amount: double }
permit p {
  action call t.x
  when args.to.size() > 0 &&
    args.to.all(a, a.endsWith("@" + "lumen.example") || a in ["amir", "beth", "chen"]) &&
    args.amount >= 0.0 && args.amount <= 100.0
  reason "r"
}
forbid f {
  action call t.x
  when args.to.exists(a, !a.endsWith("@" + "lumen.example")) && !(args.who in ["amir", "beth", "chen"])
  reason "r"
}
"""

_NAMES = st.sampled_from(
    ["amir", "beth", "zed", "amir@lumen.example", "x@evil.example", "", "@lumen.example"]
)
_ARGS = st.fixed_dictionaries(
    {
        "to": st.lists(_NAMES, max_size=4),
        "who": _NAMES,
        "amount": st.floats(min_value=-10.0, max_value=200.0, allow_nan=False),
    }
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(args=_ARGS)
def test_named_and_written_out_decide_alike(args: dict[str, Any]) -> None:
    named, written = _ENGINES
    one = named.decide({"actor": {"id": "a"}, "action": {"kind": "call", "target": "t.x", "args": args}})
    two = written.decide({"actor": {"id": "a"}, "action": {"kind": "call", "target": "t.x", "args": args}})
    assert one.outcome is two.outcome
    assert [h.id for h in one.rules] == [h.id for h in two.rules]
    assert [f.where for f in one.failures] == [f.where for f in two.failures]


_ENGINES = (Engine(charter.loads(NAMED)), Engine(charter.loads(WRITTEN)))
