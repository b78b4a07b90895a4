"""DDL and PL/pgSQL functions of the PostgreSQL backend (one function call = one transaction)."""

from __future__ import annotations

from charter.state.types import BUDGET_GRACE_S, HISTORY_PRUNE_EVERY, HOLD_RETAIN_S

TABLES = """
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.hits(key text NOT NULL, t float8 NOT NULL, amount bigint NOT NULL);
CREATE INDEX IF NOT EXISTS hits_kt ON {s}.hits(key, t) INCLUDE (amount);
-- Running sums (see sum_above in apply): s = sum of a window's hits with t > b; b only moves
-- forward. Budgets keep the same for live holds in rs/rb.
CREATE TABLE IF NOT EXISTS {s}.wsums(key text PRIMARY KEY, s bigint NOT NULL, b float8 NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.members(key text NOT NULL, member text NOT NULL,
  t float8 NOT NULL, PRIMARY KEY(key, member));
CREATE INDEX IF NOT EXISTS members_kt ON {s}.members(key, t);
CREATE TABLE IF NOT EXISTS {s}.budgets(key text PRIMARY KEY, total bigint NOT NULL,
  rolling_s float8, expires_at float8);
CREATE TABLE IF NOT EXISTS {s}.spends(key text NOT NULL, t float8 NOT NULL, amount bigint NOT NULL);
CREATE INDEX IF NOT EXISTS spends_kt ON {s}.spends(key, t) INCLUDE (amount);
CREATE TABLE IF NOT EXISTS {s}.holds(id text PRIMARY KEY, state text NOT NULL,
  expires_at float8 NOT NULL, lines jsonb NOT NULL, result jsonb NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.hold_lines(key text NOT NULL, hold_id text NOT NULL,
  amount bigint NOT NULL, expires_at float8 NOT NULL, PRIMARY KEY(key, hold_id));
-- Range scans on (key, time) skip the dead tuples that deleted entries leave until VACUUM.
CREATE INDEX IF NOT EXISTS hold_lines_ke ON {s}.hold_lines(key, expires_at) INCLUDE (amount);
ALTER TABLE {s}.budgets ADD COLUMN IF NOT EXISTS rs bigint, ADD COLUMN IF NOT EXISTS rb float8;
CREATE TABLE IF NOT EXISTS {s}.runs(key text PRIMARY KEY, steps int NOT NULL,
  labels text[] NOT NULL, marks jsonb NOT NULL, expires_at float8 NOT NULL);
-- a run's deadline on the server's clock (ttl after its last write, like a Redis key's TTL);
-- NULL: written by an earlier version, read as live
ALTER TABLE {s}.runs ADD COLUMN IF NOT EXISTS dl float8;
-- when a window's rows are out of it and its margin (gc drops them there): per key in its
-- running sum, per row for members; NULL: written by an earlier version (kept until hit again)
ALTER TABLE {s}.wsums ADD COLUMN IF NOT EXISTS e float8;
ALTER TABLE {s}.members ADD COLUMN IF NOT EXISTS e float8;
CREATE TABLE IF NOT EXISTS {s}.events(run_key text NOT NULL, step int NOT NULL,
  doc jsonb NOT NULL, PRIMARY KEY(run_key, step));
CREATE TABLE IF NOT EXISTS {s}.results(run_key text NOT NULL, decision text NOT NULL,
  doc jsonb NOT NULL, PRIMARY KEY(run_key, decision));
CREATE TABLE IF NOT EXISTS {s}.stops(scope text NOT NULL, value text NOT NULL,
  rec jsonb NOT NULL, PRIMARY KEY(scope, value));
CREATE TABLE IF NOT EXISTS {s}.idem(key text PRIMARY KEY, payload text NOT NULL,
  expires_at float8 NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.records(kind text NOT NULL, id text NOT NULL,
  version bigint NOT NULL, doc jsonb NOT NULL, expires_at float8 NOT NULL,
  PRIMARY KEY(kind, id));
"""

#: run grants (charter.state.grant_ops): one document per run
GRANT_TABLES = """
CREATE TABLE IF NOT EXISTS {s}.run_grants(run_key text PRIMARY KEY, doc text NOT NULL,
  expires_at float8 NOT NULL);
"""

