"""Lua scripts of the Redis backend: each public operation is one script (one atomic step)."""

from __future__ import annotations

from charter.state.types import BUDGET_GRACE_S, HISTORY_CAP

# Members of sliding-window, spend and hold sorted sets are "<amount>:<unique token>".
# "#!lua" (Redis >= 7): a write script is refused up front when out of memory or on a read-only
# replica, instead of failing at its first write (Redis does not roll a script back).
SHEBANG = "#!lua\n"

PRELUDE = f"""{SHEBANG}
local GRACE = {BUDGET_GRACE_S!r}
-- an integer as Redis reads it: Lua 5.1 numbers are doubles, so -0 (the negation of a zero
-- hold's amount) would print as '-0', which HINCRBY refuses, failing the whole commit
local function fmt(x)
  if x == 0 then return '0' end
  return string.format('%.0f', x)
end
local function num(v)
  if v == nil or v == false or v == '' then return nil end
  return tonumber(v)
end
local function sum_members(items)
  local s = 0
  for i = 1, #items do s = s + tonumber(string.match(items[i], '^(%-?%d+):')) end
  return s
end
-- The index of a kind's records is a zset scored by each record's expiry (epoch ms); entries
-- expired a minute ago (clock skew between replicas) are pruned on every write, so the index
-- does not grow with every record ever written.
local function put_record(ck, ik, doc, ttl_ms, index_ttl_ms, id, exp_ms, prune_ms)
  redis.call('HINCRBY', ck, 'v', 1)
  redis.call('HSET', ck, 'doc', doc)
  redis.call('PEXPIRE', ck, ttl_ms)
  redis.call('ZADD', ik, exp_ms, id)
  redis.call('ZREMRANGEBYSCORE', ik, '-inf', '(' .. prune_ms)
  redis.call('PEXPIRE', ik, index_ttl_ms)
end
-- Running sums: the sum of the amounts of zset zk's members scored above lo, without reading
-- them all on every call. Hash sk keeps, in fields fs and fb, the sum of the members scored
-- above a boundary; the boundary only moves forward (a member crossing it is subtracted once)
-- and a caller behind it (a lagging clock) adds the members in (lo, boundary]. Every ZADD /
-- ZREM of a member scored above the boundary adjusts the sum (APPLY adds, zrem_counted removes).
-- INVARIANT: fs = sum of zk's members scored above fb; zk and sk carry the same TTL, and
-- members are only pruned at or below the boundary.
local function sum_above(zk, sk, fs, fb, lo_s)
  local lo = tonumber(lo_s)
  local st = redis.call('HMGET', sk, fs, fb)
  local s, b_s = tonumber(st[1]), st[2]
  local b = tonumber(b_s)
  if s == nil or b == nil then
    s = sum_members(redis.call('ZRANGEBYSCORE', zk, '(' .. lo_s, '+inf'))
    b, b_s = lo, lo_s
    redis.call('HSET', sk, fs, fmt(s), fb, b_s)
  elseif lo > b then
    s = s - sum_members(redis.call('ZRANGEBYSCORE', zk, '(' .. b_s, lo_s))
    b, b_s = lo, lo_s
    redis.call('HSET', sk, fs, fmt(s), fb, b_s)
  end
  if lo < b then
    return s + sum_members(redis.call('ZRANGEBYSCORE', zk, '(' .. lo_s, b_s)), b
  end
  return s, b
end
local function zrem_counted(zk, sk, fs, fb, amount, member)
  local m = fmt(amount) .. ':' .. member
  local sc = redis.call('ZSCORE', zk, m)
  if not sc then return end
  redis.call('ZREM', zk, m)
  local b = num(redis.call('HGET', sk, fb))
  if b ~= nil and tonumber(sc) > b then redis.call('HINCRBY', sk, fs, fmt(-amount)) end
end
local function budget_expired(b, now)
  local exp = num(redis.call('HGET', b, 'exp'))
  return exp ~= nil and now >= exp + GRACE
end
local function used_reserved(b, bh, bs, now_s, now, roll, total)
  local used
  if roll then
    local los = string.format('%.17g', now - roll)
    redis.call('ZREMRANGEBYSCORE', bs, '-inf', string.format('%.17g', now - 2 * roll))
    used = sum_members(redis.call('ZRANGEBYSCORE', bs, '(' .. los, '+inf'))
  else
    used = tonumber(total or redis.call('HGET', b, 'total') or '0')
  end
  -- the running sum of live holds lives in the budget hash (fields rs, rb); without the hash
  -- (a key never reserved on) the holds are summed directly, creating nothing without a TTL
  local reserved
  if redis.call('EXISTS', b) == 1 then
    reserved = sum_above(bh, b, 'rs', 'rb', now_s)
  else
    reserved = sum_members(redis.call('ZRANGEBYSCORE', bh, '(' .. now_s, '+inf'))
  end
  redis.call('ZREMRANGEBYSCORE', bh, '-inf', now_s)
  return used, reserved
end
"""

