"""The inbox with 1,000 pending approvals: the server's time to render the list and Chromium's first
contentful paint (issue 19 targets: <= 100 ms and <= 500 ms on a quiet machine; the assertions here
are looser because CI shares two cores, and the figures are printed)."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.browser.harness import Browser, Deployment, browser_missing

pytestmark = pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))
PENDING = 1000


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    import charter
    from charter.state import open_store

    d = Deployment(tmp_path_factory.mktemp("crowded"))
    engine = charter.Engine(charter.load(d.policy.parent), store=open_store(d.store))
    for i in range(PENDING):
        got = engine.decide(
            {
                "actor": {"id": "payments-agent"},
                "action": {
                    "kind": "call",
                    "target": "payments.transfer",
                    "args": {"amount": 20_000.0 + i, "payee": f"p{i}"},
                },
                "context": {"workflow": "invoices", "run": f"run-{i % 50}"},
            }
        )
        assert got.outcome.value == "require_approval"
    engine.store.close()
    yield d
    d.close()


def test_thousand_pending_render_and_paint(crowded: Deployment, tmp_path: Path) -> None:
    b = Browser()
    try:
        page = b.person("lena", crowded.replicas[0].url)
        server_ms, paint_ms = [], []
        for _ in range(5):
            resp = page.goto(f"{crowded.replicas[0].url}/ui/approvals", wait_until="networkidle")
            assert resp is not None and resp.status == 200
            timing = resp.headers["server-timing"]
            server_ms.append(float(timing.split("dur=")[1]))
            fcp = page.evaluate(
                """() => new Promise(done => new PerformanceObserver(list => {
                    const e = list.getEntriesByName('first-contentful-paint')[0];
                    if (e) { done(e.startTime); }
                }).observe({type: 'paint', buffered: true}))"""
            )
            paint_ms.append(float(fcp))
        assert page.locator("tbody tr").count() == PENDING
        assert f"{PENDING} approval requests (pending)" in page.locator("caption").inner_text()
    finally:
        b.close()
    s, p = statistics.median(server_ms), statistics.median(paint_ms)
    print(
        f"\n{PENDING} pending: server render median {s:.0f} ms {sorted(server_ms)}, "
        f"first paint median {p:.0f} ms {sorted(paint_ms)}"
    )
    assert s <= 1000 and p <= 5000  # gross regressions only: the figures above are the measurement
