"""The memory store's window structures against naive recomputation (random, out-of-order times)."""

from __future__ import annotations

import random

from charter.state.windows import Holds, Members, Series


def test_series_matches_naive_sums() -> None:
    rng = random.Random(7)
    s = Series()
    entries: list[tuple[float, int]] = []
    now = 0.0
    for _ in range(3000):
        now += rng.random()
        t = now - (rng.random() * 5 if rng.random() < 0.1 else 0.0)  # 10% arrive late
        if rng.random() < 0.3:
            upto = now - 20 - rng.random() * 10
            s.prune(upto)
            entries = [e for e in entries if e[0] > upto]
        lo = now - rng.random() * 15
        assert s.total_after(lo) == sum(a for x, a in entries if x > lo)
        amount = rng.randint(1, 9)
        s.add(t, amount)
        entries.append((t, amount))
        assert len(s) == len(entries)
    assert s.total_after(-1.0) == sum(a for _, a in entries)


def test_members_match_naive_counts() -> None:
    rng = random.Random(11)
    m = Members()
    seen: dict[str, float] = {}
    now = 0.0
    for _ in range(2000):
        now += rng.random()
        name = f"m{rng.randint(0, 40)}"
        if rng.random() < 0.3:
            upto = now - 15
            m.prune(upto)
            seen = {k: v for k, v in seen.items() if v > upto}
        lo = now - 10
        assert m.count_after(lo) == sum(1 for v in seen.values() if v > lo)
        assert m.get(name) == seen.get(name)
        t = now - (rng.random() * 3 if rng.random() < 0.1 else 0.0)
        m.put(name, t)
        seen[name] = t


def test_holds_expire_and_drop() -> None:
    rng = random.Random(3)
    h = Holds()
    live: dict[str, tuple[int, float]] = {}
    now = 0.0
    for i in range(3000):
        now += rng.random()
        hid = f"h{i}"
        amt, exp = rng.randint(1, 100), now + rng.random() * 30
        h.add(hid, amt, exp)
        live[hid] = (amt, exp)
        if rng.random() < 0.3 and live:
            gone = rng.choice(sorted(live))
            h.drop(gone)
            del live[gone]
        live = {k: v for k, v in live.items() if v[1] > now}
        assert h.expire(now) == sum(a for a, _ in live.values())
        assert set(h) == set(live)
