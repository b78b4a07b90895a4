"""A real browser (Debian's Chromium, driven by Playwright) against real `charter serve` replicas.

Two sidecar processes share one SQLite store and one trace, so every test that answers in one browser
and reads in another also crosses replicas. Without Chromium or Playwright the tests are skipped
with a message saying what to install.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHARTER_CHROMIUM", "/usr/bin/chromium")
#: The flags every launch uses (headless, no sandbox in containers, no network chatter of its own).
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = ROOT / "docs" / "img"

POLICY = """
policy inbox-demo
units USD
roles payments, research
agent payments-agent { role payments }
agent research-agent { role research }
group treasury { members lena, marco, alice }
group compliance { members chloe }
group risk-heads { members heidi }
group operators { members olga, peter }
tool payments.transfer { tags money  arg amount: double  arg payee: string }
tool payments.verify-payee { arg payee: string }
tool web.search { }
signal compliance.regulation-conflict { from compliance }
escalation compliance-review {
  to compliance for 30m
  to risk-heads for 2h
  finally deny
}
stops {
  operators operators
  resume requires 2
}
permit pay {
  actor role payments
  action call payments.transfer, payments.verify-payee
  reason "Payments agents pay."
}
permit search { actor any  action call web.search  reason "Anyone may search." }
require approval big-payments {
  action call payments.transfer
  when args.amount > 10000.0
  approvers treasury
  quorum 2
  expires after 4h
  redeem within 30m
  reason "Payments above 10,000 USD need 2 approvals from treasury."
}
escalate regulation-conflict {
  action call payments.transfer
  signal compliance.regulation-conflict
  to compliance-review
  reason "A possible conflict with a new regulation goes to compliance."
}
budget run-spend {
  scope run
  action call payments.transfer
  limit 100000 USD
  reason "At most 100,000 USD per run."
}
"""

#: token key -> (name, role)
PEOPLE = {
    "orch": ("orchestrator-1", "orchestrator"),
    "lena": ("lena", "approver"),
    "marco": ("marco", "approver"),
    "chloe": ("chloe", "approver"),
    "olga": ("olga", "operator"),
    "peter": ("peter", "operator"),
}


def token(key: str) -> str:
    """The secret token of one person in PEOPLE."""
    return f"browser-test-token-{key}-0123456789"


def browser_missing() -> str | None:
    """Why the browser tests cannot run here (None when they can)."""
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        return f"no Chromium at {CHROMIUM}: apt-get install -y chromium chromium-driver (.ci/run does)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is missing: pip install -e '.[dev]'"
    return None


class Deployment:
    """Two replicas over one SQLite store and one trace, plus an orchestrator client for requests."""

    def __init__(self, tmp: Path, humans: dict[str, Any] | None = None):
        self.tmp = tmp
        (tmp / "policy").mkdir(parents=True, exist_ok=True)
        self.policy = tmp / "policy" / "policy.charter"
        self.policy.write_text(POLICY, "utf-8")
        self.store = f"sqlite:///{tmp / 'state.db'}"
        self.trace = tmp / "trace.db"
        from charter.server.auth import hash_token

        tokens = {
            "tokens": [{"name": n, "role": r, "sha256": hash_token(token(k))} for k, (n, r) in PEOPLE.items()]
        }
        self.tokens = tmp / "tokens.json"
        self.tokens.write_text(json.dumps(tokens), "utf-8")
        humans_file = None
        if humans is not None:
            humans_file = tmp / "humans.json"
            humans_file.write_text(json.dumps(humans), "utf-8")
        from tests.server.procs import Serve

        extra = ["--trace", str(self.trace), "--poll", "0"]
        extra += ["--humans", str(humans_file)] if humans_file else []
        self.replicas = [
            Serve(self.policy.parent, self.store, tmp, *extra, tokens=self.tokens) for _ in range(2)
        ]
        try:
            for r in self.replicas:
                r.wait_ready()
        except Exception:
            self.close()
            raise
        from charter.client import Client

        self.orch = Client(self.replicas[0].url, token("orch"))

    def decide(self, target: str, agent: str = "payments-agent", **extra: Any) -> dict[str, Any]:
        """One decision through replica 1 as the orchestrator; the decision as a dict."""
        body: dict[str, Any] = {"actor": {"id": agent}, "action": {"kind": "call", "target": target}}
        for key in ("args",):
            if key in extra:
                body["action"][key] = extra.pop(key)
        if "human" in extra:
            body["actor"]["human"] = extra.pop("human")
        body.update(extra)
        return dict(self.orch.request("POST", "/v1/decide", body))

    def close(self) -> None:
        """Stop both replicas."""
        for r in self.replicas:
            r.stop()


class Browser:
    """One Chromium process; ``person(key, replica)`` gives a signed-in page in its own context."""

    def __init__(self) -> None:
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        self.chromium = self._pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)

    def context(self) -> Any:
        """A fresh browser context (its own cookies: one person)."""
        return self.chromium.new_context(viewport={"width": 1280, "height": 900})

    def person(self, key: str, base: str) -> Any:
        """A page signed in as PEOPLE[key] at ``base``."""
        page = self.context().new_page()
        sign_in(page, base, token(key))
        return page

    def close(self) -> None:
        """Close Chromium and Playwright."""
        self.chromium.close()
        self._pw.stop()


def sign_in(page: Any, base: str, secret: str) -> None:
    """Sign in through the form, with the keyboard (label, tab order and Enter all have to work)."""
    page.goto(f"{base}/ui/login")
    page.get_by_label("Your token").fill(secret)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda u: "/ui/login" not in u)


def shoot(page: Any, name: str, tmp: Path) -> Path:
    """A full-page screenshot: always into ``tmp``; into docs/img when CHARTER_UPDATE_SCREENSHOTS=1."""
    out = tmp / name
    page.screenshot(path=str(out), full_page=True)
    if os.environ.get("CHARTER_UPDATE_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out, SHOTS / name)
    return out
