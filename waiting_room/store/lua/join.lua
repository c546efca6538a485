-- Join an event's line: idempotent per browser (wr_uid). One call carries every join of one event that
-- a web process has waiting (one join is a batch of one): joins that arrive together share a round
-- trip, one script run and one read of the settings and the clock, and are served in the order given.
--
-- KEYS[1] settings   hash   the event's settings (absent: unknown event)
-- KEYS[2] seq        string join sequence counter
-- KEYS[3] line       zset   waiting tickets by order
-- KEYS[4] tickets    hash   ticket -> JSON record
-- KEYS[5] uids       hash   wr_uid -> ticket
-- KEYS[6] stats      hash   counters
-- KEYS[7] departed   zset   waiting ticket no socket holds -> since when (ms): from its join
-- KEYS[8] pending    zset   admitted, not redeemed (score = token expiry ms)
-- KEYS[9] active     zset   redeemed sessions (score = session expiry ms)
-- KEYS[10] bucket    hash   the rate's token bucket, shared with promote.lua: tokens, at (ms), fast (admitted here)
-- then for the i-th join (i from 0), at c = 11 + 3i:
-- KEYS[c] client_joins     hash   the caller's address: join token bucket (t, at)
-- KEYS[c+1] client_waiting set    the caller's address: its tickets that may still wait
-- KEYS[c+2] proof          string the used-challenge mark of the caller's proof of work (written only if one is needed)
-- ARGV[1] post_open  2^40 (tickets.SHUFFLE_RANGE): every post-opening order is above every pre-queue one
-- ARGV[2] tick_ms    the promoter's tick (WR_TICK_MS): the rate's bucket holds one tick's share
-- then for the i-th join, at a = 3 + 7i:
-- ARGV[a] ticket       the new ticket id, used only if a new ticket is issued
-- ARGV[a+1] uid        the caller's wr_uid
-- ARGV[a+2] shuffle    random integer in [0, post_open): the order of a pre-queue ticket
-- ARGV[a+3] replace    a ticket of this uid that has finished and may be replaced, or ""
-- ARGV[a+4] jti        random id its admission token will carry (one per ticket: it redeems once)
-- ARGV[a+5] proved     difficulty of the caller's proof of work, checked by the web process (0: none)
-- ARGV[a+6] proof_until  unix ms when that proof's challenge expires
--
-- A new ticket must pass the event's per-client controls first (0 = off): pow_difficulty,
-- client_joins_per_minute (token bucket, a minute's worth at once), client_max_waiting. Refusals write
-- nothing but the pruning of the caller's finished tickets.
--
-- Returns one reply per join, in order, each of
--         {"unknown_event"} | {"event_closed"} | {"existing", ticket}
--       | {"proof_required", difficulty, "missing"|"used"} | {"rate_limited", wait_ms} | {"too_many_waiting", cap}
--       | {"new", ticket, rank, waiting, served_total, pre_queue(0|1), observed_rate, status, opens_at}
--       | {"admitted", ticket, served_total, admitted_ms, expires_ms, jti, target_url}
--
-- The fast lane (queue_only_when_full): while nobody waits, capacity has room and the
-- rate's bucket holds a whole ticket, the newcomer is admitted here and now, exactly as
-- the promoter admits from the head of the line. Checking the line, the capacity and the
-- bucket in this one script is what keeps a burst from overshooting either, and the
-- first arrival that finds no room queues, so everyone after it queues behind it (FIFO).
-- O(log N) a join: a ZCARD and two ZCOUNTs.

local settings = redis.call("HMGET", KEYS[1], "status", "opens_at", "client_joins_per_minute",
  "client_max_waiting", "pow_difficulty", "queue_only_when_full", "max_active", "token_ttl_seconds", "target_url",
  "rate_per_minute")
local count = (#ARGV - 2) / 7
local function every(reply)
  local replies = {}
  for i = 1, count do replies[i] = reply end
  return replies
end
if redis.call("EXISTS", KEYS[1]) == 0 then
  return every({"unknown_event"})
end
local status = settings[1] or "open" -- default: status
if status == "sold_out" or status == "closed" then
  return every({"event_closed"})
end

local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local need = tonumber(settings[5] or "0") or 0
local per_minute = tonumber(settings[3] or "0") or 0
local cap = tonumber(settings[4] or "0") or 0
local opens_at = tonumber(settings[2] or "")
local pre = opens_at ~= nil and now < opens_at * 1000

-- The rate's bucket refilled to now, as promote.lua refills it. The line is empty here, so it holds
-- at most one tick's share (at least one ticket): the extra ticket promote.lua allows is only there
-- to carry a tick's fraction while people wait. A new bucket starts as an idle one would be.
local function rate_tokens()
  local rate = tonumber(settings[10] or "600") -- default: rate_per_minute
  local size = math.max(1, rate / 60 * tonumber(ARGV[2]) / 1000)
  local bucket = redis.call("HMGET", KEYS[10], "tokens", "at")
  local left, filled_at = tonumber(bucket[1] or ""), tonumber(bucket[2] or "")
  if left == nil then return size end
  if filled_at and now > filled_at then left = left + rate / 60000 * (now - filled_at) end
  return math.min(size, left)
end

local function fast_lane()
  if settings[6] ~= "1" or status ~= "open" or pre or redis.call("ZCARD", KEYS[3]) > 0 then return nil end
  local max_active = tonumber(settings[7] or "0") -- default: max_active
  if max_active > 0 then
    local live = string.format("(%.0f", now) -- what the promoter has not swept yet holds no capacity either
    local held = redis.call("ZCOUNT", KEYS[8], live, "+inf") + redis.call("ZCOUNT", KEYS[9], live, "+inf")
    if held >= max_active then return nil end
  end
  local left = rate_tokens()
  if left < 1 then return nil end
  return left
end

-- What a batch writes or reads once, not once a join: the join sequence numbers it needs (taken
-- with one INCRBY on the first new ticket; numbers left over by refusals are never used, which
-- only leaves gaps in an order), the `issued` count (added at the end) and the stats it answers with.
local seq_next, seq_last, issued, stats = 0, -1, 0, nil
local function next_seq()
  if seq_next > seq_last then
    seq_last = redis.call("INCRBY", KEYS[2], count)
    seq_next = seq_last - count + 1
  end
  seq_next = seq_next + 1
  return seq_next - 1
end

-- One join: c and a index its KEYS and ARGV (see the top).
local function join(c, a)
  local uid, jti = ARGV[a + 1], ARGV[a + 4]
  local existing = redis.call("HGET", KEYS[5], uid)
  if existing and existing ~= ARGV[a + 3] then
    return {"existing", existing}
  end
  local proof_ttl = tonumber(ARGV[a + 6]) - now
  if need > 0 and (tonumber(ARGV[a + 5]) < need or proof_ttl <= 0) then
    return {"proof_required", need, "missing"}
  end
  local tokens = 0
  if per_minute > 0 then
    local bucket = redis.call("HMGET", KEYS[c], "t", "at")
    tokens = tonumber(bucket[1] or "") or per_minute
    tokens = math.min(per_minute, tokens + (now - (tonumber(bucket[2] or "") or now)) * per_minute / 60000)
    if tokens < 1 then
      return {"rate_limited", math.ceil((1 - tokens) * 60000 / per_minute)}
    end
  end
  if cap > 0 then
    local still = 0
    for _, mine in ipairs(redis.call("SMEMBERS", KEYS[c + 1])) do
      if redis.call("ZSCORE", KEYS[3], mine) then still = still + 1 else redis.call("SREM", KEYS[c + 1], mine) end
    end
    if still >= cap then
      return {"too_many_waiting", cap}
    end
  end
  if need > 0 and not redis.call("SET", KEYS[c + 2], "1", "NX", "PX", proof_ttl) then
    return {"proof_required", need, "used"}
  end

  local seq = next_seq()
  local score
  if pre then
    score = ARGV[a + 2]
  else
    score = string.format("%.0f", tonumber(ARGV[1]) + seq)
  end
  local ticket = ARGV[a]
  redis.call("HSET", KEYS[5], uid, ticket)
  issued = issued + 1
  if per_minute > 0 then
    redis.call("HSET", KEYS[c], "t", tostring(tokens - 1), "at", now)
    redis.call("PEXPIRE", KEYS[c], 60000) -- full again by then: forgetting it changes nothing
  end

  local budget = fast_lane()
  if budget then
    local token_ttl = tonumber(settings[8] or "300") -- default: token_ttl_seconds
    local expires = now + token_ttl * 1000
    redis.call("HSET", KEYS[4], ticket, cjson.encode({s = "admitted", o = seq, u = uid, j = now, jti = jti,
      a = now, x = expires}))
    redis.call("ZADD", KEYS[8], expires, ticket)
    redis.call("HSET", KEYS[10], "tokens", string.format("%.6f", budget - 1), "at", string.format("%.0f", now))
    redis.call("HINCRBY", KEYS[10], "fast", 1)
    local served = redis.call("HINCRBY", KEYS[6], "served_total", 1)
    if stats then stats[1] = served end
    return {"admitted", ticket, served, now, expires, jti, settings[9] or ""}
  end

  redis.call("ZADD", KEYS[3], score, ticket)
  local record = {s = "waiting", o = seq, u = uid, j = now, jti = jti}
  if pre then record.p = 1 end
  redis.call("HSET", KEYS[4], ticket, cjson.encode(record))
  redis.call("ZADD", KEYS[7], now, ticket)
  if cap > 0 then
    redis.call("SADD", KEYS[c + 1], ticket)
    redis.call("PEXPIRE", KEYS[c + 1], 86400000)
  end
  stats = stats or redis.call("HMGET", KEYS[6], "served_total", "observed_rate")
  return {"new", ticket, redis.call("ZRANK", KEYS[3], ticket), redis.call("ZCARD", KEYS[3]),
    tonumber(stats[1] or "0"), pre and 1 or 0, stats[2] or "0", status, settings[2] or ""}
end

local replies = {}
for i = 0, count - 1 do
  replies[i + 1] = join(11 + 3 * i, 3 + 7 * i)
end
if issued > 0 then
  redis.call("HINCRBY", KEYS[6], "issued", issued)
end
return replies
