"""Redis state store: every operation is one Lua script (EVALSHA); every key carries a TTL."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from charter.extras import missing_extra

try:
    import redis
    import redis.exceptions as rex
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError as _exc:  # an optional dependency: name the extra to install
    raise missing_extra("redis", "the Redis state store", _exc) from _exc

from charter.state import redis_grants
from charter.state import redis_lua as lua
from charter.state.base import query_params
from charter.state.grant_ops import went_through
from charter.state.redis_wire import map_redis_error, send_command
from charter.state.types import (
    BUDGET_GRACE_S,
    EMPTY_RUN,
    HOLD_RETAIN_S,
    LONG_TTL_S,
    PID,
    Batch,
    BatchResult,
    CommitResult,
    GrantRecord,
    HitResult,
    LineStatus,
    ReserveResult,
    RunState,
    StopRecord,
    StoreError,
    StoreFault,
    check_stop,
    dumps,
    lines_from_json,
    prune_margin,
    stop_from_dict,
    stop_to_dict,
)

T = TypeVar("T")
LONG_MS = int(LONG_TTL_S * 1000)
#: Record index entries are pruned this long after their record expired (replicas' clock skew).
INDEX_SKEW_MS = 60_000


def _ms(seconds: float) -> str:
    return str(max(1, int(seconds * 1000) + 1))


def _f(x: float) -> str:
    return repr(float(x))


def _opt(x: float | int | None) -> str:
    return "" if x is None else repr(x)


class RedisStore:
    """redis-py client with retries disabled: a non-idempotent script is never sent twice."""

    backend = "redis"

    def __init__(self, client: redis.Redis, prefix: str = "charter") -> None:
        self._r = client
        self.prefix = prefix
        self._tok_pid = -1
        self._tok = ""
        self._seq = itertools.count()
        #: idle connections of this process for scripts (``_eval``), and the process they belong to
        self._idle: list[Any] = []
        self._idle_pid = os.getpid()
        #: a client whose commands go elsewhere (the sidecar's bridge to redis.asyncio overrides
        #: execute_command) gets its scripts sent through it
        self._direct = type(client).execute_command is redis.Redis.execute_command
        reg = client.register_script
        self._apply = reg(lua.APPLY)
        self._commit = reg(lua.COMMIT)
        self._release = reg(lua.RELEASE)
        self._status = reg(lua.STATUS)
        self._add_labels = reg(lua.ADD_LABELS)
        self._mark_labels = reg(lua.MARK_LABELS)
        self._put_result = reg(lua.PUT_RESULT)
        self._remember = reg(lua.REMEMBER)
        self._put_record = reg(lua.PUT_RECORD)
        self._cas_record = reg(lua.CAS_RECORD)
        self._clear_stop = reg(lua.CLEAR_STOP)
        self._grants_begin = reg(redis_grants.BEGIN)
        self._grants_consume = reg(redis_grants.CONSUME)
        self._grants_refund = reg(redis_grants.REFUND)
        self._grants_narrow = reg(redis_grants.NARROW)

    @classmethod
    def from_url(cls, url: str) -> RedisStore:
        q = query_params(url)
        parts = urlsplit(url)
        base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        timeout = float(q.get("timeout", "2.0"))
        client = redis.Redis.from_url(
            base,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=float(q.get("connect_timeout", str(timeout))),
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
        )
        return cls(client, q.get("prefix", "charter"))

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except rex.RedisError as exc:
            raise map_redis_error(exc) from None
        except OSError as exc:
            raise StoreError(StoreFault.UNAVAILABLE, "redis", str(exc)) from None

    def _eval(self, script: Any, keys: list[str], args: list[str]) -> Any:
        """EVALSHA on a connection of our own: redis-py's command layer (pool checkout,
        observability, response callbacks) costs about as much as the loopback round trip.

        Never re-sent, except after NOSCRIPT (the script did not run). A connection that failed
        mid-call is dropped (it may be out of step with the server); an error reply leaves it
        usable.
        """
        if not self._direct:
            return script(keys=keys, args=args)
        pid = PID[0]
        if self._idle_pid != pid:  # a forked child never uses its parent's sockets
            self._idle, self._idle_pid = [], pid
        idle = self._idle
        try:
            conn = idle.pop()
        except IndexError:
            pool = self._r.connection_pool
            conn = pool.connection_class(**pool.connection_kwargs)
        try:
            try:
                send_command(conn, ("EVALSHA", script.sha, len(keys), *keys, *args))
                out = conn.read_response()
            except rex.NoScriptError:
                script.sha = self._r.script_load(script.script)
                send_command(conn, ("EVALSHA", script.sha, len(keys), *keys, *args))
                out = conn.read_response()
        except rex.ResponseError:
            idle.append(conn)
            raise
        except BaseException:
            conn.disconnect()
            raise
        idle.append(conn)
        return out

    def _k(self, kind: str, key: str) -> str:
        return f"{self.prefix}:{kind}:{key}"

    def _token(self) -> str:
        """Unique member suffix; re-drawn after fork so parent and child never collide."""
        if self._tok_pid != PID[0]:
            self._tok_pid = PID[0]
            self._tok = f"{self._tok_pid:x}.{os.urandom(6).hex()}"
        return f"{self._tok}.{next(self._seq)}"

    # ------------------------------------------------------------------ hot path
    def apply(self, batch: Batch) -> BatchResult:
        op = batch.grant_use
        if op is None:
            return self._apply_batch(batch)
        # the grant-use op: consumed (atomically, checked before written) just before the batch,
        # given back if the batch does not go through (charter.state.redis_grants)
        rk = op.run_key
        gkeys = [self._k("rg", rk), self._k("rgu", rk), self._k("rgl", rk)]
        args: list[str] = [str(len(op.candidates))]
        for ids in op.candidates:
            args += [str(len(ids)), *ids]
        got = self._call(lambda: self._eval(self._grants_consume, gkeys, args))
        if not got:
            probe = self._apply_batch(
                Batch(now=batch.now, stop_keys=batch.stop_keys, idempotency_key=batch.idempotency_key)
            )
            if probe.stop is not None or probe.replayed_payload is not None:
                return probe
            return BatchResult(grant_refused=True)
        used = {str(got[i]): int(got[i + 1]) for i in range(0, len(got), 2)}
        try:
            res = self._apply_batch(batch)
        except StoreError:
            self._refund(gkeys, list(used))
            raise
        if not went_through(res):
            self._refund(gkeys, list(used))
            return res
        current = {g.id: g for g in self._grants(rk)}
        res.grant_uses = tuple(
            GrantRecord(g.id, g.seq, g.kind, g.params, g.limit, used[g.id], g.actor, g.at)
            for gid in used
            if (g := current.get(gid)) is not None
        )
        return res

    def _refund(self, gkeys: list[str], ids: list[str]) -> None:
        with contextlib.suppress(StoreError):
            self._call(lambda: self._eval(self._grants_refund, [gkeys[1]], ids))

    def _grants(self, run_key: str) -> tuple[GrantRecord, ...]:
        def go() -> list[Any]:
            p = self._r.pipeline(transaction=True)
            p.hgetall(self._k("rg", run_key))
            p.hgetall(self._k("rgu", run_key))
            p.hgetall(self._k("rgl", run_key))
            return p.execute()

        return _grant_records(*self._call(go))

    def begin_grants(
        self,
        run_key: str,
        grants: Sequence[GrantRecord],
        labels: frozenset[str] = frozenset(),
        *,
        now: float,
        ttl_s: float,
    ) -> bool:
        """Store a run's grants (and first labels) iff the run has no grants and no step; atomic."""
        keys = [self._k(p, run_key) for p in ("r", "rl", "rg", "rgu", "rgl")]
        args = [_f(now), _f(now + ttl_s), _ms(ttl_s), str(len(grants))]
        for g in grants:
            args += [g.id, dumps(g.to_doc()), "" if g.limit is None else str(g.limit)]
        args += sorted(labels)
        ok = bool(self._call(lambda: self._eval(self._grants_begin, keys, args)))
        if ok and labels:  # they arrive before the first step, with their marks (semantics.md 8.1)
            self.mark_labels(run_key, labels, now=now, ttl_s=ttl_s)
        return ok

    def narrow_grants(
        self, run_key: str, revoke: Sequence[str], uses: Mapping[str, int], *, now: float
    ) -> tuple[GrantRecord, ...]:
        """Revoke grants or lower their uses (never widen); the run's grants after."""
        keys = [self._k(p, run_key) for p in ("rg", "rgu", "rgl")]
        args = [str(len(revoke)), *revoke]
        for gid, n in uses.items():
            args += [gid, str(int(n))]
        self._call(lambda: self._eval(self._grants_narrow, keys, args))
        return self._grants(run_key)

    def _apply_batch(self, batch: Batch) -> BatchResult:
        now = batch.now
        keys: list[str] = []
        codes: list[str] = []  # expected type of each key, checked before anything is written
        args: list[str] = [_f(now), ""]
        if batch.idempotency_key is not None:
            args.append("1")
            keys.append(self._k("i", batch.idempotency_key))
            codes.append("s")
        else:
            args.append("0")
        args.append(str(len(batch.stop_keys)))
        if batch.stop_keys:
            keys.append(self._k("stops", "all"))
            codes.append("h")
            args.extend(f"{s}\n{v}" for s, v in batch.stop_keys)
        args.append(str(len(batch.hits)))
        for h in batch.hits:
            member = h.member is not None
            if member:
                keys.append(self._k("wm", h.key))
                codes.append("z")
            else:  # the window and its running sum
                keys += [self._k("w", h.key), self._k("ws", h.key)]
                codes += ["z", "h"]
            args += [
                "m" if member else "c",
                _f(now - h.window_s),
                _f(now - h.window_s - prune_margin(h.window_s)),
                str(h.amount),
                _opt(h.limit),
                _opt(h.trip_above),
                h.member if h.member is not None else self._token(),
                _ms(h.window_s + prune_margin(h.window_s) + 1),
            ]
        rv = batch.reserve
        if rv is not None:
            keys.append(self._k("h", rv.hold_id))
            codes.append("h")
            lines = [[x.key, x.limit, x.amount, x.rolling_s, x.expires_at] for x in rv.lines]
            args += [
                "1",
                rv.hold_id,
                _f(now + rv.ttl_s),
                _ms(rv.ttl_s + HOLD_RETAIN_S),
                dumps(lines),
                str(len(rv.lines)),
            ]
            for line in rv.lines:
                keys += [self._k("b", line.key), self._k("bh", line.key), self._k("bs", line.key)]
                codes += ["h", "z", "z"]
                ttl = self._budget_ttl(line.rolling_s, line.expires_at, now, rv.ttl_s)
                args += [
                    line.key,
                    str(line.limit),
                    str(line.amount),
                    _opt(line.rolling_s),
                    _opt(line.expires_at),
                    ttl,
                ]
        else:
            args.append("0")
        ev = batch.event
        if ev is not None:
            rk = ev.run_key
            keys += [self._k("r", rk), self._k("rl", rk), self._k("rm", rk), self._k("re", rk)]
            codes += ["h", "S", "h", "l"]
            args += [
                "1",
                dumps(ev.event),
                _f(now + ev.ttl_s),
                _ms(ev.ttl_s),
                str(len(ev.labels)),
                *ev.labels,
                str(len(ev.marks)),
                *ev.marks,
            ]
        else:
            args.append("0")
        rec = batch.record
        if rec is not None:
            keys += [self._k("rec", f"{rec.kind}:{rec.id}"), self._k("recz", rec.kind)]
            codes += ["h", "z"]
            args += ["1", *self._record_args(rec.id, rec.doc, rec.ttl_s)]
        else:
            args.append("0")
        args[1] = "".join(codes)
        out = self._call(lambda: self._eval(self._apply, keys, args))
        try:
            return self._parse_apply(batch, out)
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            raise map_redis_error(exc) from None

    @staticmethod
    def _budget_ttl(rolling_s: float | None, expires_at: float | None, now: float, hold: float) -> str:
        if expires_at is not None:
            ttl = expires_at + BUDGET_GRACE_S - now
        elif rolling_s is not None:
            ttl = rolling_s + BUDGET_GRACE_S
        else:
            ttl = LONG_TTL_S
        return _ms(max(ttl, hold + 60.0))

    @staticmethod
    def _parse_apply(batch: Batch, out: list[Any]) -> BatchResult:
        tag = out[0]
        if tag == "R":
            return BatchResult(replayed_payload=out[1])
        if tag == "S":
            return BatchResult(stop=stop_from_dict(json.loads(out[1])))
        _, hits_raw, res_raw, step, run_raw, recorded = out
        hits = tuple(
            HitResult(op.key, int(t), bool(lim), bool(tr))
            for op, (t, lim, tr) in zip(batch.hits, hits_raw, strict=True)
        )
        reserve = None
        if res_raw:
            ok, lines = json.loads(res_raw[1])
            reserve = ReserveResult(bool(ok), lines_from_json(lines), bool(res_raw[0]))
        run = None
        if run_raw:
            run = _run_state(run_raw[0], run_raw[1], run_raw[2])
        return BatchResult(
            hits=hits, reserve=reserve, step=None if step < 0 else int(step), run=run, recorded=bool(recorded)
        )

    # ------------------------------------------------------------------ holds
    def _hold_lines(self, hold_id: str) -> list[list[Any]] | None:
        raw = self._call(lambda: self._r.hget(self._k("h", hold_id), "lines"))
        return None if raw is None else json.loads(str(raw))

    def commit(self, hold_id: str, actual: int | None, *, now: float) -> CommitResult:
        lines = self._hold_lines(hold_id)
        if lines is None:
            return CommitResult(False, False, found=False)
        keys = [self._k("h", hold_id)]
        args = [_f(now), _opt(actual), hold_id]
        for key, _limit, _amount, rolling_s, expires_at in lines:
            keys += [self._k("b", key), self._k("bh", key), self._k("bs", key)]
            args += [self._token(), self._budget_ttl(rolling_s, expires_at, now, 0.0)]
        out = self._call(lambda: self._eval(self._commit, keys, args))
        if out[0] in ("U", "X"):  # U: the hold expired between the two calls
            return CommitResult(False, False, found=out[0] == "X")
        flat = out[1]
        statuses = []
        for i, (key, limit, amount, _r, _e) in enumerate(lines):
            used, reserved = int(flat[2 * i]), int(flat[2 * i + 1])
            amt = amount if actual is None or out[0] == "A" else actual
            statuses.append(LineStatus(key, limit, used, reserved, amt, used <= limit))
        return CommitResult(True, out[0] == "A", tuple(statuses))

    def release(self, hold_id: str, *, now: float) -> bool:
        lines = self._hold_lines(hold_id)
        if lines is None:
            return False
        keys = [self._k("h", hold_id)]
        for ln in lines:
            keys += [self._k("b", ln[0]), self._k("bh", ln[0])]
        return bool(self._call(lambda: self._eval(self._release, keys, [_f(now), hold_id])))

    def budget_status(self, keys: Sequence[str], *, now: float) -> dict[str, tuple[int, int]]:
        if not keys:
            return {}
        ks: list[str] = []
        for k in keys:
            ks += [self._k("b", k), self._k("bh", k), self._k("bs", k)]
        flat = self._call(lambda: self._eval(self._status, ks, [_f(now)]))
        return {k: (int(flat[2 * i]), int(flat[2 * i + 1])) for i, k in enumerate(keys)}

    def ledger_total(self, key: str) -> int:
        raw = self._call(lambda: self._r.hget(self._k("b", key), "total"))
        return 0 if raw is None else int(str(raw))

    # ------------------------------------------------------------------ runs
    def run_state(self, run_key: str) -> RunState:
        def go() -> list[Any]:
            p = self._r.pipeline(transaction=True)
            p.hget(self._k("r", run_key), "steps")
            p.smembers(self._k("rl", run_key))
            p.hgetall(self._k("rm", run_key))
            # the run's grants, in the same round trip
            p.hgetall(self._k("rg", run_key))
            p.hgetall(self._k("rgu", run_key))
            p.hgetall(self._k("rgl", run_key))
            return p.execute()

        steps, labels, marks, docs, used, limits = self._call(go)
        if steps is None and not labels and not docs:
            return EMPTY_RUN
        flat = [x for kv in marks.items() for x in kv]
        state = _run_state(int(steps or 0), list(labels), flat)
        if docs:
            grants = _grant_records(docs, used, limits)
            return RunState(state.steps, state.labels, state.marks, grants)
        return state

    def add_labels(self, run_key: str, labels: frozenset[str], *, now: float, ttl_s: float) -> None:
        keys = [self._k(p, run_key) for p in ("r", "rl", "rm", "re")]
        args = [_f(now), _f(now + ttl_s), _ms(ttl_s), *sorted(labels)]
        self._call(lambda: self._eval(self._add_labels, keys, args))

    def mark_labels(self, run_key: str, labels: frozenset[str], *, now: float, ttl_s: float) -> None:
        keys = [self._k(p, run_key) for p in ("r", "rl", "rm", "re")]
        args = [_f(now), _f(now + ttl_s), _ms(ttl_s), *sorted(labels)]
        self._call(lambda: self._eval(self._mark_labels, keys, args))

    def history(self, run_key: str, limit: int = 100) -> list[dict[str, Any]]:
        if limit <= 0:
            return []
        raw = self._call(lambda: self._r.lrange(self._k("re", run_key), -limit, -1))
        return [json.loads(x) for x in raw]

    def put_result(
        self, run_key: str, decision: str, doc: Mapping[str, Any], *, now: float, ttl_s: float
    ) -> None:
        keys = [self._k(p, run_key) for p in ("r", "rl", "rm", "re", "rr")]
        args = [_f(now), _f(now + ttl_s), _ms(ttl_s), decision, dumps(dict(doc))]
        self._call(lambda: self._eval(self._put_result, keys, args))

    def history_detail(self, run_key: str, limit: int) -> list[dict[str, Any]]:
        if limit <= 0:
            return []

        def go() -> list[Any]:
            p = self._r.pipeline(transaction=True)
            p.lrange(self._k("re", run_key), -limit, -1)
            p.hgetall(self._k("rr", run_key))
            return p.execute()

        raw, results = self._call(go)
        found = {str(k): v for k, v in results.items()} if results else {}
        out = []
        for x in raw:
            ev = json.loads(x)
            got = found.get(str(ev.get("decision")))
            if got is not None:
                ev["settlement"] = json.loads(got)
            out.append(ev)
        return out

    # ------------------------------------------------------------------ stops
    def set_stop(self, rec: StopRecord) -> None:
        check_stop(rec)
        key = self._k("stops", "all")

        def go() -> None:
            p = self._r.pipeline(transaction=True)
            p.hset(key, f"{rec.scope}\n{rec.value}", dumps(stop_to_dict(rec)))
            p.pexpire(key, LONG_MS)
            p.execute()

        self._call(go)

    def clear_stop(self, scope: str, value: str) -> StopRecord | None:
        key = self._k("stops", "all")
        raw = self._call(lambda: self._eval(self._clear_stop, [key], [f"{scope}\n{value}"]))
        return None if raw is None else stop_from_dict(json.loads(raw))

    def list_stops(self) -> list[StopRecord]:
        raw = self._call(lambda: self._r.hvals(self._k("stops", "all")))
        recs = [stop_from_dict(json.loads(x)) for x in raw]
        return sorted(recs, key=lambda s: (s.at, s.scope, s.value))

    # ------------------------------------------------------------------ idempotency
    def remember(self, key: str, payload: str, *, now: float, ttl_s: float) -> str | None:
        args = [_f(now), _f(now + ttl_s), _ms(ttl_s), payload]
        out = self._call(lambda: self._eval(self._remember, [self._k("i", key)], args))
        return str(out[1]) if out[0] == 1 else None

    # ------------------------------------------------------------------ records
    def put_record(self, kind: str, id: str, doc: Mapping[str, Any], *, ttl_s: float | None) -> None:
        keys = [self._k("rec", f"{kind}:{id}"), self._k("recz", kind)]
        args = self._record_args(id, doc, ttl_s)
        self._call(lambda: self._eval(self._put_record, keys, args))

    @staticmethod
    def _record_args(id: str, doc: Mapping[str, Any], ttl_s: float | None) -> list[str]:
        """doc, ttl_ms, index ttl_ms, id, expiry and prune bound in epoch ms (the arguments of
        the put_record Lua function)."""
        ttl = LONG_MS if ttl_s is None else int(_ms(ttl_s))
        now_ms = int(time.time() * 1000)
        return [dumps(dict(doc)), str(ttl), str(LONG_MS), id, str(now_ms + ttl), str(now_ms - INDEX_SKEW_MS)]

    def get_record(self, kind: str, id: str) -> tuple[int, dict[str, Any]] | None:
        v, doc = self._call(lambda: self._r.hmget(self._k("rec", f"{kind}:{id}"), ["v", "doc"]))
        return None if v is None or doc is None else (int(v), json.loads(doc))

    def cas_record(self, kind: str, id: str, version: int, doc: Mapping[str, Any]) -> bool:
        keys = [self._k("rec", f"{kind}:{id}")]
        args = [str(version), dumps(dict(doc))]
        return bool(self._call(lambda: self._eval(self._cas_record, keys, args)))

    def list_records(self, kind: str) -> list[dict[str, Any]]:
        now_ms = int(time.time() * 1000)
        legacy_key = self._k("reck", kind)  # the unpruned set index of earlier versions

        def index() -> tuple[list[Any], set[Any]]:
            p = self._r.pipeline(transaction=False)
            p.zrangebyscore(self._k("recz", kind), now_ms - INDEX_SKEW_MS, "+inf")
            p.smembers(legacy_key)
            zs, legacy = p.execute()
            return zs, legacy

        live, legacy = self._call(index)
        ids = sorted({str(i) for i in live} | {str(i) for i in legacy})

        def go() -> list[Any]:
            p = self._r.pipeline(transaction=False)
            for i in ids:
                p.hget(self._k("rec", f"{kind}:{i}"), "doc")
            return p.execute()

        docs = self._call(go) if ids else []
        gone = [i for i, d in zip(ids, docs, strict=True) if d is None and i in legacy]
        if gone:  # drain the legacy index of records that no longer exist
            self._call(lambda: self._r.srem(legacy_key, *gone))
        return [json.loads(d) for d in docs if d is not None]

    def ping(self) -> None:
        self._call(self._r.ping)

    def close(self) -> None:
        try:
            if self._idle_pid == os.getpid():
                for conn in self._idle:
                    conn.disconnect()
            self._idle = []
            self._r.close()
        except rex.RedisError as exc:
            raise map_redis_error(exc) from None


def _grant_records(
    docs: Mapping[str, str], used: Mapping[str, str], limits: Mapping[str, str]
) -> tuple[GrantRecord, ...]:
    out = []
    for gid, doc in docs.items():
        g = GrantRecord.from_doc(json.loads(doc))
        lim = limits.get(gid)
        limit = None if lim in (None, "") else int(str(lim))
        out.append(
            GrantRecord(g.id, g.seq, g.kind, g.params, limit, int(str(used.get(gid, 0))), g.actor, g.at)
        )
    return tuple(sorted(out, key=lambda g: g.seq))


def _run_state(steps: Any, labels: list[str], marks_flat: list[str]) -> RunState:
    marks: dict[str, tuple[int, float]] = {}
    for i in range(0, len(marks_flat), 2):
        step_s, t_s = str(marks_flat[i + 1]).split(":", 1)
        marks[str(marks_flat[i])] = (int(step_s), float(t_s))
    return RunState(int(steps), frozenset(labels), marks)
