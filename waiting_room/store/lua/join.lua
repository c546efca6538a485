-- Join an event's line: one round trip, idempotent per browser (wr_uid).
--
-- KEYS[1] settings   hash   the event's settings (absent: unknown event)
-- KEYS[2] seq        string join sequence counter
-- KEYS[3] line       zset   waiting tickets by order
-- KEYS[4] tickets    hash   ticket -> JSON record
-- KEYS[5] uids       hash   wr_uid -> ticket
-- KEYS[6] stats      hash   counters
-- KEYS[7] seen       zset   waiting ticket -> last seen (ms)
-- ARGV[1] ticket     the new ticket id, used only if a new ticket is issued
-- ARGV[2] uid        the caller's wr_uid
-- ARGV[3] shuffle    random integer in [0, post_open): the order of a pre-queue ticket
-- ARGV[4] replace    a ticket of this uid that has finished and may be replaced, or ""
-- ARGV[5] jti        random id its admission token will carry (one per ticket: it redeems once)
-- ARGV[6] post_open  2^40 (tickets.SHUFFLE_RANGE): every post-opening order is above every pre-queue one
--
-- Returns {"unknown_event"} | {"event_closed"} | {"existing", ticket}
--       | {"new", ticket, rank, waiting, served_total, pre_queue(0|1), observed_rate, status, opens_at}

local settings = redis.call("HMGET", KEYS[1], "status", "opens_at")
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
local stats = redis.call("HMGET", KEYS[6], "served_total", "observed_rate")
return {"new", ticket, redis.call("ZRANK", KEYS[3], ticket), redis.call("ZCARD", KEYS[3]),
  tonumber(stats[1] or "0"), pre and 1 or 0, stats[2] or "0", status, settings[2] or ""}
