"""Real `charter serve` processes on loopback ports, for the client, SIGHUP and replica tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .conftest import TOKENS, secret

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tokens_file(path: Path) -> Path:
    """The test tokens as a tokens file (hashes only)."""
    from charter.server.auth import hash_token

    doc = {
        "tokens": [{"name": n, "role": r, "sha256": hash_token(secret(k))} for k, (n, r) in TOKENS.items()]
    }
    path.write_text(json.dumps(doc), "utf-8")
    return path


class Serve:
    """One `charter serve` subprocess; ``stop()`` ends it (and only it)."""

    def __init__(self, policy: Path, store: str, tmp: Path, *extra: str, tokens: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / f"serve-{self.port}.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("CHARTER_TOKENS", None)
        cmd = [
            sys.executable,
            "-m",
            "charter",
            "serve",
            str(policy),
            "--store",
            store,
            "--port",
            str(self.port),
            "--tokens",
            str(tokens or tokens_file(tmp / "tokens.json")),
            "--log-level",
            "warning",
            *extra,
        ]
        self.proc = subprocess.Popen(
            cmd, stdout=self.log.open("wb"), stderr=subprocess.STDOUT, env=env, cwd=ROOT
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until /readyz answers 200."""
        import http.client

        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"charter serve exited: {self.log.read_text()[-2000:]}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"charter serve not ready in {timeout} s: {self.log.read_text()[-2000:]}")

    def signal(self, sig: int = signal.SIGHUP) -> None:
        self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_all(n: int, policy: Path, store: str, tmp: Path, *extra: str) -> list[Serve]:
    """Start ``n`` replicas in parallel and wait for each to be ready."""
    procs = [Serve(policy, store, tmp, *extra) for _ in range(n)]
    try:
        for p in procs:
            p.wait_ready()
    except Exception:
        for p in procs:
            p.stop()
        raise
    return procs


REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def port_open(host: str, port: int) -> bool:
    """True if something listens on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def redis_cleanup(prefix: str) -> None:
    """Delete every key under ``prefix``."""
    import redis

    r = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    try:
        keys = list(r.scan_iter(match=f"{prefix}:*", count=1000))
        for i in range(0, len(keys), 500):
            r.delete(*keys[i : i + 500])
    finally:
        r.close()


def pg_cleanup(schema: str) -> None:
    """Drop ``schema``."""
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
