"""Run grants in the Redis store: Lua scripts over three hashes per run (docs, uses, limits).

Keys per run: ``rg`` (grant id -> its document, written once), ``rgu`` (id -> uses consumed) and
``rgl`` (id -> use limit, "" for none). A revoked grant leaves all three. CONSUME checks every
kind's candidates before it writes, so a refused use writes nothing; the store runs it just
before its decide script and gives the uses back (REFUND) when that batch did not go through.
"""

from __future__ import annotations

from charter.state.redis_lua import PRELUDE, SHEBANG

# KEYS: r (run hash), rl (labels), rg, rgu, rgl. ARGV: now, exp, ttl_ms, n grants, then per grant
# id, doc, limit (""), then labels. 0 when the run has a step or grants (nothing written).
BEGIN = (
    PRELUDE
    + """
local e = num(redis.call('HGET', KEYS[1], 'exp'))
local live = not (e and e <= tonumber(ARGV[1]))
local steps = tonumber(redis.call('HGET', KEYS[1], 'steps') or '0')
if live and (steps > 0 or redis.call('EXISTS', KEYS[3]) == 1) then
  return 0
end
if not live then redis.call('DEL', KEYS[1], KEYS[2]) end
redis.call('DEL', KEYS[3], KEYS[4], KEYS[5])
redis.call('HSETNX', KEYS[1], 'steps', '0')
redis.call('HSET', KEYS[1], 'exp', ARGV[2])
local n = tonumber(ARGV[4])
local i = 5
for _ = 1, n do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
  redis.call('HSET', KEYS[4], ARGV[i], '0')
  redis.call('HSET', KEYS[5], ARGV[i], ARGV[i + 2])
  i = i + 3
end
for j = i, #ARGV do redis.call('SADD', KEYS[2], ARGV[j]) end
for k = 1, 5 do redis.call('PEXPIRE', KEYS[k], ARGV[3]) end
return 1
"""
)

# KEYS: rg, rgu, rgl. ARGV: n kinds, then per kind: count, ids (lowest first).
# Returns {} when a kind has no candidate with uses left (nothing written), else {id, used, ...}.
CONSUME = (
    SHEBANG
    + """
local n = tonumber(ARGV[1])
local i = 2
local taken = {}
local picked = {}
for _ = 1, n do
  local c = tonumber(ARGV[i])
  local chosen = nil
  for j = i + 1, i + c do
    local id = ARGV[j]
    if not chosen and not taken[id] and redis.call('HEXISTS', KEYS[1], id) == 1 then
      local lim = redis.call('HGET', KEYS[3], id)
      local used = tonumber(redis.call('HGET', KEYS[2], id) or '0')
      if lim == false or lim == '' or used < tonumber(lim) then chosen = id end
    end
  end
  if not chosen then return {} end
  taken[chosen] = true
  picked[#picked + 1] = chosen
  i = i + c + 1
end
local out = {}
for _, id in ipairs(picked) do
  out[#out + 1] = id
  out[#out + 1] = tostring(redis.call('HINCRBY', KEYS[2], id, 1))
end
return out
"""
)

# KEYS: rgu. ARGV: ids whose use is given back.
REFUND = (
    SHEBANG
    + """
for i = 1, #ARGV do
  if tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0') > 0 then
    redis.call('HINCRBY', KEYS[1], ARGV[i], -1)
  end
end
return 1
"""
)

# KEYS: rg, rgu, rgl. ARGV: n revoked, revoked ids, then pairs id, more uses.
NARROW = (
    SHEBANG
    + """
local n = tonumber(ARGV[1])
for i = 2, n + 1 do
  redis.call('HDEL', KEYS[1], ARGV[i])
  redis.call('HDEL', KEYS[2], ARGV[i])
  redis.call('HDEL', KEYS[3], ARGV[i])
end
for i = n + 2, #ARGV, 2 do
  local id = ARGV[i]
  if redis.call('HEXISTS', KEYS[1], id) == 1 then
    local used = tonumber(redis.call('HGET', KEYS[2], id) or '0')
    local lim = redis.call('HGET', KEYS[3], id)
    local new = used + tonumber(ARGV[i + 1])
    if lim ~= false and lim ~= '' and tonumber(lim) < new then new = tonumber(lim) end
    redis.call('HSET', KEYS[3], id, tostring(new))
  end
end
return 1
"""
)