APPLY = (
    PRELUDE
    + """
local now_s = ARGV[1]
local now = tonumber(now_s)
local a, k = 3, 1
-- Check every key's type first: a script that fails half-way is not rolled back.
local TYPES = {s = 'string', h = 'hash', z = 'zset', S = 'set', l = 'list'}
local codes = ARGV[2]
for i = 1, #KEYS do
  local t = redis.call('TYPE', KEYS[i])['ok']
  if t ~= 'none' and t ~= TYPES[string.sub(codes, i, i)] then
    return redis.error_reply('WRONGTYPE key ' .. KEYS[i] .. ' holds a ' .. t)
  end
end
local function nexta() local v = ARGV[a]; a = a + 1; return v end
local function nextk() local v = KEYS[k]; k = k + 1; return v end

-- stops first, then a replay (a retried request is halted like any other)
local replay = nil
if nexta() == '1' then
  local v = redis.call('GET', nextk())
  if v then
    local sep = string.find(v, '|', 1, true)
    if tonumber(string.sub(v, 1, sep - 1)) > now then replay = string.sub(v, sep + 1) end
  end
end
local nstops = tonumber(nexta())
if nstops > 0 then
  local fields = {}
  for i = 1, nstops do fields[i] = nexta() end
  local recs = redis.call('HMGET', nextk(), unpack(fields))
  for i = 1, nstops do
    if recs[i] then return {'S', recs[i]} end
  end
end
if replay then return {'R', replay} end

local blocked = false
local hits = {}
local nhits = tonumber(nexta())
for i = 1, nhits do
  local zk = nextk()
  local mode = nexta()
  local lo_s = nexta()
  local prune_s = nexta()
  local amount = tonumber(nexta())
  local limit = num(nexta())
  local trip = num(nexta())
  local member = nexta()
  local ttl_ms = nexta()
  local limited, total = 0, 0
  if mode == 'm' then
    redis.call('ZREMRANGEBYSCORE', zk, '-inf', prune_s)
    total = redis.call('ZCOUNT', zk, '(' .. lo_s, '+inf')
    local cur = num(redis.call('ZSCORE', zk, member))
    local present = cur ~= nil and cur > tonumber(lo_s)
    if (not present) and limit and total + 1 > limit then
      limited = 1
    else
      redis.call('ZADD', zk, now_s, member)
      if not present then total = total + 1 end
    end
  else
    -- sum_above, then the new member counted, with one write of the running sum
    local sk = nextk()
    local lo = tonumber(lo_s)
    local st = redis.call('HMGET', sk, 's', 'b')
    local s, b_s = tonumber(st[1]), st[2]
    local b = tonumber(b_s)
    local moved = false
    if s == nil or b == nil then
      s = sum_members(redis.call('ZRANGEBYSCORE', zk, '(' .. lo_s, '+inf'))
      b, b_s, moved = lo, lo_s, true
    elseif lo > b then
      s = s - sum_members(redis.call('ZRANGEBYSCORE', zk, '(' .. b_s, lo_s))
      b, b_s, moved = lo, lo_s, true
    end
    total = s
    if lo < b then total = s + sum_members(redis.call('ZRANGEBYSCORE', zk, '(' .. lo_s, b_s)) end
    redis.call('ZREMRANGEBYSCORE', zk, '-inf', prune_s)  -- below the (moved) boundary
    if limit and total + amount > limit then
      limited = 1
    else
      redis.call('ZADD', zk, now_s, fmt(amount) .. ':' .. member)
      if now > b then s, moved = s + amount, true end
      total = total + amount
    end
    if moved then redis.call('HSET', sk, 's', fmt(s), 'b', b_s) end
    redis.call('PEXPIRE', sk, ttl_ms)
  end
  redis.call('PEXPIRE', zk, ttl_ms)
  local tripped = 0
  if trip and total > trip then tripped = 1 end
  if limited == 1 or tripped == 1 then blocked = true end
  hits[i] = {total, limited, tripped}
end

local res = {}
if nexta() == '1' then
  local hk = nextk()
  local hold_id = nexta()
  local exp_s = nexta()
  local hold_ttl = nexta()
  local lines_json = nexta()
  local n = tonumber(nexta())
  local L = {}
  for i = 1, n do
    local l = {}
    l.b = nextk(); l.bh = nextk(); l.bs = nextk()
    l.key = nexta(); l.limit = tonumber(nexta()); l.amount = tonumber(nexta())
    l.roll_s = nexta(); l.exp_s = nexta(); l.ttl = nexta()
    L[i] = l
  end
  if not blocked then
    local old = redis.call('HGET', hk, 'res')
    if old then
      res = {1, old}
    else
      local ok = true
      local parts = {}
      for i = 1, n do
        local l = L[i]
        local meta = redis.call('HMGET', l.b, 'exp', 'roll', 'total', 'rs', 'rb')
        local bexp = num(meta[1])
        if bexp ~= nil and now >= bexp + GRACE then
          redis.call('DEL', l.b, l.bh, l.bs)
          meta = {false, false, false, false, false}
        end
        l.meta = meta
        -- used_reserved, reading the budget hash once; a moved boundary is written below
        local used
        local roll = num(l.roll_s)
        if roll then
          local los = string.format('%.17g', now - roll)
          redis.call('ZREMRANGEBYSCORE', l.bs, '-inf', string.format('%.17g', now - 2 * roll))
          used = sum_members(redis.call('ZRANGEBYSCORE', l.bs, '(' .. los, '+inf'))
        else
          used = tonumber(meta[3] or '0')
        end
        local reserved
        l.exists = meta[1] or meta[2] or meta[3] or meta[4] or meta[5]
        l.moved = false
        if l.exists then
          local rs, rb_s = tonumber(meta[4]), meta[5]
          local rb = tonumber(rb_s)
          if rs == nil or rb == nil then
            rs = sum_members(redis.call('ZRANGEBYSCORE', l.bh, '(' .. now_s, '+inf'))
            rb, rb_s, l.moved = now, now_s, true
          elseif now > rb then
            rs = rs - sum_members(redis.call('ZRANGEBYSCORE', l.bh, '(' .. rb_s, now_s))
            rb, rb_s, l.moved = now, now_s, true
          end
          reserved = rs
          if now < rb then
            reserved = rs + sum_members(redis.call('ZRANGEBYSCORE', l.bh, '(' .. now_s, rb_s))
          end
          l.rs, l.rb, l.rb_s = rs, rb, rb_s
        else
          reserved = sum_members(redis.call('ZRANGEBYSCORE', l.bh, '(' .. now_s, '+inf'))
        end
        redis.call('ZREMRANGEBYSCORE', l.bh, '-inf', now_s)
        local lok = used + reserved + l.amount <= l.limit
        if not lok then ok = false end
        parts[i] = '[' .. cjson.encode(l.key) .. ',' .. fmt(l.limit) .. ',' .. fmt(used) .. ','
          .. fmt(reserved) .. ',' .. fmt(l.amount) .. ',' .. tostring(lok) .. ']'
      end
      local json = '[' .. tostring(ok) .. ',[' .. table.concat(parts, ',') .. ']]'
      local sums = {}  -- running sum per budget hash as written here (lines may share one)
      for i = 1, n do
        local l = L[i]
        local f = {}
        if l.exists then
          local rs = sums[l.b] or l.rs
          if ok then
            redis.call('ZADD', l.bh, exp_s, fmt(l.amount) .. ':' .. hold_id)
            if tonumber(exp_s) > l.rb then rs, l.moved = rs + l.amount, true end
          end
          sums[l.b] = rs
          if l.moved then f = {'rs', fmt(rs), 'rb', l.rb_s} end
        elseif ok then
          redis.call('ZADD', l.bh, exp_s, fmt(l.amount) .. ':' .. hold_id)
        end
        if ok and (l.meta[1] ~= l.exp_s or l.meta[2] ~= l.roll_s or not l.meta[3]) then
          f[#f + 1] = 'roll'; f[#f + 1] = l.roll_s; f[#f + 1] = 'exp'; f[#f + 1] = l.exp_s
          if not l.meta[3] then f[#f + 1] = 'total'; f[#f + 1] = '0' end
        end
        if #f > 0 then redis.call('HSET', l.b, unpack(f)) end
      end
      if ok then
        for i = 1, n do
          local l = L[i]
          redis.call('PEXPIRE', l.b, l.ttl)
          redis.call('PEXPIRE', l.bh, l.ttl)
          if l.roll_s ~= '' then redis.call('PEXPIRE', l.bs, l.ttl) end
        end
        redis.call('HSET', hk, 'st', 'held', 'exp', exp_s, 'lines', lines_json, 'res', json)
        redis.call('PEXPIRE', hk, hold_ttl)
      else
        blocked = true
      end
      res = {0, json}
    end
  end
end

local step = -1
local run = 0
if nexta() == '1' then
  local rk = nextk()
  local rl = nextk()
  local rm = nextk()
  local re = nextk()
  local ev = nexta()
  local rexp = nexta()
  local rttl = nexta()
  local nl = tonumber(nexta())
  local labels = {}
  for i = 1, nl do labels[i] = nexta() end
  local nm = tonumber(nexta())
  local marks = {}
  for i = 1, nm do marks[i] = nexta() end
  local e = num(redis.call('HGET', rk, 'exp'))
  if e and e <= now then redis.call('DEL', rk, rl, rm, re) end
  if not blocked then
    step = redis.call('HINCRBY', rk, 'steps', 1)
    redis.call('HSET', rk, 'exp', rexp)
    redis.call('RPUSH', re, ev)
    redis.call('LTRIM', re, -HISTORY_CAP, -1)
    if nl > 0 then redis.call('SADD', rl, unpack(labels)) end
    for i = 1, nm do redis.call('HSET', rm, marks[i], step .. ':' .. now_s) end
    for _, key in ipairs({rk, rl, rm, re}) do redis.call('PEXPIRE', key, rttl) end
  end
  run = {tonumber(redis.call('HGET', rk, 'steps') or '0'), redis.call('SMEMBERS', rl),
         redis.call('HGETALL', rm)}
end

local recorded = 0
if nexta() == '1' then
  local ck = nextk()
  local ik = nextk()
  local doc = nexta()
  local ttl_ms = nexta()
  local index_ttl_ms = nexta()
  local id = nexta()
  local exp_ms = nexta()
  local prune_ms = nexta()
  if not blocked then
    put_record(ck, ik, doc, ttl_ms, index_ttl_ms, id, exp_ms, prune_ms)
    recorded = 1
  end
end
return {'OK', hits, res, step, run, recorded}
""".replace("HISTORY_CAP", str(HISTORY_CAP))
)