FUNCTIONS = (
    (
        """
-- the advisory lock id of a key, as PostgresStore's lock_id computes it (the first 8 bytes of
-- SHA-256, signed): the sweep takes the lock a batch on the key would take
CREATE OR REPLACE FUNCTION {s}.key_lock(kind text, k text) RETURNS bigint LANGUAGE sql IMMUTABLE
  AS $f$ SELECT ('x' || left(encode(sha256(convert_to({lit} || '|' || kind || '|' || k, 'UTF8')),
    'hex'), 16))::bit(64)::bigint $f$;

CREATE OR REPLACE FUNCTION {s}.line_state(k text, now_ float8, roll float8, use_roll bool,
  reset bool, OUT used bigint, OUT reserved bigint) LANGUAGE plpgsql AS $f$
DECLARE bt bigint; br float8; be float8; rs_ bigint; rb_ float8;
BEGIN
  used := 0;
  SELECT total, rolling_s, expires_at, rs, rb INTO bt, br, be, rs_, rb_ FROM {s}.budgets WHERE key = k;
  IF FOUND THEN
    IF be IS NOT NULL AND now_ >= be + GRACE THEN
      IF reset THEN
        DELETE FROM {s}.budgets WHERE key = k;
        DELETE FROM {s}.spends WHERE key = k;
        DELETE FROM {s}.hold_lines WHERE key = k;
      END IF;
      reserved := 0;
      RETURN;
    END IF;
    IF NOT use_roll THEN roll := br; END IF;
    IF roll IS NULL THEN
      used := bt;
    ELSE
      IF reset AND random() < 0.03 THEN
        DELETE FROM {s}.spends WHERE key = k AND t <= now_ - 2 * roll;
      END IF;
      SELECT coalesce(sum(amount), 0) INTO used FROM {s}.spends
        WHERE key = k AND t > now_ - roll;
    END IF;
    -- Live holds from the running sum rs (holds expiring after rb); a writer (reset, under the
    -- key's lock) moves rb forward to now_; a reader only computes.
    IF rs_ IS NULL OR rb_ IS NULL THEN
      SELECT coalesce(sum(amount), 0) INTO reserved FROM {s}.hold_lines
        WHERE key = k AND expires_at > now_;
      IF reset THEN UPDATE {s}.budgets SET rs = reserved, rb = now_ WHERE key = k; END IF;
    ELSIF now_ > rb_ THEN
      reserved := rs_ - (SELECT coalesce(sum(amount), 0) FROM {s}.hold_lines
        WHERE key = k AND expires_at > rb_ AND expires_at <= now_);
      IF reset THEN UPDATE {s}.budgets SET rs = reserved, rb = now_ WHERE key = k; END IF;
    ELSE
      reserved := rs_ + (SELECT coalesce(sum(amount), 0) FROM {s}.hold_lines
        WHERE key = k AND expires_at > now_ AND expires_at <= rb_);
    END IF;
    -- INVARIANT: only holds at or below rb (>= now_ after a writer moved it) are pruned
    IF reset AND random() < 0.03 THEN
      DELETE FROM {s}.hold_lines WHERE key = k AND expires_at <= now_;
    END IF;
    RETURN;
  END IF;
  IF reset AND random() < 0.03 THEN
    DELETE FROM {s}.hold_lines WHERE key = k AND expires_at <= now_;
  END IF;
  SELECT coalesce(sum(amount), 0) INTO reserved FROM {s}.hold_lines
    WHERE key = k AND expires_at > now_;
END $f$;

CREATE OR REPLACE FUNCTION {s}.gc(now_ float8) RETURNS void LANGUAGE plpgsql AS $f$
DECLARE gone text[];
BEGIN
  DELETE FROM {s}.holds WHERE expires_at <= now_ - RETAIN;
  -- expired holds, except those a budget's running sum still counts (above its rb)
  DELETE FROM {s}.hold_lines h WHERE h.expires_at <= now_ AND NOT EXISTS
    (SELECT 1 FROM {s}.budgets x WHERE x.key = h.key AND x.rb IS NOT NULL AND h.expires_at > x.rb);
  -- budgets that read as absent (docs/state.md "What each store keeps"): a calendar period past
  -- its grace, a rolling budget whose spends are all past twice its window, neither with a hold
  -- line left. Under the key's lock (tried: a key a batch holds is left for a later sweep), then
  -- checked again in a second statement, whose snapshot sees what the lock's last holder wrote.
  SELECT array_agg(x.key) INTO gone FROM {s}.budgets x WHERE CASE WHEN NOT EXISTS
      (SELECT 1 FROM {s}.hold_lines h WHERE h.key = x.key) AND (x.expires_at + GRACE <= now_
      OR (x.expires_at IS NULL AND x.rolling_s IS NOT NULL AND NOT EXISTS (SELECT 1 FROM
      {s}.spends y WHERE y.key = x.key AND y.t > now_ - 2 * x.rolling_s)))
    THEN pg_try_advisory_xact_lock({s}.key_lock('b', x.key)) ELSE false END;
  IF gone IS NOT NULL THEN
    WITH d AS (DELETE FROM {s}.budgets x WHERE x.key = ANY(gone) AND NOT EXISTS
        (SELECT 1 FROM {s}.hold_lines h WHERE h.key = x.key) AND (x.expires_at + GRACE <= now_
        OR (x.expires_at IS NULL AND x.rolling_s IS NOT NULL AND NOT EXISTS (SELECT 1 FROM
        {s}.spends y WHERE y.key = x.key AND y.t > now_ - 2 * x.rolling_s))) RETURNING x.key)
    DELETE FROM {s}.spends y USING d WHERE y.key = d.key;
  END IF;
  DELETE FROM {s}.idem WHERE expires_at <= now_;
  -- windows whose newest hit is out of its window and its margin: the key's hits with its
  -- running sum, members one by one; a running sum of an earlier version (no e) after a day idle
  DELETE FROM {s}.hits x USING {s}.wsums w WHERE x.key = w.key AND w.e <= now_;
  DELETE FROM {s}.wsums WHERE e <= now_ OR (e IS NULL AND b <= now_ - 86400);
  DELETE FROM {s}.members WHERE e <= now_;
  DELETE FROM {s}.records WHERE expires_at <= extract(epoch FROM clock_timestamp());
  DELETE FROM {s}.events e USING {s}.runs r WHERE e.run_key = r.key
    AND (r.expires_at <= now_ OR r.dl <= extract(epoch FROM clock_timestamp()));
  DELETE FROM {s}.results x USING {s}.runs r WHERE x.run_key = r.key
    AND (r.expires_at <= now_ OR r.dl <= extract(epoch FROM clock_timestamp()));
  DELETE FROM {s}.runs WHERE expires_at <= now_ OR dl <= extract(epoch FROM clock_timestamp());
  DELETE FROM {s}.run_grants WHERE expires_at <= now_;
END $f$;

CREATE OR REPLACE FUNCTION {s}.apply(b jsonb) RETURNS jsonb LANGUAGE plpgsql AS $f$
DECLARE
  now_ float8 := (b->>'now')::float8;
  h jsonb; r jsonb; l jsonb; e jsonb;
  hits_out jsonb := '[]';
  blocked bool := false;
  total bigint; lo float8; lim bigint; amt bigint; present bool; limited bool; tripped bool;
  res jsonb; ok bool; statuses jsonb; u bigint; rs bigint; lok bool; exp_ float8;
  step_ int; run_out jsonb; rsteps int; rlabels text[]; rmarks jsonb; rexp float8; rdl float8;
  p text; st jsonb; c jsonb; recorded bool := false; ws bigint; wb float8; dsum bigint;
  k text; roll float8; bt bigint; br float8; be float8; rs_ bigint; rb_ float8; nrs bigint;
  nrb float8; lk text[]; lroll float8[]; lexp float8[]; lamt bigint[]; lnrs bigint[];
  lnrb float8[]; lmode text[]; i int; j int; nlocks bigint; we float8;
BEGIN
  -- the first stop that applies, and the keys' locks (in order), in one statement
  SELECT (SELECT x.rec FROM jsonb_array_elements(b->'stops') WITH ORDINALITY AS q(v, i)
      JOIN {s}.stops x ON x.scope = q.v->>0 AND x.value = q.v->>1 ORDER BY q.i LIMIT 1),
    (SELECT count(pg_advisory_xact_lock(q.x)) FROM
      (SELECT DISTINCT x::bigint AS x FROM jsonb_array_elements_text(b->'locks') x ORDER BY 1) q)
    INTO st, nlocks;
  IF st IS NOT NULL THEN RETURN jsonb_build_object('stop', st); END IF;
  -- stops first, then a replay (a retried request is halted like any other)
  IF b->>'idem' IS NOT NULL THEN
    SELECT payload INTO p FROM {s}.idem WHERE key = b->>'idem' AND expires_at > now_;
    IF FOUND THEN RETURN jsonb_build_object('replayed', p); END IF;
  END IF;

  -- (loops index the arrays: a FOR over a query runs one more statement)
  FOR j IN 0 .. jsonb_array_length(b->'hits') - 1 LOOP
    h := b->'hits'->j;
    lo := (h->>'lo')::float8;
    lim := (h->>'limit')::bigint;
    amt := (h->>'amount')::bigint;
    limited := false;
    IF h->>'member' IS NOT NULL THEN
      IF random() < 0.03 THEN
        DELETE FROM {s}.members WHERE key = h->>'key' AND t <= lo - (h->>'w')::float8;
      END IF;
      SELECT count(*), coalesce(bool_or(member = h->>'member'), false) INTO total, present
        FROM {s}.members WHERE key = h->>'key' AND t > lo;
      IF NOT present AND lim IS NOT NULL AND total + 1 > lim THEN
        limited := true;
      ELSE
        INSERT INTO {s}.members(key, member, t, e) VALUES (h->>'key', h->>'member', now_,
            now_ + (h->>'win')::float8 + (h->>'w')::float8)
          ON CONFLICT (key, member) DO UPDATE SET t = excluded.t, e = excluded.e;
        IF NOT present THEN total := total + 1; END IF;
      END IF;
    ELSE
      -- running sum: ws = sum of the window's hits after wb; wb moves forward to lo
      -- (with the sum of the hits the boundary passes when it moves to lo: none when it stays)
      SELECT x.s, x.b, (SELECT coalesce(sum(amount), 0) FROM {s}.hits
          WHERE key = h->>'key' AND t > x.b AND t <= lo)
        INTO ws, wb, dsum FROM {s}.wsums x WHERE x.key = h->>'key';
      IF NOT FOUND THEN
        SELECT coalesce(sum(amount), 0) INTO ws FROM {s}.hits WHERE key = h->>'key' AND t > lo;
        wb := lo;
      ELSIF lo > wb THEN
        ws := ws - dsum;
        wb := lo;
      END IF;
      total := ws;
      IF lo < wb THEN  -- a caller whose clock lags the boundary
        total := total + (SELECT coalesce(sum(amount), 0) FROM {s}.hits
          WHERE key = h->>'key' AND t > lo AND t <= wb);
      END IF;
      IF random() < 0.03 THEN  -- below the boundary: not in the running sum
        DELETE FROM {s}.hits WHERE key = h->>'key' AND t <= lo - (h->>'w')::float8;
      END IF;
      -- e: when every hit of the key is out of its window and its margin (gc drops it then):
      -- no hit is newer than wb + window, and wb only moves forward
      we := wb + 2 * (h->>'win')::float8 + (h->>'w')::float8;
      IF lim IS NOT NULL AND total + amt > lim THEN
        limited := true;
        INSERT INTO {s}.wsums(key, s, b, e) VALUES (h->>'key', ws, wb, we)
          ON CONFLICT (key) DO UPDATE SET s = excluded.s, b = excluded.b, e = excluded.e;
      ELSE
        total := total + amt;
        IF now_ > wb THEN ws := ws + amt; END IF;
        WITH ins AS (INSERT INTO {s}.hits VALUES (h->>'key', now_, amt))
        INSERT INTO {s}.wsums(key, s, b, e) VALUES (h->>'key', ws, wb, we)
          ON CONFLICT (key) DO UPDATE SET s = excluded.s, b = excluded.b, e = excluded.e;
      END IF;
    END IF;
    tripped := h->>'trip' IS NOT NULL AND total > (h->>'trip')::bigint;
    IF limited OR tripped THEN blocked := true; END IF;
    hits_out := hits_out || jsonb_build_array(jsonb_build_array(total, limited, tripped));
  END LOOP;

  r := b->'reserve';
  IF jsonb_typeof(r) = 'object' AND NOT blocked THEN
    SELECT result INTO st FROM {s}.holds WHERE id = r->>'id';
    IF FOUND THEN
      res := jsonb_build_array(true, st);
    ELSE
      ok := true;
      statuses := '[]';
      exp_ := (r->>'exp')::float8;
      lk := ARRAY[]::text[]; lroll := ARRAY[]::float8[]; lexp := ARRAY[]::float8[];
      lamt := ARRAY[]::bigint[]; lnrs := ARRAY[]::bigint[]; lnrb := ARRAY[]::float8[];
      lmode := ARRAY[]::text[];
      -- Each line's state (as line_state with reset), then ONE write of its budget row: its
      -- running sum of live holds (rs above the boundary rb, which a writer moves to now_) and,
      -- when the hold is made, its amount and the line's rolling_s / expires_at.
      FOR j IN 0 .. jsonb_array_length(r->'lines') - 1 LOOP
        l := r->'lines'->j;
        k := l->>'key';
        roll := (l->>'roll')::float8;
        amt := (l->>'amount')::bigint;
        u := 0; nrs := NULL; nrb := NULL;
        -- (with the sum of the holds the boundary passes when it moves to now_)
        SELECT x.total, x.rolling_s, x.expires_at, x.rs, x.rb, (SELECT coalesce(sum(amount), 0)
            FROM {s}.hold_lines WHERE key = k AND expires_at > x.rb AND expires_at <= now_)
          INTO bt, br, be, rs_, rb_, dsum FROM {s}.budgets x WHERE x.key = k;
        IF FOUND AND be IS NOT NULL AND now_ >= be + GRACE THEN
          -- reserving on a dead calendar key: start it afresh
          DELETE FROM {s}.budgets WHERE key = k;
          DELETE FROM {s}.spends WHERE key = k;
          DELETE FROM {s}.hold_lines WHERE key = k;
          rs := 0;
          lmode := lmode || 'new'::text;
        ELSIF FOUND THEN
          IF roll IS NULL THEN
            u := bt;
          ELSE
            IF random() < 0.03 THEN
              DELETE FROM {s}.spends WHERE key = k AND t <= now_ - 2 * roll;
            END IF;
            SELECT coalesce(sum(amount), 0) INTO u FROM {s}.spends WHERE key = k AND t > now_ - roll;
          END IF;
          IF rs_ IS NULL OR rb_ IS NULL THEN
            SELECT coalesce(sum(amount), 0) INTO rs FROM {s}.hold_lines
              WHERE key = k AND expires_at > now_;
            nrs := rs; nrb := now_;
            lmode := lmode || 'moved'::text;
          ELSIF now_ > rb_ THEN
            rs := rs_ - dsum;
            nrs := rs; nrb := now_;
            lmode := lmode || 'moved'::text;
          ELSE  -- a caller whose clock lags the boundary: computes, moves nothing
            rs := rs_ + (SELECT coalesce(sum(amount), 0) FROM {s}.hold_lines
              WHERE key = k AND expires_at > now_ AND expires_at <= rb_);
            nrs := rs_; nrb := rb_;
            lmode := lmode || 'row'::text;
          END IF;
          -- INVARIANT: only holds at or below the boundary (>= now_ once written) are pruned
          IF random() < 0.03 THEN
            DELETE FROM {s}.hold_lines WHERE key = k AND expires_at <= now_;
          END IF;
        ELSE
          IF random() < 0.03 THEN
            DELETE FROM {s}.hold_lines WHERE key = k AND expires_at <= now_;
          END IF;
          SELECT coalesce(sum(amount), 0) INTO rs FROM {s}.hold_lines
            WHERE key = k AND expires_at > now_;
          lmode := lmode || 'new'::text;
        END IF;
        lk := lk || k; lroll := lroll || roll; lexp := lexp || (l->>'exp')::float8;
        lamt := lamt || amt; lnrs := lnrs || nrs; lnrb := lnrb || nrb;
        lok := u + rs + amt <= (l->>'limit')::bigint;
        ok := ok AND lok;
        statuses := statuses || jsonb_build_array(jsonb_build_array(l->'key', l->'limit', u, rs,
          l->'amount', lok));
      END LOOP;
      c := b->'record';
      IF ok AND jsonb_typeof(c) = 'object' THEN  -- the record goes with the hold: one statement
        WITH ins AS (INSERT INTO {s}.holds VALUES (r->>'id', 'held', exp_, r->'lines',
            jsonb_build_array(true, statuses))),
          rec AS (INSERT INTO {s}.records AS x VALUES (c->>'kind', c->>'id', 1, c->'doc',
            (c->>'exp')::float8) ON CONFLICT (kind, id) DO UPDATE SET version = CASE
            WHEN x.expires_at > (c->>'t')::float8 THEN x.version + 1 ELSE 1 END,
            doc = excluded.doc, expires_at = excluded.expires_at)
        INSERT INTO {s}.hold_lines SELECT unnest(lk), r->>'id', unnest(lamt), exp_;
        recorded := true;
      ELSIF ok THEN
        WITH ins AS (INSERT INTO {s}.holds VALUES (r->>'id', 'held', exp_, r->'lines',
            jsonb_build_array(true, statuses)))
        INSERT INTO {s}.hold_lines SELECT unnest(lk), r->>'id', unnest(lamt), exp_;
      ELSE
        blocked := true;
      END IF;
      FOR i IN 1 .. coalesce(array_length(lk, 1), 0) LOOP
        IF lmode[i] = 'new' THEN
          IF ok THEN  -- a new row starts without a running sum
            INSERT INTO {s}.budgets AS x VALUES (lk[i], 0, lroll[i], lexp[i])
              ON CONFLICT (key) DO UPDATE SET rolling_s = excluded.rolling_s,
                expires_at = excluded.expires_at;
          END IF;
        ELSIF ok THEN  -- the hold counts in the running sum when it expires after the boundary
          UPDATE {s}.budgets SET rolling_s = lroll[i], expires_at = lexp[i],
            rs = lnrs[i] + CASE WHEN exp_ > lnrb[i] THEN lamt[i] ELSE 0 END, rb = lnrb[i]
            WHERE key = lk[i];
        ELSIF lmode[i] = 'moved' THEN
          UPDATE {s}.budgets SET rs = lnrs[i], rb = lnrb[i] WHERE key = lk[i];
        END IF;
      END LOOP;
      res := jsonb_build_array(false, jsonb_build_array(ok, statuses));
    END IF;
  END IF;

  e := b->'event';
  IF jsonb_typeof(e) = 'object' THEN
    SELECT steps, labels, marks, expires_at, dl INTO rsteps, rlabels, rmarks, rexp, rdl
      FROM {s}.runs WHERE key = e->>'run';
    IF NOT FOUND THEN
      rsteps := 0; rlabels := '{{}}'; rmarks := '{{}}';
    ELSIF rexp <= now_ OR rdl <= extract(epoch FROM clock_timestamp()) THEN
      DELETE FROM {s}.events WHERE run_key = e->>'run';
      DELETE FROM {s}.results WHERE run_key = e->>'run';
      rsteps := 0; rlabels := '{{}}'; rmarks := '{{}}';
    END IF;
    IF NOT blocked THEN
      rsteps := rsteps + 1;
      step_ := rsteps;
      rlabels := ARRAY(SELECT DISTINCT x FROM unnest(rlabels ||
        ARRAY(SELECT jsonb_array_elements_text(e->'labels'))) x ORDER BY 1);
      rmarks := rmarks || coalesce((SELECT jsonb_object_agg(m, jsonb_build_array(rsteps, b->'now'))
        FROM jsonb_array_elements_text(e->'marks') m), '{{}}');
      INSERT INTO {s}.runs VALUES (e->>'run', rsteps, rlabels, rmarks, (e->>'exp')::float8,
          extract(epoch FROM clock_timestamp()) + (e->>'ttl')::float8)
        ON CONFLICT (key) DO UPDATE SET steps = excluded.steps, labels = excluded.labels,
          marks = excluded.marks, expires_at = excluded.expires_at, dl = excluded.dl;
      INSERT INTO {s}.events VALUES (e->>'run', rsteps, e->'doc')
        ON CONFLICT (run_key, step) DO UPDATE SET doc = excluded.doc;
      -- the events past the cap and their settlements, every PRUNE_EVERY steps (a range delete)
      IF rsteps % PRUNE_EVERY = 0 AND rsteps > (e->>'cap')::int THEN
        DELETE FROM {s}.results WHERE run_key = e->>'run' AND decision IN (SELECT doc->>'decision'
          FROM {s}.events WHERE run_key = e->>'run' AND step <= rsteps - (e->>'cap')::int);
        DELETE FROM {s}.events WHERE run_key = e->>'run' AND step <= rsteps - (e->>'cap')::int;
      END IF;
    END IF;
    run_out := jsonb_build_array(rsteps, to_jsonb(rlabels), rmarks);
  END IF;
  c := b->'record';
  IF jsonb_typeof(c) = 'object' AND NOT blocked AND NOT recorded THEN
    INSERT INTO {s}.records AS x VALUES (c->>'kind', c->>'id', 1, c->'doc', (c->>'exp')::float8)
      ON CONFLICT (kind, id) DO UPDATE SET version = CASE WHEN x.expires_at > (c->>'t')::float8
        THEN x.version + 1 ELSE 1 END, doc = excluded.doc, expires_at = excluded.expires_at;
    recorded := true;
  END IF;
  IF random() < 0.0005 THEN
    PERFORM {s}.gc(now_);
  END IF;
  RETURN jsonb_build_object('hits', hits_out, 'reserve', res, 'step', step_, 'run', run_out,
    'recorded', recorded);
END $f$;

CREATE OR REPLACE FUNCTION {s}.commit(hid text, actual bigint, now_ float8, locks bigint[])
RETURNS jsonb LANGUAGE plpgsql AS $f$
DECLARE st text; ex float8; ls jsonb; l jsonb; spend bigint; out jsonb := '[]'; u bigint;
  rs bigint; tag text; ha bigint; he float8;
BEGIN
  PERFORM pg_advisory_xact_lock(q.x) FROM (SELECT DISTINCT x FROM unnest(locks) x ORDER BY 1) q;
  SELECT state, expires_at, lines INTO st, ex, ls FROM {s}.holds WHERE id = hid;
  IF NOT FOUND THEN RETURN jsonb_build_array('U'); END IF;
  IF st = 'committed' THEN
    tag := 'A';
  ELSIF st <> 'held' OR ex <= now_ THEN
    RETURN jsonb_build_array('X');
  ELSE
    tag := 'C';
    FOR l IN SELECT * FROM jsonb_array_elements(ls) LOOP
      spend := coalesce(actual, (l->>'amount')::bigint);
      DELETE FROM {s}.hold_lines WHERE key = l->>'key' AND hold_id = hid
        RETURNING amount, expires_at INTO ha, he;
      IF FOUND THEN
        UPDATE {s}.budgets x SET rs = x.rs - ha WHERE x.key = l->>'key' AND x.rb IS NOT NULL AND he > x.rb;
      END IF;
      INSERT INTO {s}.budgets AS x VALUES (l->>'key', spend, (l->>'roll')::float8,
          (l->>'exp')::float8)
        ON CONFLICT (key) DO UPDATE SET total = x.total + excluded.total;
      IF l->>'roll' IS NOT NULL AND spend <> 0 THEN
        INSERT INTO {s}.spends VALUES (l->>'key', now_, spend);
      END IF;
    END LOOP;
    UPDATE {s}.holds SET state = 'committed' WHERE id = hid;
  END IF;
  FOR l IN SELECT * FROM jsonb_array_elements(ls) LOOP
    SELECT * INTO u, rs FROM {s}.line_state(l->>'key', now_, NULL, false, false);
    out := out || jsonb_build_array(jsonb_build_array(u, rs));
  END LOOP;
  RETURN jsonb_build_array(tag, out, ls);
END $f$;

CREATE OR REPLACE FUNCTION {s}.release(hid text, now_ float8, locks bigint[])
RETURNS bool LANGUAGE plpgsql AS $f$
DECLARE ls jsonb;
BEGIN
  PERFORM pg_advisory_xact_lock(q.x) FROM (SELECT DISTINCT x FROM unnest(locks) x ORDER BY 1) q;
  UPDATE {s}.holds SET state = 'released'
    WHERE id = hid AND state = 'held' AND expires_at > now_ RETURNING lines INTO ls;
  IF NOT FOUND THEN RETURN false; END IF;
  WITH d AS (DELETE FROM {s}.hold_lines WHERE hold_id = hid
    AND key IN (SELECT q->>'key' FROM jsonb_array_elements(ls) q) RETURNING key, amount, expires_at)
  UPDATE {s}.budgets x SET rs = x.rs - d.amount FROM d
    WHERE x.key = d.key AND x.rb IS NOT NULL AND d.expires_at > x.rb;
  RETURN true;
END $f$;
"""
    )
    .replace("GRACE", repr(BUDGET_GRACE_S))
    .replace("RETAIN", repr(HOLD_RETAIN_S))
    .replace("PRUNE_EVERY", str(HISTORY_PRUNE_EVERY))
)
