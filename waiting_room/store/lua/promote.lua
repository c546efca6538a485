-- One promoter tick for one event: fence, expire, remove, admit, publish.
-- State change and the `advance` message happen in one atomic step, so a
-- web process never sees a message for a change that did not happen.
-- Its cost grows with how many tickets change state (and with the web
-- processes holding sockets for the event), not with the line or the sockets.
-- Each message carries the event's next sequence number and what left the
-- line (`popped` from the head, the order scores `gone` from anywhere), so
-- web processes keep every rank exact without reading it (core/ranks.py).
--
-- KEYS[1] settings   hash   the event's settings
-- KEYS[2] line       zset   waiting tickets by order
-- KEYS[3] tickets    hash   ticket -> JSON record
-- KEYS[4] pending    zset   admitted, not redeemed (score = token expiry ms)
-- KEYS[5] active     zset   redeemed sessions (score = session expiry ms)
-- KEYS[6] stats      hash   counters and the observed rate
-- KEYS[7] lease      string id of the promoter leading this event
-- KEYS[8] departed   zset   waiting ticket no socket holds -> since when (ms)
-- KEYS[9] done       zset   finished ticket -> when (ms)
-- KEYS[10] uids      hash   wr_uid -> ticket (trimmed with old records)
-- KEYS[11] bucket    hash   the rate's budget, shared with join.lua's fast lane: tokens, at (ms), fast
-- KEYS[12] advances  string sequence number of the advance messages
-- KEYS[13] conns     hash   web process -> "sockets:heartbeat ms"
-- ARGV[1] owner      this promoter's id (fencing: nothing is written unless it holds the lease)
-- ARGV[2] lease_ms   lease length
-- ARGV[3] tick_ms    the promoter's tick: the bucket holds one tick's share of the rate plus one ticket
-- ARGV[4] observed   observed admission rate per minute, or "" to keep the stored one
-- ARGV[5] channel    pub/sub channel for the advance message (a shard channel of this event on a cluster)
-- ARGV[6] last       "served:waiting" of the last message published, to skip unchanged ticks
-- ARGV[7] batch      most tickets expired / removed / trimmed per tick
-- ARGV[8] keep_ms    how long a finished ticket's record is kept
-- ARGV[9] publish    "PUBLISH" or "SPUBLISH" to send the advance message now; "" to only return it
--                    (the promoter sends it once replicas hold the tick, see store/durable.py)
-- ARGV[10] lapse_ms  a web process whose heartbeat is older than this is dead: its holders have left
--
-- Returns {0} if another promoter leads, else
--   {1, admitted, served_total, waiting, status, rate_per_minute, opens_at, published(0|1), pre_open(0|1),
--    fast (admitted by join.lua's fast lane since the last tick), message,
--    lapsed web process ids (the caller hands their held tickets to `departed` with reap.lua)}
--   where published says an advance message was due (sent, or returned to be sent) and message is it
--   ("" when none was due)
--
-- The rate is a token bucket in Redis, so the promoter and the fast lane spend one budget.
-- It fills at rate_per_minute on Redis time and holds at most one tick's share (at least
-- one ticket), plus one ticket while people wait: room for the fraction a tick of whole
-- tickets leaves over (without it 100/min at 500 ms ticks, 0.83 a tick, would admit 60/min).
-- So over any window admissions stay within the rate plus one tick's share (plus one while a
-- line carries fractions), and one tick admits at most its share rounded up. Being one
-- bucket in Redis, it is the same across a failover: a new leader cannot add a burst of its
-- own. It is empty while the event is not admitting (paused, before opening).

local owner = ARGV[1]
local holder = redis.call("GET", KEYS[7])
if holder and holder ~= owner then return {0} end
redis.call("SET", KEYS[7], owner, "PX", ARGV[2])

local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local batch = tonumber(ARGV[7])
local event = string.match(KEYS[1], "{(.-)}")

local s = redis.call("HMGET", KEYS[1], "status", "rate_per_minute", "max_active", "token_ttl_seconds",
  "abandon_after_seconds", "opens_at")
local status = s[1] or "open" -- default: status
local max_active = tonumber(s[3] or "0") -- default: max_active
local token_ttl = tonumber(s[4] or "300") -- default: token_ttl_seconds
local abandon_after = tonumber(s[5] or "120") -- default: abandon_after_seconds
local opens_at = tonumber(s[6] or "")
local pre_open = opens_at ~= nil and now < opens_at * 1000

local function update(ticket, fn)
  local raw = redis.call("HGET", KEYS[3], ticket)
  if not raw then return nil end
  local rec = cjson.decode(raw)
  fn(rec)
  redis.call("HSET", KEYS[3], ticket, cjson.encode(rec))
  return rec
end

local function finish(ticket, state)
  update(ticket, function(rec) rec.s = state; rec.f = now end)
  redis.call("ZADD", KEYS[9], now, ticket)
end

-- tokens not redeemed in time
local expired = redis.call("ZRANGEBYSCORE", KEYS[4], "-inf", now, "LIMIT", 0, batch)
for _, ticket in ipairs(expired) do
  redis.call("ZREM", KEYS[4], ticket)
  finish(ticket, "expired")
end
if #expired > 0 then redis.call("HINCRBY", KEYS[6], "expired", #expired) end
-- sessions that ran out free their capacity
redis.call("ZREMRANGEBYSCORE", KEYS[5], "-inf", now)