# KEYS: hold, then b, bh, bs per line. ARGV: now, actual ('' = reserved), then token, ttl per line.
COMMIT = (
    PRELUDE
    + """
local now_s = ARGV[1]
local now = tonumber(now_s)
local h = redis.call('HMGET', KEYS[1], 'st', 'exp', 'lines')
if not h[1] then return {'U'} end
local lines = cjson.decode(h[3])
local function statuses()
  local out = {}
  for i = 1, #lines do
    local roll = lines[i][4]
    if type(roll) ~= 'number' then roll = nil end
    local b, bh, bs = KEYS[3 * i - 1], KEYS[3 * i], KEYS[3 * i + 1]
    local used, reserved = used_reserved(b, bh, bs, now_s, now, roll)
    out[#out + 1] = used
    out[#out + 1] = reserved
  end
  return out
end
if h[1] == 'committed' then return {'A', statuses()} end
if h[1] ~= 'held' or tonumber(h[2]) <= now then return {'X'} end
local actual = num(ARGV[2])
local hold_id = ARGV[3]
for i = 1, #lines do
  local amount = lines[i][3]
  local roll = lines[i][4]
  local spend = actual or amount
  local b, bh, bs = KEYS[3 * i - 1], KEYS[3 * i], KEYS[3 * i + 1]
  local token, ttl = ARGV[2 + 2 * i], ARGV[3 + 2 * i]
  zrem_counted(bh, b, 'rs', 'rb', amount, hold_id)
  redis.call('HINCRBY', b, 'total', fmt(spend))
  if type(roll) == 'number' and spend ~= 0 then
    redis.call('ZADD', bs, now_s, fmt(spend) .. ':' .. token)
  end
  redis.call('PEXPIRE', b, ttl)
  redis.call('PEXPIRE', bh, ttl)
  redis.call('PEXPIRE', bs, ttl)
end
redis.call('HSET', KEYS[1], 'st', 'committed')
return {'C', statuses()}
"""
)

