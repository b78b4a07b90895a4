"""Several `charter serve` replicas writing ONE trace chain in PostgreSQL (`--trace postgresql://...`)."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from charter.client import Client
from charter.enums import Outcome
from charter.trace import verify_log
from charter.trace.log import query

from .conftest import secret, write_policy
from .procs import PG_DSN, pg_cleanup, port_open, start_all

pytestmark = pytest.mark.slow

REPLICAS, CLIENTS, PER_CLIENT = 3, 12, 40


def test_replicas_append_to_one_postgresql_chain(tmp_path: Path) -> None:
    if not port_open("127.0.0.1", 5432):
        pytest.skip("PostgreSQL server not reachable at 127.0.0.1:5432")
    tag = f"charter_trc_{uuid.uuid4().hex[:10]}"
    store = f"{PG_DSN}?schema={tag}"
    trace = f"{PG_DSN}?schema={tag}&key={tmp_path / 'trace.key'}"
    procs = start_all(
        REPLICAS, write_policy(tmp_path / "policy"), store, tmp_path, "--poll", "0", "--trace", trace
    )
    try:

        def work(i: int) -> list[str]:
            c = Client(procs[i % REPLICAS].url, secret("orch"), timeout=30)
            try:
                ids = []
                for _ in range(PER_CLIENT):
                    d = c.decide({"actor": {"id": f"c{i}"}, "action": {"target": "search"}})
                    assert d.outcome is Outcome.ALLOW, d.failures
                    ids.append(d.id)
                return ids
            finally:
                c.close()

        with ThreadPoolExecutor(CLIENTS) as pool:
            ids = [d for batch in pool.map(work, range(CLIENTS)) for d in batch]
        # a decision made on replica 0 is explained by replica 1 (it reads the shared chain)
        other = Client(procs[1].url, secret("orch"))
        deadline = time.time() + 5
        while True:
            try:
                story = other.explain(ids[0])
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        assert any("allowed" in line for line in story["explanation"])
        other.close()
    finally:
        for p in procs:
            p.stop()  # SIGTERM: each replica writes what it has queued before it exits
    try:
        rep = verify_log(trace)
        assert rep.ok, rep.problems
        assert rep.records == CLIENTS * PER_CLIENT
        recorded = {r["id"] for r in query(trace, limit=10_000)}
        assert recorded == set(ids)
    finally:
        pg_cleanup(tag)
