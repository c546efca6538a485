-- Redeem an admission token: exactly once per ticket (the jti is per ticket).
--
-- KEYS[1] tickets    hash   ticket -> JSON record
-- KEYS[2] pending    zset   admitted, not redeemed (score = token expiry ms)
-- KEYS[3] active     zset   redeemed sessions (score = session expiry ms)
-- KEYS[4] stats      hash   counters
-- KEYS[5] settings   hash   for session_ttl_seconds
-- KEYS[6] done       zset   finished tickets (for trimming old records)
-- KEYS[7] session    string the new session (named by its cookie's secret) -> ticket, expiring with it
-- ARGV[1] ticket     the token's sub
-- ARGV[2] jti        the token's jti
--
-- Returns {"ok", session_expires_ms} | {"invalid"} | {"used"} | {"expired"}

local raw = redis.call("HGET", KEYS[1], ARGV[1])
if not raw then return {"invalid"} end
local rec = cjson.decode(raw)
if rec.jti ~= ARGV[2] then return {"invalid"} end
if rec.s == "redeemed" then return {"used"} end

local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if rec.s == "expired" or (rec.s == "admitted" and now > tonumber(rec.x)) then return {"expired"} end
if rec.s ~= "admitted" then return {"invalid"} end

local ttl = tonumber(redis.call("HGET", KEYS[5], "session_ttl_seconds") or "600") -- default: session_ttl_seconds
rec.s = "redeemed"
rec.r = now
rec.sx = now + ttl * 1000
redis.call("HSET", KEYS[1], ARGV[1], cjson.encode(rec))
redis.call("ZREM", KEYS[2], ARGV[1])
redis.call("ZADD", KEYS[3], rec.sx, ARGV[1])
redis.call("SET", KEYS[7], ARGV[1], "PX", ttl * 1000)
redis.call("ZADD", KEYS[6], now, ARGV[1])
redis.call("HINCRBY", KEYS[4], "redeemed", 1)
return {"ok", string.format("%.0f", rec.sx)}
