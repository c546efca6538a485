-- Join an event's line: one round trip, idempotent per browser (wr_uid).
--
-- KEYS[1] settings   hash   the event's settings (absent: unknown event)
-- KEYS[2] seq        string join sequence counter
-- KEYS[3] line       zset   waiting tickets by order
-- KEYS[4] tickets    hash   ticket -> JSON record
-- KEYS[5] uids       hash   wr_uid -> ticket
-- KEYS[6] stats      hash   counters
-- KEYS[7] seen       zset   waiting ticket -> last seen (ms)
-- KEYS[8] client_joins   hash  the caller's address: join token bucket (t, at)
-- KEYS[9] client_waiting set   the caller's address: its tickets that may still wait
-- KEYS[10] proof     string the used-challenge mark of the caller's proof of work (written only if one is needed)
-- ARGV[1] ticket     the new ticket id, used only if a new ticket is issued
-- ARGV[2] uid        the caller's wr_uid
-- ARGV[3] shuffle    random integer in [0, post_open): the order of a pre-queue ticket
-- ARGV[4] replace    a ticket of this uid that has finished and may be replaced, or ""
-- ARGV[5] jti        random id its admission token will carry (one per ticket: it redeems once)
-- ARGV[6] post_open  2^40 (tickets.SHUFFLE_RANGE): every post-opening order is above every pre-queue one
-- ARGV[7] proved     difficulty of the caller's proof of work, checked by the web process (0: none)
-- ARGV[8] proof_until  unix ms when that proof's challenge expires
--
-- A new ticket must pass the event's per-client controls first (0 = off): pow_difficulty,
-- client_joins_per_minute (token bucket, a minute's worth at once), client_max_waiting. Refusals write
-- nothing but the pruning of the caller's finished tickets.
--
-- Returns {"unknown_event"} | {"event_closed"} | {"existing", ticket}
--       | {"proof_required", difficulty, "missing"|"used"} | {"rate_limited", wait_ms} | {"too_many_waiting", cap}
--       | {"new", ticket, rank, waiting, served_total, pre_queue(0|1), observed_rate, status, opens_at}

local settings = redis.call("HMGET", KEYS[1], "status", "opens_at", "client_joins_per_minute",
  "client_max_waiting", "pow_difficulty")
if redis.call("EXISTS", KEYS[1]) == 0 then
  return {"unknown_event"}
end
local status = settings[1] or "open" -- default: status
if status == "sold_out" or status == "closed" then
  return {"event_closed"}
end

local existing = redis.call("HGET", KEYS[5], ARGV[2])
if existing and existing ~= ARGV[4] then
  return {"existing", existing}
end

local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local need = tonumber(settings[5] or "0") or 0
local proof_ttl = tonumber(ARGV[8]) - now
if need > 0 and (tonumber(ARGV[7]) < need or proof_ttl <= 0) then
  return {"proof_required", need, "missing"}
end
local per_minute = tonumber(settings[3] or "0") or 0
local tokens = 0
if per_minute > 0 then
  local bucket = redis.call("HMGET", KEYS[8], "t", "at")
  tokens = tonumber(bucket[1] or "") or per_minute
  tokens = math.min(per_minute, tokens + (now - (tonumber(bucket[2] or "") or now)) * per_minute / 60000)
  if tokens < 1 then
    return {"rate_limited", math.ceil((1 - tokens) * 60000 / per_minute)}
  end
end
local cap = tonumber(settings[4] or "0") or 0
if cap > 0 then
  local still = 0
  for _, mine in ipairs(redis.call("SMEMBERS", KEYS[9])) do
    if redis.call("ZSCORE", KEYS[3], mine) then still = still + 1 else redis.call("SREM", KEYS[9], mine) end
  end
  if still >= cap then
    return {"too_many_waiting", cap}
  end
end
if need > 0 and not redis.call("SET", KEYS[10], "1", "NX", "PX", proof_ttl) then
  return {"proof_required", need, "used"}
end

local opens_at = tonumber(settings[2] or "")
local pre = opens_at ~= nil and now < opens_at * 1000

local seq = redis.call("INCR", KEYS[2])
local score
if pre then
  score = ARGV[3]
else
  score = string.format("%.0f", tonumber(ARGV[6]) + seq)
end
local ticket = ARGV[1]
redis.call("ZADD", KEYS[3], score, ticket)
local record = {s = "waiting", o = seq, u = ARGV[2], j = now, jti = ARGV[5]}
if pre then record.p = 1 end
redis.call("HSET", KEYS[4], ticket, cjson.encode(record))
redis.call("HSET", KEYS[5], ARGV[2], ticket)
redis.call("ZADD", KEYS[7], now, ticket)
redis.call("HINCRBY", KEYS[6], "issued", 1)
if per_minute > 0 then
  redis.call("HSET", KEYS[8], "t", tostring(tokens - 1), "at", now)
  redis.call("PEXPIRE", KEYS[8], 60000) -- full again by then: forgetting it changes nothing
end
if cap > 0 then
  redis.call("SADD", KEYS[9], ticket)
  redis.call("PEXPIRE", KEYS[9], 86400000)
end
local stats = redis.call("HMGET", KEYS[6], "served_total", "observed_rate")
return {"new", ticket, redis.call("ZRANK", KEYS[3], ticket), redis.call("ZCARD", KEYS[3]),
  tonumber(stats[1] or "0"), pre and 1 or 0, stats[2] or "0", status, settings[2] or ""}
