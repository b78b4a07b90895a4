"""A stdio MCP proxy: every `tools/call` is decided by charter before it reaches the server."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import IO, Any

from charter.engine.decision import Decision
from charter.enums import Outcome
from charter.hits import decision_reasons

__all__ = ["McpProxy"]


def tool_error(msg_id: Any, text: str, meta: dict[str, Any]) -> dict[str, Any]:
    """A tools/call result the model sees as a tool error (isError), with charter's details."""
    return {
        "jsonrpc": "2.0",
        "id": msg_id,
        "result": {
            "content": [{"type": "text", "text": text}],
            "isError": True,
            "structuredContent": None,
            "_meta": {"charter": meta},
        },
    }


class McpProxy:
    """Relays newline-delimited JSON-RPC between an MCP client (our stdin/stdout) and a server process.

    ``backend`` is an Engine or a sidecar Client. Messages other than ``tools/call`` pass through
    untouched; a call that is not allowed never reaches the server.
    """

    def __init__(
        self,
        backend: Any,
        command: Sequence[str],
        *,
        agent: str = "mcp-agent",
        context: dict[str, Any] | None = None,
        hold_s: float = 0.0,
        poll_s: float = 0.5,
        stdin: IO[bytes] | None = None,
        stdout: IO[bytes] | None = None,
    ):
        self.backend = backend
        self.command = list(command)
        self.agent = agent
        self.context = dict(context or {})
        self.hold_s = hold_s
        self.poll_s = poll_s
        self.inp = stdin or sys.stdin.buffer
        self.out = stdout or sys.stdout.buffer
        self._lock = threading.Lock()
        self._pending: dict[Any, str] = {}  # JSON-RPC id -> decision id to settle
        self.proc: subprocess.Popen[bytes] | None = None
        self._error = ""

    # ---- I/O ----------------------------------------------------------------------------------
    def _to_client(self, msg: dict[str, Any] | bytes) -> None:
        data = msg if isinstance(msg, bytes) else json.dumps(msg, separators=(",", ":")).encode() + b"\n"
        with self._lock:
            self.out.write(data)
            self.out.flush()

    def _to_server(self, line: bytes) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        with self._lock:
            self.proc.stdin.write(line if line.endswith(b"\n") else line + b"\n")
            self.proc.stdin.flush()

    # ---- deciding -----------------------------------------------------------------------------
    def request_for(
        self, name: str, arguments: dict[str, Any], approval: str | None = None
    ) -> dict[str, Any]:
        """The decision request for one tool call."""
        req: dict[str, Any] = {
            "actor": {"id": self.agent},
            "action": {"kind": "call", "target": name, "args": arguments},
        }
        if self.context:
            req["context"] = dict(self.context)
        if approval:
            req["approval"] = approval
        return req

    def _decide(self, req: dict[str, Any]) -> Decision | None:
        try:
            return self.backend.decide(req)
        except Exception as exc:  # fail closed: the call does not reach the server
            self._error = f"charter could not decide this call ({type(exc).__name__}: {exc}); denied"
            return None

    def handle_call(self, msg: dict[str, Any], line: bytes) -> None:
        """Decide one tools/call; forward it, or answer it with a tool error."""
        params = msg.get("params") or {}
        name = str(params.get("name", ""))
        arguments = params.get("arguments") or {}
        d = self._decide(self.request_for(name, arguments))
        if d is None:
            self._to_client(tool_error(msg.get("id"), self._error, {"outcome": "deny"}))
            return
        if d.outcome is Outcome.REQUIRE_APPROVAL and d.obligations.get("approval_id"):
            aid = str(d.obligations["approval_id"])
            if self.hold_s > 0:
                d2 = self._hold(aid, name, arguments)
                if d2 is not None:
                    d = d2
            if d.outcome is Outcome.REQUIRE_APPROVAL:
                why = decision_reasons(d)
                self._to_client(
                    tool_error(
                        msg.get("id"),
                        f"charter: this call needs human approval ({why}). Approval id: {aid}. "
                        "Retry the same call once it is approved.",
                        {"outcome": d.outcome.value, "decision_id": d.id, "approval_id": aid},
                    )
                )
                return
        if d.outcome is not Outcome.ALLOW:
            meta: dict[str, Any] = {
                "outcome": d.outcome.value,
                "decision_id": d.id,
                "rules": [h.id for h in d.rules],
            }
            esc = d.obligations.get("escalation") or {}
            if esc.get("id"):
                meta["escalation_id"] = esc["id"]
            why = decision_reasons(d)
            self._to_client(tool_error(msg.get("id"), f"charter: {d.outcome.value}: {why}", meta))
            return
        if d.hold_id or self.context.get("run"):
            self._pending[msg.get("id")] = d.id
        self._to_server(line)

    def _hold(self, aid: str, name: str, arguments: dict[str, Any]) -> Decision | None:
        """Wait up to --hold seconds for the approval; then resubmit with it."""
        deadline = time.monotonic() + self.hold_s
        while time.monotonic() < deadline:
            try:
                status = self.backend.approvals.get(aid)["status"]
            except Exception:
                return None
            if status == "approved":
                return self._decide(self.request_for(name, arguments, approval=aid))
            if status != "pending":
                return None
            time.sleep(self.poll_s)
        return None

    def _settle(self, msg: dict[str, Any]) -> None:
        did = self._pending.pop(msg.get("id"), None)
        if did is None:
            return
        failed = "error" in msg or bool((msg.get("result") or {}).get("isError"))
        try:
            self.backend.settle(did, outcome="failure" if failed else "success")
        except Exception as exc:
            print(f"charter mcp-proxy: settle {did}: {exc}", file=sys.stderr)

    # ---- the pumps ----------------------------------------------------------------------------
    def _client_pump(self) -> None:
        for line in iter(self.inp.readline, b""):
            if not line.strip():
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                self._to_server(line)
                continue
            if isinstance(msg, dict) and msg.get("method") == "tools/call" and "id" in msg:
                if self.hold_s > 0:
                    threading.Thread(target=self.handle_call, args=(msg, line), daemon=True).start()
                else:
                    self.handle_call(msg, line)
            else:
                self._to_server(line)
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.close()

    def _server_pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in iter(self.proc.stdout.readline, b""):
            try:
                msg = json.loads(line)
            except ValueError:
                msg = None
            if isinstance(msg, dict) and "id" in msg and "method" not in msg:
                self._settle(msg)
            self._to_client(line)

    def run(self) -> int:
        """Start the server and relay until either side closes; the server's exit code."""
        self.proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        up = threading.Thread(target=self._client_pump, daemon=True)
        up.start()
        self._server_pump()
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            return self.proc.wait(5)
