"""Properties of decisions over generated policies and requests (hypothesis)."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import charter
from charter.engine.policy import CompiledPolicy
from charter.state.memory import MemoryStore
from charter.state.types import StopRecord
from reference import gen  # tests/ is on sys.path: pytest imports packages under it

REQUESTS = 12
SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
Key = tuple[str, tuple[str, ...], bool]


def draw_world(data: st.DataObject) -> tuple[gen.World, gen.DrawRandom]:
    """A generated policy (only features the engine is known to get right)."""
    rng = gen.DrawRandom(data.draw)
    return gen.PolicyGen(rng, gen.SAFE_FEATURES).policy(), rng


def draw_requests(rng: gen.DrawRandom, world: gen.World, n: int = REQUESTS) -> list[dict[str, Any]]:
    """``n`` requests against the policy, one second apart."""
    return [gen.request(rng, world, i) for i in range(n)]


def decide_all(
    policy: CompiledPolicy, requests: Iterable[dict[str, Any]], stops: Iterable[tuple[str, str]] = ()
) -> list[Key]:
    """Decide the requests in order on a fresh engine; (outcome, rule ids, default deny) each."""
    store = MemoryStore()
    for scope, value in stops:
        store.set_stop(StopRecord(scope, value, "property", "test", 0.0))
    engine = charter.Engine(policy, store=store)
    out = []
    for req in requests:
        d = engine.decide(req)
        out.append((d.outcome.value, tuple(h.id for h in d.rules), d.default_deny))
    return out


def with_rules(world: gen.World, rules: list[str]) -> str:
    """The policy text with another list of rule blocks."""
    return "\n".join(world.header) + "\n\n" + "\n\n".join(rules) + "\n"


@SETTINGS
@given(st.data())
def test_default_deny_without_permits(data: st.DataObject) -> None:
    """A policy with no permit never allows."""
    world, rng = draw_world(data)
    rules = [r for r in world.rules if not r.startswith("permit")]
    policy = charter.loads(with_rules(world, rules))
    for outcome, _, _ in decide_all(policy, draw_requests(rng, world)):
        assert outcome != "allow"


@SETTINGS
@given(st.data())
def test_strictest_wins(data: st.DataObject) -> None:
    """An unconditional forbid covering every request makes every decision deny or halt."""
    world, rng = draw_world(data)
    policy = charter.loads(with_rules(world, [*world.rules, "forbid zz-forbid-all {\n}"]))
    for outcome, rules, default_deny in decide_all(policy, draw_requests(rng, world)):
        assert outcome in ("deny", "halt")
        assert not default_deny
        if outcome == "deny":
            assert "zz-forbid-all" in rules


@SETTINGS
@given(st.data())
def test_rule_and_file_order_never_matter(data: st.DataObject) -> None:
    """Shuffling rules, or splitting declarations and rules over files loaded in any order."""
    world, rng = draw_world(data)
    requests = draw_requests(rng, world)
    base = decide_all(charter.loads(world.text()), requests)
    shuffled = list(world.rules)
    rng.shuffle(shuffled)
    assert decide_all(charter.loads(with_rules(world, shuffled)), requests) == base
    items = world.header[1:] + world.rules
    files = rng.randint(2, 4)
    parts: list[list[str]] = [[] for _ in range(files)]
    for item in items:
        parts[rng.randint(0, files - 1)].append(item)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, part in enumerate(parts):
            if i and not part:
                continue  # a file with nothing in it is an error (E006), not a way to split a policy
            p = Path(tmp) / f"part{i}.charter"
            p.write_text(("policy gen\n" if i == 0 else "") + "\n\n".join(part) + "\n")
            paths.append(p)
        rng.shuffle(paths)
        assert decide_all(charter.load(paths), requests) == base


@SETTINGS
@given(st.data())
def test_duplicate_files_never_matter(data: st.DataObject) -> None:
    """Loading the same file twice (a list with the path repeated) changes nothing."""
    world, rng = draw_world(data)
    requests = draw_requests(rng, world)
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "gen.charter"
        p.write_text(world.text())
        once = charter.load(p)
        twice = charter.load([p, str(p), p])
        assert once.revision == twice.revision
        assert decide_all(twice, requests) == decide_all(once, requests)


def _content(d: Any) -> dict[str, Any]:
    out = d.to_dict()
    for volatile in ("id", "elapsed_us", "hold_id"):
        out.pop(volatile)
    # ids of the approval requests and escalations a decision opens are identifiers, like its own id
    ob = out["obligations"]
    for volatile in ("approval_id", "approval_expires_at"):
        ob.pop(volatile, None)
    if "escalation" in ob:
        ob["escalation"].pop("id", None)
    return out


@SETTINGS
@given(st.data())
def test_determinism(data: st.DataObject) -> None:
    """Same policy, requests, state and clock: the same decisions, except ids and timing. (The
    clock is the engine's: windows and holds are timed by it, never by ``context.time``.)"""
    world, rng = draw_world(data)
    requests = draw_requests(rng, world)
    policy = charter.loads(world.text())
    runs = []
    for _ in range(2):
        engine = charter.Engine(policy, store=MemoryStore(), clock=lambda: 1_800_000_000.0)
        runs.append([_content(engine.decide(r)) for r in requests])
    assert runs[0] == runs[1]


SHADOWABLE = ("permit", "forbid", "halt", "escalate", "require approval")


@SETTINGS
@given(st.data())
def test_shadow_rules_never_change_the_outcome(data: st.DataObject) -> None:
    """Adding a shadow copy of any rule leaves every outcome and deciding list unchanged."""
    world, rng = draw_world(data)
    requests = draw_requests(rng, world)
    rules = [r for r in world.rules if r.startswith(SHADOWABLE)]
    extra = []
    for i, block in enumerate(rules):
        if rng.random() < 0.5:
            block = re.sub(r"^(\S+(?: approval)?) \S+ \{", rf"\1 shadow-copy-{i} {{", block)
            block = re.sub(r"\n  mode \w+", "", block).replace("\n}", "\n  mode shadow\n}")
            extra.append(block)
    base = decide_all(charter.loads(world.text()), requests)
    assert decide_all(charter.loads(with_rules(world, world.rules + extra)), requests) == base


@SETTINGS
@given(st.data())
def test_erroring_permits_never_allow(data: st.DataObject) -> None:
    """A permit whose condition errors at run time never allows (whatever its `on error`)."""
    world, rng = draw_world(data)
    broken = [
        r.replace("\n}", "\n  when 10 / (actor.depth - actor.depth) > 1\n}") if r.startswith("permit") else r
        for r in world.rules
    ]
    policy = charter.loads(with_rules(world, broken))
    for outcome, _, _ in decide_all(policy, draw_requests(rng, world)):
        assert outcome != "allow"


@SETTINGS
@given(st.data())
def test_halt_absorbs(data: st.DataObject) -> None:
    """With a stop covering the actor, every decision is halt."""
    world, rng = draw_world(data)
    policy = charter.loads(world.text())
    requests = draw_requests(rng, world)
    stops = {("agent", r["actor"]["id"]) for r in requests}
    for outcome, rules, _ in decide_all(policy, requests, stops):
        assert outcome == "halt"
        assert len(rules) == 1 and rules[0].startswith("stop:agent:")