# KEYS: hold, then b, bh per line. ARGV: now, hold_id.
RELEASE = (
    PRELUDE
    + """
local h = redis.call('HMGET', KEYS[1], 'st', 'exp', 'lines')
if h[1] ~= 'held' or tonumber(h[2]) <= tonumber(ARGV[1]) then return 0 end
local lines = cjson.decode(h[3])
for i = 1, #lines do
  zrem_counted(KEYS[2 * i + 1], KEYS[2 * i], 'rs', 'rb', lines[i][3], ARGV[2])
end
redis.call('HSET', KEYS[1], 'st', 'released')
return 1
"""
)

# KEYS: b, bh, bs per budget key. ARGV: now. Returns used, reserved per key.
STATUS = (
    PRELUDE
    + """
local now_s = ARGV[1]
local now = tonumber(now_s)
local out = {}
for i = 1, #KEYS / 3 do
  local b, bh, bs = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  if budget_expired(b, now) then
    out[#out + 1] = 0
    out[#out + 1] = 0
  else
    local used, reserved = used_reserved(b, bh, bs, now_s, now, num(redis.call('HGET', b, 'roll')))
    out[#out + 1] = used
    out[#out + 1] = reserved
  end
end
return out
"""
)

# KEYS: r, rl, rm, re. ARGV: now, exp, ttl_ms, labels...
ADD_LABELS = (
    PRELUDE
    + """
local e = num(redis.call('HGET', KEYS[1], 'exp'))
if e and e <= tonumber(ARGV[1]) then redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4]) end
redis.call('HSETNX', KEYS[1], 'steps', '0')
redis.call('HSET', KEYS[1], 'exp', ARGV[2])
for i = 4, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
return 1
"""
)

