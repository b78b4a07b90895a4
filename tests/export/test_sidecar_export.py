"""The sidecar exports its decisions (charter serve --export): masked records reach the target, and
/metrics counts what was exported and what was dropped."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from charter.export.mask import MASKED
from charter.server import Runtime, create_app
from charter.server.runtime import ServeConfig

POLICY = """
policy side

tool pay.send {
  category write
  arg password: string
  arg amount: double
}

mask args.password

permit pay {
  action call pay.send
  reason "ok"
}
"""
ARGS = {"password": "s3cret-pw", "amount": 1.0}
BODY = {"actor": {"id": "agent-1"}, "action": {"kind": "call", "target": "pay.send", "args": ARGS}}


def _client(tmp_path: Path, export: str) -> tuple[Runtime, TestClient]:
    pol = tmp_path / "p.charter"
    pol.write_text(POLICY)
    key = tmp_path / "key"
    key.write_bytes(b"0123456789abcdef")
    cfg = ServeConfig(policy_path=str(pol), export=(export,), export_key_file=str(key), poll_s=0)
    rt = Runtime.from_config(cfg)
    return rt, TestClient(create_app(rt, None, no_auth=True))


def test_sidecar_exports_masked_records_and_counts_them(tmp_path: Path, jsonl_target: Any) -> None:
    rt, client = _client(tmp_path, f"jsonl:http://127.0.0.1:{jsonl_target.port}/")
    with client:
        for _ in range(3):
            r = client.post("/v1/decide", json=BODY)
            assert r.status_code == 200 and r.json()["outcome"] == "allow"
        assert rt.exporters[0].flush(10)
        got = jsonl_target.wait(3)
        assert len(got) == 3
        assert all(g["request"]["action"]["args"]["password"] == MASKED for g in got)
        text = client.get("/metrics").text
    target = f"jsonl http://127.0.0.1:{jsonl_target.port}/"
    assert f'charter_export_records_total{{target="{target}",result="exported"}} 3' in text
    assert "charter_export_queue_depth" in text
    rt.close()


def test_sidecar_target_down_still_decides_and_counts_drops(tmp_path: Path, closed_port: int) -> None:
    rt, client = _client(tmp_path, f"jsonl:http://127.0.0.1:{closed_port}/")
    rt.exporters[0].retries = 0
    with client:
        for _ in range(5):
            assert client.post("/v1/decide", json=BODY).json()["outcome"] == "allow"
        assert rt.exporters[0].flush(20)
        text = client.get("/metrics").text
    assert 'result="dropped_send_failed"} 5' in text
    rt.close()
