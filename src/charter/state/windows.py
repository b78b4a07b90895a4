"""Sliding-window structures of the memory store: O(log n) totals, amortized O(1) pruning."""

from __future__ import annotations

import heapq
from bisect import bisect_right, insort
from collections.abc import Iterator

#: Pruned entries are only skipped (an offset) until at least this many have piled up.
_COMPACT_MIN = 64


class Series:
    """Time-stamped integer amounts kept sorted by time, with running sums.

    ``total_after(lo)`` is the sum of the amounts stamped after ``lo``; ``prune(upto)`` drops the
    entries stamped at or before ``upto``. Entries are normally appended in time order (O(1));
    one stamped earlier than the newest entry is inserted in place (O(n), rare).
    """

    __slots__ = ("_base", "_cum", "_start", "_times")

    def __init__(self) -> None:
        self._times: list[float] = []
        self._cum: list[int] = []  # _cum[i]: sum of every amount up to and including entry i
        self._start = 0  # entries before this index are pruned
        self._base = 0  # sum of the entries compacted away (before index 0)

    def __len__(self) -> int:
        return len(self._times) - self._start

    def newest(self) -> float | None:
        """The time of the newest entry kept (None: none is)."""
        return self._times[-1] if len(self._times) > self._start else None

    def _before(self, i: int) -> int:
        return self._cum[i - 1] if i > 0 else self._base

    def add(self, t: float, amount: int) -> None:
        times, cum = self._times, self._cum
        if not times or t >= times[-1]:
            times.append(t)
            cum.append((cum[-1] if cum else self._base) + amount)
            return
        i = bisect_right(times, t, self._start)
        times.insert(i, t)
        cum.insert(i, self._before(i) + amount)
        for j in range(i + 1, len(cum)):
            cum[j] += amount

    def total_after(self, lo: float) -> int:
        times = self._times
        j = bisect_right(times, lo, self._start)
        if j >= len(times):
            return 0
        return self._cum[-1] - self._before(j)

    def prune(self, upto: float) -> None:
        k = bisect_right(self._times, upto, self._start)
        if k <= self._start:
            return
        self._start = k
        if k >= _COMPACT_MIN and 2 * k >= len(self._times):
            self._base = self._cum[k - 1]
            del self._times[:k]
            del self._cum[:k]
            self._start = 0

    def hit(self, upto: float, lo: float, t: float, amount: int, limit: int | None) -> tuple[int, bool]:
        """``prune(upto)``, then ``total_after(lo)``, then ``add(t, amount)`` unless that would take
        the total above ``limit``: (the total after, whether it was limited). One call instead
        of three: a counter hit is on every rate-limited decision's path."""
        self.prune(upto)
        times, cum = self._times, self._cum
        j = bisect_right(times, lo, self._start)
        total = cum[-1] - (cum[j - 1] if j > 0 else self._base) if j < len(times) else 0
        if limit is not None and total + amount > limit:
            return total, True
        if not times or t >= times[-1]:  # the usual: in time order (add's first branch)
            times.append(t)
            cum.append((cum[-1] if cum else self._base) + amount)
        else:
            self.add(t, amount)
        return total + amount, False


class Members:
    """Distinct members with the time each was last seen, sorted by that time."""

    __slots__ = ("_order", "_seen")

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._order: list[tuple[float, str]] = []  # (time, member), one entry per member

    def get(self, member: str) -> float | None:
        return self._seen.get(member)

    def __len__(self) -> int:
        return len(self._order)

    def newest(self) -> float | None:
        """The time the most recently seen member was seen (None: no member is kept)."""
        return self._order[-1][0] if self._order else None

    def count_after(self, lo: float) -> int:
        order = self._order
        return len(order) - bisect_right(order, lo, key=_first)

    def put(self, member: str, t: float) -> None:
        old = self._seen.get(member)
        order = self._order
        if old is not None:
            i = bisect_right(order, (old, member)) - 1
            del order[i]
        self._seen[member] = t
        if not order or (t, member) >= order[-1]:
            order.append((t, member))
        else:
            insort(order, (t, member))

    def prune(self, upto: float) -> None:
        order = self._order
        k = bisect_right(order, upto, key=_first)
        if k:
            for _, m in order[:k]:
                del self._seen[m]
            del order[:k]


def _first(entry: tuple[float, str]) -> float:
    return entry[0]


class Holds:
    """Live holds on one budget: their reserved sum, with expiry from a heap (no scan)."""

    __slots__ = ("_heap", "_live", "reserved")

    def __init__(self) -> None:
        self._live: dict[str, tuple[int, float]] = {}  # hold_id -> (amount, expires_at)
        self._heap: list[tuple[float, str]] = []
        self.reserved = 0

    def __contains__(self, hold_id: object) -> bool:
        return hold_id in self._live

    def __iter__(self) -> Iterator[str]:
        return iter(self._live)

    def add(self, hold_id: str, amount: int, expires_at: float) -> None:
        live = self._live
        if hold_id in live:
            self.drop(hold_id)
        live[hold_id] = (amount, expires_at)
        heapq.heappush(self._heap, (expires_at, hold_id))
        self.reserved += amount

    def drop(self, hold_id: str) -> None:
        got = self._live.pop(hold_id, None)
        if got is not None:
            self.reserved -= got[0]

    def expire(self, now: float) -> int:
        """Forget the holds that expired at or before ``now``; the reserved sum of the rest."""
        heap, live = self._heap, self._live
        while heap and heap[0][0] <= now:
            exp, hid = heapq.heappop(heap)
            got = live.get(hid)
            if got is not None and got[1] == exp:
                del live[hid]
                self.reserved -= got[0]
        if len(heap) > 2 * len(live) + _COMPACT_MIN:  # entries of dropped holds
            self._heap = [(exp, hid) for hid, (_, exp) in live.items()]
            heapq.heapify(self._heap)
        return self.reserved
