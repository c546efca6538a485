-- Release a redeemed session: its capacity is free at once.
--
-- KEYS[1] active     zset   redeemed sessions (score = session expiry ms)
-- KEYS[2] tickets    hash   ticket -> JSON record
-- KEYS[3] session    string (optional) the session a cookie names -> its ticket; deleted
-- ARGV[1] ticket     the ticket to release, or "" for the one KEYS[3] names
--
-- Returns 1 if a live session was released, 0 if there was none.

local ticket = ARGV[1]
if KEYS[3] then
  ticket = redis.call("GET", KEYS[3])
  if not ticket then return 0 end
  redis.call("DEL", KEYS[3])
end
if redis.call("ZREM", KEYS[1], ticket) == 0 then return 0 end
local raw = redis.call("HGET", KEYS[2], ticket)
if raw then
  local rec = cjson.decode(raw)
  local t = redis.call("TIME")
  rec.sx = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  rec.released = 1
  redis.call("HSET", KEYS[2], ticket, cjson.encode(rec))
end
return 1
