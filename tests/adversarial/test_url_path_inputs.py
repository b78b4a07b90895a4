"""Attacks on the URL and path functions (``url``, ``isURL``, ``path.clean``) with agent-controlled
arguments: the largest texts the request limits admit, every %-escape, ``..`` runs, controls,
surrogate-free non-ASCII, malformed authorities.

Invariant attacked: an argument an agent chooses can never make these functions crash a decision,
allow what a failing condition should refuse, or take more than the 50 ms bound of one decision
(tests/adversarial/test_evaluation_budget.py); a hostile URL is an evaluation error (the rule's
``on error``), never a traceback; ``path.clean`` stops the path tricks the docs say it stops.
"""

from __future__ import annotations

import gc
import time
from typing import Any

import pytest

import charter
from charter.engine.validate import LIMITS
from charter.enums import Outcome

BOUND_S = 0.050

POLICY = """
policy urls
roles r
agent a { role r }
tool web.post { arg url: string  arg body: string }
tool fs.write { arg path: string  arg body: string }
permit send-home {
  action call web.post
  when isURL(args.url) && url(args.url).getHostname() == "example.com"
  when url(args.url).getScheme() == "https"
  reason "Posts go to our site over https."
}
permit write-src {
  action call fs.write
  when path.clean(args.path).startsWith("src/")
  reason "The agent writes under src/ only."
}
"""

BIG = LIMITS.max_string  # the longest text a request admits

HOSTILE_URLS = [
    # the largest a request admits: parsing it costs more than one condition's budget (URL
    # functions charge by length), so the permit fails closed rather than run long
    "https://example.com/" + "a" * (BIG - 30),
    "https://example.com/" + "%41" * (BIG // 3 - 10),
    "https://example.com/?" + "&".join(f"k{i}=v" for i in range(BIG // 8))[: BIG - 30],
    "https://" + "a" * (BIG - 20) + "/",
    "https://[" + ":" * 5000 + "]/",
    "https://example.com%00.evil.io/",
    "https://example.com.evil.io/",
    "https://example.com@evil.io/",
    "https://evil.io#@example.com/",
    "https://evil.io\\@example.com/",
    "https://EXAMPLE.com/",
    "https://exаmple.com/",  # Cyrillic а
    "http://example.com/",
    "//example.com/x",
    "https://example.com\t/",
    "https://example.com\n.evil.io/",
    "%",
    "",
    "https://" + "%zz" * 1000,
]

HOSTILE_PATHS = [
    "src/../.git/config",
    "src/../../etc/passwd",
    "../src/x",
    "/src/x",
    "src/" + "../" * (BIG // 3 - 10),
    "./src/../../x",
    "src//..//..//x",
    "src/\x00/../../x",
    "ѕrc/x",  # Cyrillic ѕ
    "src\\..\\..\\x",
    "",
]


def _engine() -> charter.Engine:
    return charter.Engine(charter.loads(POLICY))


def _best_cpu(engine: charter.Engine, req: dict[str, Any]) -> tuple[float, Any]:
    best, decision = float("inf"), None
    for _ in range(3):
        gc.collect()
        t0 = time.thread_time()
        decision = engine.decide(req)
        best = min(best, time.thread_time() - t0)
    return best, decision


def _req(target: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"actor": {"id": "a"}, "action": {"target": target, "args": args}}


@pytest.mark.parametrize("u", HOSTILE_URLS, ids=[f"url{i}" for i in range(len(HOSTILE_URLS))])
def test_a_hostile_url_is_never_allowed_and_stays_within_the_bound(u: str) -> None:
    spent, d = _best_cpu(_engine(), _req("web.post", {"url": u, "body": "hi"}))
    assert d.outcome is not Outcome.ALLOW, u[:80]
    assert spent <= BOUND_S, f"{spent * 1000:.1f} ms for {u[:40]!r}"


@pytest.mark.parametrize("p", HOSTILE_PATHS, ids=[f"path{i}" for i in range(len(HOSTILE_PATHS))])
def test_a_path_trick_is_never_allowed_and_stays_within_the_bound(p: str) -> None:
    spent, d = _best_cpu(_engine(), _req("fs.write", {"path": p, "body": "x"}))
    assert d.outcome is not Outcome.ALLOW, p[:80]
    assert spent <= BOUND_S, f"{spent * 1000:.1f} ms for {p[:40]!r}"


@pytest.mark.parametrize(
    ("target", "args"),
    [
        ("web.post", {"url": "https://example.com/a/b?x=1", "body": "hi"}),
        ("fs.write", {"path": "src/a/../b/./c.py", "body": "x"}),
        # the largest a request admits, still meant: decided within the bound
        ("fs.write", {"path": "src/" + "a/" * (BIG // 2 - 10), "body": "x"}),
        # (Go's url.Parse checks a port's digits, not its range, and Kubernetes' url() with it)
        ("web.post", {"url": "https://example.com:" + "9" * 5000 + "/", "body": "hi"}),
    ],
)
def test_what_the_policy_means_is_still_allowed_within_the_bound(target: str, args: dict[str, Any]) -> None:
    spent, d = _best_cpu(_engine(), _req(target, args))
    assert d.outcome is Outcome.ALLOW
    assert spent <= BOUND_S, f"{spent * 1000:.1f} ms"
