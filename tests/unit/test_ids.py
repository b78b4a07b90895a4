"""Record ids: fresh CSPRNG bytes, unique, and never repeated by a forked child."""

from __future__ import annotations

import os

from charter.approvals.ids import random_hex


def test_ids_are_hex_of_the_asked_length_and_unique() -> None:
    ids = [random_hex(8) for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids)
    assert len(random_hex(3)) == 6


def test_a_forked_child_does_not_reuse_the_parents_pool() -> None:
    random_hex()  # the parent's pool holds unread bytes now
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.write(w, "".join(random_hex() for _ in range(4)).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(r, 200).decode()
    parent = "".join(random_hex() for _ in range(4))
    assert child != parent
