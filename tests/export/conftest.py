"""Local export targets: a JSONL HTTP server and an OTLP/HTTP logs receiver that decodes the protobuf."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


class Receiver:
    """A threaded HTTP server that keeps what it was sent; ``status`` is what it answers."""

    def __init__(self, decode: Any):
        self.decode = decode
        self.records: list[dict[str, Any]] = []
        self.requests = 0
        self.status = 200
        self.content_types: list[str] = []
        got = threading.Condition()
        self.got = got
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with got:
                    outer.requests += 1
                    outer.content_types.append(self.headers.get("Content-Type", ""))
                    if outer.status == 200:
                        outer.records.extend(outer.decode(body))
                    got.notify_all()
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        with self.got:
            self.got.wait_for(lambda: len(self.records) >= n, timeout)
            return list(self.records)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def decode_jsonl(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in body.decode().splitlines() if line]


def decode_otlp(body: bytes) -> list[dict[str, Any]]:
    """ExportLogsServiceRequest -> one dict per log record (body parsed, attributes as a dict)."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    req = ExportLogsServiceRequest()
    req.ParseFromString(body)
    out = []
    for rl in req.resource_logs:
        resource = {a.key: a.value.string_value for a in rl.resource.attributes}
        for sl in rl.scope_logs:
            for lr in sl.log_records:
                out.append(
                    {
                        "resource": resource,
                        "scope": sl.scope.name,
                        "event_name": lr.event_name,
                        "severity": lr.severity_text,
                        "time_unix_nano": lr.time_unix_nano,
                        "attributes": {a.key: a.value.string_value for a in lr.attributes},
                        "body": json.loads(lr.body.string_value),
                    }
                )
    return out


@pytest.fixture
def jsonl_target() -> Iterator[Receiver]:
    r = Receiver(decode_jsonl)
    yield r
    r.close()


@pytest.fixture
def otlp_target() -> Iterator[Receiver]:
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
    r = Receiver(decode_otlp)
    yield r
    r.close()


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port
