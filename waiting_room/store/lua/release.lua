-- Release a redeemed session: its capacity is free at once.
--
-- KEYS[1] active     zset   redeemed sessions (score = session expiry ms)
-- KEYS[2] tickets    hash   ticket -> JSON record
-- ARGV[1] ticket
--
-- Returns 1 if a live session was released, 0 if there was none.

if redis.call("ZREM", KEYS[1], ARGV[1]) == 0 then return 0 end
local raw = redis.call("HGET", KEYS[2], ARGV[1])
if raw then
  local rec = cjson.decode(raw)
  local t = redis.call("TIME")
  rec.sx = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  rec.released = 1
  redis.call("HSET", KEYS[2], ARGV[1], cjson.encode(rec))
end
return 1