-- tickets leaving the line without admission: a closed line from the head, abandoned ones from anywhere
local removed = {}
local head = 0 -- tickets taken from the head of the line this tick
local gone = {} -- order scores of tickets taken from anywhere else
if status == "closed" then
  local popped = redis.call("ZPOPMIN", KEYS[2], batch)
  for i = 1, #popped, 2 do removed[#removed + 1] = popped[i] end
  head = #removed
else
  -- departed for longer than the grace: nobody holds a socket, polls, or did since
  local stale = redis.call("ZRANGEBYSCORE", KEYS[8], "-inf", now - abandon_after * 1000, "LIMIT", 0, batch)
  for _, ticket in ipairs(stale) do
    local score = redis.call("ZSCORE", KEYS[2], ticket)
    if score then
      redis.call("ZREM", KEYS[2], ticket)
      removed[#removed + 1] = ticket
      gone[#gone + 1] = score
    end
  end
  if #stale > 0 then redis.call("ZREM", KEYS[8], unpack(stale)) end
end
for _, ticket in ipairs(removed) do finish(ticket, "removed") end
if #removed > 0 then
  if status == "closed" then redis.call("ZREM", KEYS[8], unpack(removed)) end
  redis.call("HINCRBY", KEYS[6], "removed", #removed)
end

-- admission: the rate's budget, bounded by capacity, from the head of the line
local rate = tonumber(s[2] or "600") -- default: rate_per_minute
local share = rate / 60 * tonumber(ARGV[3]) / 1000
local bucket = redis.call("HMGET", KEYS[11], "tokens", "at", "fast")
local tokens = tonumber(bucket[1] or "")
local filled_at = tonumber(bucket[2] or "")
local fast = tonumber(bucket[3] or "0")
local admitting = status == "open" and not pre_open
local size = math.max(1, share)
if redis.call("ZCARD", KEYS[2]) > 0 then size = share + 1 end
if not admitting then
  tokens = 0
elseif tokens == nil then
  tokens = size -- a new bucket: as an idle one would be (join.lua does the same)
elseif filled_at and now > filled_at then
  tokens = math.min(size, tokens + rate / 60000 * (now - filled_at))
else
  tokens = math.min(size, tokens)
end
-- 1e-9: a share of 2.0000000000000004 is two tickets, not three
local n = math.min(math.floor(tokens), math.max(1, math.ceil(share - 1e-9)))
if not admitting then n = 0 end
if max_active > 0 then
  local room = max_active - redis.call("ZCARD", KEYS[4]) - redis.call("ZCARD", KEYS[5])
  if room < n then n = math.max(room, 0) end
end
local admitted = {}
if n > 0 then
  local popped = redis.call("ZPOPMIN", KEYS[2], n)
  local expires = now + token_ttl * 1000
  for i = 1, #popped, 2 do
    local ticket = popped[i]
    local rec = update(ticket, function(r) r.s = "admitted"; r.a = now; r.x = expires end)
    redis.call("ZADD", KEYS[4], expires, ticket)
    admitted[#admitted + 1] = {ticket, now, expires, rec and rec.jti or ""}
  end
  if #admitted > 0 then
    local left = {}
    for i, a in ipairs(admitted) do left[i] = a[1] end
    redis.call("ZREM", KEYS[8], unpack(left))
    head = head + #admitted
  end
end
local served = redis.call("HINCRBY", KEYS[6], "served_total", #admitted)
redis.call("HSET", KEYS[11], "tokens", string.format("%.6f", math.max(0, tokens - #admitted)), "at",
  string.format("%.0f", now), "fast", 0)
if ARGV[4] ~= "" then redis.call("HSET", KEYS[6], "observed_rate", ARGV[4]) end

-- forget records long finished (a batch a tick)
local old = redis.call("ZRANGEBYSCORE", KEYS[9], "-inf", now - tonumber(ARGV[8]), "LIMIT", 0, batch)
for _, ticket in ipairs(old) do
  local raw = redis.call("HGET", KEYS[3], ticket)
  if raw then
    local uid = cjson.decode(raw).u
    if uid and redis.call("HGET", KEYS[10], uid) == ticket then redis.call("HDEL", KEYS[10], uid) end
    redis.call("HDEL", KEYS[3], ticket)
  end
end
if #old > 0 then redis.call("ZREM", KEYS[9], unpack(old)) end

-- web processes whose heartbeat lapsed (one entry per process holding sockets for this event)
local lapsed = {}
local beats = redis.call("HGETALL", KEYS[13])
for i = 1, #beats, 2 do
  local at = tonumber(string.match(beats[i + 1], ":(%d+)$") or "0")
  if now - at > tonumber(ARGV[10]) then lapsed[#lapsed + 1] = beats[i] end
end

local waiting = redis.call("ZCARD", KEYS[2])
local published = 0
local message = ""
if #admitted > 0 or #removed > 0 or #expired > 0 or ARGV[6] ~= served .. ":" .. waiting then
  local observed = tonumber(redis.call("HGET", KEYS[6], "observed_rate") or "0")
  -- scores as Redis spells them (strings): cjson would round numbers this long
  message = cjson.encode({
    type = "advance", event = event, seq = redis.call("INCR", KEYS[12]), served = served, waiting = waiting,
    status = status, observed_rate = observed, admitted = admitted, removed = removed, expired = expired,
    popped = head, gone = gone, at = now,
  })
  if ARGV[9] ~= "" then redis.call(ARGV[9], ARGV[5], message) end
  published = 1
end
return {1, #admitted, served, waiting, status, rate, s[6] or "", published, pre_open and 1 or 0, fast, message, lapsed}
