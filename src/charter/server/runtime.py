"""The engine in force and its hot reload: compile fully, then swap atomically; keep the last good one."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import charter
from charter.diagnostics import CharterError
from charter.engine.engine import Engine
from charter.engine.policy import CompiledPolicy
from charter.engine.settle import PendingDecisions
from charter.server.metrics import Metrics
from charter.state import StateStore, open_store

log = logging.getLogger("charter.server")


@dataclass
class ServeConfig:
    """Everything `charter serve` was started with (no secrets: tokens are loaded separately)."""

    policy_path: str
    store_url: str = "memory://"
    trace_path: str | None = None
    host: str = "127.0.0.1"
    port: int = 8181
    tokens_file: str | None = None
    no_auth: bool = False
    max_body: int = 1 << 20
    time_limit_s: float = 2.0
    poll_s: float = 1.0
    workers: int = 1
    otel: bool = False
    #: decision-log export targets (``otlp:URL``, ``jsonl:URL``; charter.export, docs/export.md)
    export: tuple[str, ...] = ()
    #: a file whose bytes key the ``hash`` masks (else a random key per process)
    export_key_file: str | None = None
    #: the humans section: inbox settings and notification targets (docs/humans.md)
    humans_config: str | None = None


def policy_files(path: str | Path) -> list[Path]:
    """Files whose change should trigger a reload: the file, or every *.charter/*.yaml under the dir."""
    p = Path(path)
    if p.is_dir():
        return sorted(f for f in p.rglob("*") if f.suffix in (".charter", ".yaml", ".yml", ".json"))
    return [p]


def _signature(paths: list[Path]) -> tuple[tuple[str, int, int], ...]:
    out = []
    for f in paths:
        try:
            st = f.stat()
            out.append((str(f), st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((str(f), -1, -1))
    return tuple(out)


def _first_error(exc: CharterError) -> str:
    diags = [d for d in getattr(exc, "diagnostics", []) if getattr(d, "is_error", True)]
    if not diags:
        return str(exc).splitlines()[0] if str(exc) else "policy failed to compile"
    d = diags[0]
    more = f" (+{len(diags) - 1} more)" if len(diags) > 1 else ""
    return f"{d.span.path}:{d.span.line}:{d.span.column}: {d.code.value} {d.message}{more}"


class Runtime:
    """Owns the store, the trace and the Engine in force; readers just use ``runtime.engine``."""

    def __init__(
        self,
        policy: CompiledPolicy,
        store: StateStore,
        trace: Any = None,
        *,
        policy_path: str | None = None,
        clock: Callable[[], float] | None = None,
        metrics: Metrics | None = None,
        poll_s: float = 1.0,
        otel: bool = False,
        humans: Any = None,
        exporters: Sequence[Any] = (),
    ):
        from charter.approvals import Fanout
        from charter.approvals.feed import ChangeFeed
        from charter.notify import Dispatcher, HumansConfig

        self.store = store
        self.trace = trace
        self.clock = clock
        self.policy_path = policy_path
        self.metrics = metrics or Metrics()
        self.poll_s = poll_s
        self.otel = otel
        #: inbox settings and notification lanes; every human act moves the inbox's change mark
        self.humans: HumansConfig = humans or HumansConfig()
        self.feed = ChangeFeed(store)
        self.dispatcher = Dispatcher(self.humans.lanes, self.humans.inbox.url) if self.humans.lanes else None
        self.notifier = Fanout(self.feed, self.dispatcher) if self.dispatcher else self.feed
        #: decision-log exporters (one per target), observers of every engine this runtime builds
        self.exporters: list[Any] = list(exporters)
        self.engine = self._engine(policy)
        #: set for a Redis store when greenlet is installed: decisions await redis.asyncio (no thread)
        self.bridge: Any = None
        self.loaded_at = time.time()
        self.reload_error: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sig = _signature(self._watched()) if policy_path else ()

    def _engine(self, policy: CompiledPolicy, pending: PendingDecisions | None = None) -> Engine:
        """An Engine on this runtime's store and trace (one OpenTelemetry span per decision if on);
        ``pending``: the unsettled decisions of the engine it replaces (they can still be settled)."""
        engine = Engine(
            policy,
            store=self.store,
            trace=self.trace,
            clock=self.clock,
            notifier=self.notifier,
            pending=pending,
        )
        if self.otel:
            from charter.telemetry import instrument

            instrument(engine)
        for exporter in self.exporters:
            engine.observe(exporter)
        return engine

    def current_policy(self) -> CompiledPolicy:
        """The policy in force (exporters read its masks when a decision finishes)."""
        return self.engine.policy

    @classmethod
    def from_config(cls, cfg: ServeConfig, clock: Callable[[], float] | None = None) -> Runtime:
        """Load the policy (raising CharterError), open the store and the trace."""
        policy = charter.load(cfg.policy_path)
        humans = None
        if cfg.humans_config:
            from charter.notify import load_humans_config

            humans = load_humans_config(cfg.humans_config)
        bridged = None
        if urlsplit(cfg.store_url).scheme.lower() in ("redis", "rediss", "unix"):
            from charter.server.aredis import open_bridged

            bridged = open_bridged(cfg.store_url)
        store = bridged[0] if bridged is not None else open_store(cfg.store_url)
        trace = None
        if cfg.trace_path:
            from charter.trace import TraceLog

            trace = TraceLog(cfg.trace_path)
        exporters = []
        holder: list[Runtime] = []  # the exporters read the masks of the policy in force, once rt exists
        if cfg.export:
            from charter.export import Exporter, Masker, open_sink

            key = Path(cfg.export_key_file).read_bytes() if cfg.export_key_file else None
            masker = Masker(key)
            for spec in cfg.export:
                exporters.append(Exporter(open_sink(spec), lambda: holder[0].current_policy(), masker=masker))
        rt = cls(
            policy,
            store,
            trace,
            policy_path=cfg.policy_path,
            clock=clock,
            poll_s=cfg.poll_s,
            otel=cfg.otel,
            humans=humans,
            exporters=exporters,
        )
        if exporters:
            holder.append(rt)
        rt.bridge = bridged[1] if bridged is not None else None
        return rt

    def _watched(self) -> list[Path]:
        assert self.policy_path is not None
        files = set(policy_files(self.policy_path))
        files.update(Path(f) for f in self.engine.policy.files if f and not f.startswith("<"))
        return sorted(files)

    # ---- reload --------------------------------------------------------------------------------
    def reload(self, why: str = "requested") -> bool:
        """Compile the policy again and swap it in; on failure keep the last good policy."""
        if self.policy_path is None:
            return False
        with self._lock:
            self._sig = _signature(self._watched())
            try:
                policy = charter.load(self.policy_path)
            except CharterError as exc:
                self.reload_error = _first_error(exc)
            except (OSError, ValueError) as exc:
                self.reload_error = f"{type(exc).__name__}: {exc}"
            else:
                old = self.engine
                if policy.revision == old.policy.revision:
                    self.reload_error = None
                    return False
                new = self._engine(policy, old.pending)  # decisions made before the swap can still be settled
                self.engine = new  # one reference assignment: atomic for readers
                self.loaded_at = time.time()
                self.reload_error = None
                self.metrics.count("reloads")
                log.info("policy reloaded (%s): revision %s -> %s", why, old.policy.revision, policy.revision)
                return True
            self.metrics.count("reload_failures")
            log.error(
                "policy reload (%s) failed, keeping revision %s: %s",
                why,
                self.engine.policy.revision,
                self.reload_error,
            )
            return False

    def check_files(self) -> bool:
        """Reload if a watched file changed since the last look."""
        if self.policy_path is None:
            return False
        if _signature(self._watched()) != self._sig:
            return self.reload("file changed") or False
        return False

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.check_files()
            except Exception:  # the watcher must never die; the error is logged
                log.exception("policy watcher failed")

    def start(self) -> None:
        """Start watching the policy files (a daemon thread)."""
        if self.policy_path and self.poll_s > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._poll, name="charter-reload", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop watching, send queued notifications (briefly), flush the trace, close the store."""
        self._stop.set()
        if self.dispatcher is not None:
            self.dispatcher.close(wait_s=2.0)
        for exporter in self.exporters:
            try:
                exporter.close(timeout=2.0)
            except Exception:
                log.exception("closing a decision-log exporter failed")
        if self.trace is not None:
            try:
                self.trace.close()
            except Exception:
                log.exception("closing the trace failed")
        try:
            self.store.close()
        except Exception:
            log.exception("closing the store failed")

    # ---- readiness -----------------------------------------------------------------------------
    def readiness(self) -> tuple[dict[str, bool], list[str]]:
        """(checks, reasons): policy loaded, store reachable, trace writable."""
        checks = {"policy": self.engine is not None, "store": True, "trace": True}
        reasons: list[str] = []
        try:
            self.store.ping()
        except Exception as exc:
            checks["store"] = False
            reasons.append(f"state store unreachable: {type(exc).__name__}: {exc}")
            self.metrics.count("store_errors")
        if self.trace is not None:
            problem = self.trace.problem()
            if problem is not None:
                checks["trace"] = False
                reasons.append(f"trace not writable: {problem}")
        return checks, reasons