# KEYS: r, rl, rm, re. ARGV: now, exp, ttl_ms, labels... Each label is also marked 'l:<label>'
# at the run's step count and now (the same "<step>:<now>" form as the batch's marks).
MARK_LABELS = (
    PRELUDE
    + """
local e = num(redis.call('HGET', KEYS[1], 'exp'))
if e and e <= tonumber(ARGV[1]) then redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4]) end
redis.call('HSETNX', KEYS[1], 'steps', '0')
redis.call('HSET', KEYS[1], 'exp', ARGV[2])
local seen = redis.call('HGET', KEYS[1], 'steps') .. ':' .. ARGV[1]
for i = 4, #ARGV do
  redis.call('SADD', KEYS[2], ARGV[i])
  redis.call('HSET', KEYS[3], 'l:' .. ARGV[i], seen)
end
for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
return 1
"""
)

# KEYS: r, rl, rm, re, rr. ARGV: now, exp, ttl_ms, decision, doc. A settled call's history detail
# in the run's results hash (rr), beside its event; an expired run starts afresh.
PUT_RESULT = (
    PRELUDE
    + """
local e = num(redis.call('HGET', KEYS[1], 'exp'))
if e and e <= tonumber(ARGV[1]) then redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]) end
redis.call('HSETNX', KEYS[1], 'steps', '0')
redis.call('HSET', KEYS[1], 'exp', ARGV[2])
redis.call('HSET', KEYS[5], ARGV[4], ARGV[5])
for i = 1, 5 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
return 1
"""
)

# KEYS: idem key. ARGV: now, exp, ttl_ms, payload. Value stored as "<exp>|<payload>".
REMEMBER = (
    SHEBANG
    + """
local v = redis.call('GET', KEYS[1])
if v then
  local sep = string.find(v, '|', 1, true)
  if tonumber(string.sub(v, 1, sep - 1)) > tonumber(ARGV[1]) then
    return {1, string.sub(v, sep + 1)}
  end
end
redis.call('SET', KEYS[1], ARGV[2] .. '|' .. ARGV[4], 'PX', ARGV[3])
return {0}
"""
)

# KEYS: record, kind index (zset). ARGV: doc, ttl_ms, index_ttl_ms, id, expiry ms, prune bound ms.
PUT_RECORD = (
    PRELUDE
    + """
put_record(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
return 1
"""
)

# KEYS: record. ARGV: expected version, doc.
CAS_RECORD = (
    SHEBANG
    + """
local v = redis.call('HGET', KEYS[1], 'v')
if v ~= ARGV[1] then return 0 end
redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('HSET', KEYS[1], 'doc', ARGV[2])
return 1
"""
)

# KEYS: stops hash. ARGV: field.
CLEAR_STOP = (
    SHEBANG
    + """
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then redis.call('HDEL', KEYS[1], ARGV[1]) end
return v
"""
)
