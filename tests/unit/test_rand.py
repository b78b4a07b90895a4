"""charter.rand: charter never draws from the caller's global ``random`` state, and a forked child
gets its own stream (nonces of two processes sharing a SQLite file must not repeat)."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

import charter
from charter.rand import nonce
from charter.state import open_store

POLICY = """
units USD
tool api { }
permit all { action call api  reason "ok" }
budget daily { scope agent  limit 1000000 USD per day  reason "budget" }
rate per-minute { scope agent  limit 1000000 per 1m  reason "rate" }
"""


def test_deciding_on_sqlite_leaves_the_global_random_state_alone(tmp_path: Path) -> None:
    engine = charter.Engine(charter.loads(POLICY), store=open_store(f"sqlite://{tmp_path / 's.db'}"))
    random.seed(1234)
    before = random.getstate()
    for i in range(300):  # enough to prune and to draw row nonces many times
        d = engine.decide({"actor": {"id": f"a{i % 3}"}, "action": {"target": "api"}, "cost": {"USD": 1.0}})
        assert d.outcome.value == "allow"
        assert engine.settle(d.id, {"USD": 0.5}).committed
    assert random.getstate() == before
    engine.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_draws_other_nonces() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first nonces, to the parent
        try:
            os.write(write, ",".join(str(nonce()) for _ in range(4)).encode())
        finally:
            os._exit(0)
    os.close(write)
    child = [int(x) for x in os.read(read, 4096).decode().split(",")]
    os.close(read)
    os.waitpid(pid, 0)
    mine = [nonce() for _ in range(4)]
    assert child != mine and all(0 <= n < 2**62 for n in child + mine)
