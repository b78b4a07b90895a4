"""bench/floor.py's straight-line check is a fair yardstick: it accepts the engine bench's
requests, and it refuses every mutation of them that the validator refuses (so its instruction
count is a floor for checking that shape, not the cost of checking less)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from bench.floor import straight_check
from bench.workload import build_requests, build_world

from charter.engine.validate import validate_request
from charter.errors import RequestError


def _requests() -> list[dict[str, Any]]:
    world = build_world(14)
    return [
        {
            "actor": {
                "id": r["agent"],
                "roles": [world.agents[r["agent"]]["role"]],
                "attributes": {"clearance": 2},
            },
            "action": {"kind": "call", "target": r["tool"], "args": {"amount": r["amount"]}},
            "context": {"env": r["env"]},
        }
        for r in build_requests(world)[:50]
    ]


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(d: dict[str, Any]) -> None:
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value

    return mutate


MUTATIONS = {
    "nan amount": _set(("action", "args", "amount"), float("nan")),
    "inf clearance": _set(("actor", "attributes", "clearance"), float("-inf")),
    "2**63 amount": _set(("action", "args", "amount"), 2**63),
    "list amount": _set(("action", "args", "amount"), [1]),
    "bytes amount": _set(("action", "args", "amount"), b"1"),
    "long id": _set(("actor", "id"), "a" * 257),
    "empty id": _set(("actor", "id"), ""),
    "int target": _set(("action", "target"), 7),
    "long role": _set(("actor", "roles"), ["r" * 257]),
    "int key": _set(("action", "args"), {1: 2}),
    "env list": _set(("context", "env"), ["prod"]),
    "kind": _set(("action", "kind"), "teleport"),
    "long text": _set(("action", "args", "amount"), "x" * 262145),
    "many args": _set(("action", "args"), {f"k{i}": i for i in range(65)}),
}


def test_accepts_the_workload() -> None:
    for r in _requests():
        assert straight_check(r) is not None
        validate_request(r)


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_refuses_what_the_validator_refuses(name: str) -> None:
    r = copy.deepcopy(_requests()[0])
    MUTATIONS[name](r)
    try:
        validate_request(r)
    except RequestError:
        assert straight_check(r) is None, name
    else:
        # other shapes the validator takes (a container, more than 64 values: its deep check);
        # the yardstick knows one flat shape and refuses them
        assert name in OTHER_SHAPES
        assert straight_check(r) is None


OTHER_SHAPES = {"list amount", "many args"}
