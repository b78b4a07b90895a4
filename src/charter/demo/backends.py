"""Where the demo's decisions are made: the engine in-process (SQLite + trace) or a running sidecar."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import charter
from charter.engine.decision import Decision

#: The demo's clock starts here: Monday 2 March 2026, 09:00:00 UTC.
START = 1772442000.0


class DemoClock:
    """A controllable clock: time moves only when the story says so."""

    def __init__(self, start: float = START):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


def demo_engine(*args: Any, **kwargs: Any) -> charter.Engine:
    """The engine with readable, fixed decision ids (d-demo-0001, d-demo-0002, ...)."""
    seq = itertools.count(1)
    kwargs["new_id"] = lambda: f"d-demo-{next(seq):04d}"
    return charter.Engine(*args, **kwargs)


@dataclass
class Backend:
    """What the story needs: decide, settle, humans answering, and reading the trace."""

    label: str
    clock: DemoClock | None = None
    trace_path: str | None = None
    notes: list[str] = field(default_factory=list)

    def decide(self, request: Mapping[str, Any]) -> Decision:
        raise NotImplementedError

    def settle(
        self, decision_id: str, actual_cost: Mapping[str, float] | None = None, outcome: str = "success"
    ) -> Any:
        raise NotImplementedError

    def approve(self, approval_id: str, who: str, note: str) -> dict[str, Any]:
        raise NotImplementedError

    def stop(self, scope: str, value: str, reason: str, who: str) -> Any:
        raise NotImplementedError

    def resume(self, scope: str, value: str, who: str) -> dict[str, Any]:
        raise NotImplementedError

    def explain(self, decision_id: str) -> list[str]:
        raise NotImplementedError

    def verify(self) -> tuple[bool, str]:
        """(ok, the line `charter trace verify` prints)."""
        from charter.trace.verify import verify_log

        if not self.trace_path:
            return True, "(no local trace file to verify; pass --trace PATH with --sidecar)"
        rep = verify_log(self.trace_path)
        if rep.ok:
            return True, (f"OK: {rep.records} records, chain intact, {rep.checkpoints} checkpoint(s) valid")
        return False, "TAMPERED: " + "; ".join(rep.problems)

    def advance(self, seconds: float) -> None:
        """Move the clock (in-process only; a sidecar runs on real time)."""
        if self.clock is not None:
            self.clock.advance(seconds)

    def close(self) -> None:
        """Release what the backend opened."""


class InProcess(Backend):
    """The engine in this process on a fresh SQLite store, with a TraceLog beside it."""

    def __init__(self, policies: Path, workdir: Path):
        workdir = workdir.resolve()
        if workdir.exists():
            shutil.rmtree(workdir)
        workdir.mkdir(parents=True)
        from charter.state import open_store
        from charter.trace import TraceLog

        clock = DemoClock()
        super().__init__(f"in-process engine, SQLite state in {workdir}", clock, str(workdir / "trace.db"))
        self.policy = charter.load(policies)
        self.store = open_store(f"sqlite:///{workdir / 'state.db'}")
        self.log = TraceLog(workdir / "trace.db", clock=clock)
        self.engine = demo_engine(self.policy, store=self.store, trace=self.log, clock=clock)

    def decide(self, request: Mapping[str, Any]) -> Decision:
        return self.engine.decide(request)

    def settle(
        self, decision_id: str, actual_cost: Mapping[str, float] | None = None, outcome: str = "success"
    ) -> Any:
        return self.engine.settle(decision_id, actual_cost=actual_cost, outcome=outcome)

    def approve(self, approval_id: str, who: str, note: str) -> dict[str, Any]:
        return self.engine.approvals.approve(approval_id, who, note)

    def stop(self, scope: str, value: str, reason: str, who: str) -> Any:
        return self.engine.stops.stop(scope, value, reason, who)

    def resume(self, scope: str, value: str, who: str) -> dict[str, Any]:
        return self.engine.stops.resume(scope, value, who)

    def explain(self, decision_id: str) -> list[str]:
        from charter.trace.story import story

        self.log.flush()
        rec, lines = story(self.log.path, decision_id)
        return lines if rec is not None else [f"no record {decision_id}"]

    def verify(self) -> tuple[bool, str]:
        self.log.flush()
        return super().verify()

    def close(self) -> None:
        self.log.close()
        self.store.close()


class Sidecar(Backend):
    """A running `charter serve`: the orchestrator's token decides; each human has their own token."""

    def __init__(self, url: str, token: str, humans: Mapping[str, str], trace_path: str | None = None):
        from charter.client import Client

        super().__init__(f"sidecar at {url}", None, trace_path)
        self.client = Client(url, token)
        self.humans = {name: Client(url, tok) for name, tok in humans.items()}

    def _as(self, who: str) -> Any:
        c = self.humans.get(who)
        if c is None:
            raise LookupError(f"no token for {who}: pass --human {who}=TOKEN")
        return c

    def decide(self, request: Mapping[str, Any]) -> Decision:
        return self.client.decide(request)

    def settle(
        self, decision_id: str, actual_cost: Mapping[str, float] | None = None, outcome: str = "success"
    ) -> Any:
        return self.client.settle(decision_id, actual_cost=actual_cost, outcome=outcome)

    def approve(self, approval_id: str, who: str, note: str) -> dict[str, Any]:
        return self._as(who).approvals.approve(approval_id, who, note)

    def stop(self, scope: str, value: str, reason: str, who: str) -> Any:
        return self._as(who).stops.stop(scope, value, reason, who)

    def resume(self, scope: str, value: str, who: str) -> dict[str, Any]:
        return self._as(who).stops.resume(scope, value, who)

    def explain(self, decision_id: str) -> list[str]:
        import time

        from charter.client import SidecarError

        for _ in range(50):  # the sidecar's trace is written in batches; wait for the record
            try:
                return list(self.client.explain(decision_id).get("explanation") or [])
            except SidecarError as exc:
                if exc.status != 404:
                    return [f"(the sidecar could not explain {decision_id}: {exc})"]
            time.sleep(0.1)
        return [f"(the sidecar has no trace record of {decision_id}; start it with --trace)"]

    def close(self) -> None:
        self.client.close()
        for c in self.humans.values():
            c.close()
