-- A web process is gone (its heartbeat lapsed, or it is stopping): every
-- ticket it still holds has departed since its last heartbeat. One call per
-- process and event, once; tickets that reconnected elsewhere meanwhile are
-- held by another process and stay.
--
-- KEYS[1] conns      hash   web process -> "sockets:heartbeat ms"
-- KEYS[2] held       set    tickets that process holds
-- KEYS[3] holders    hash   ticket -> web process holding its socket
-- KEYS[4] line       zset   waiting tickets by order
-- KEYS[5] departed   zset   waiting ticket no socket holds -> since when (ms)
-- ARGV[1] process    the web process's id
-- ARGV[2] lapse_ms   only if its heartbeat is older than this (it may have come back); "0": it is stopping
--
-- Returns the number of tickets that departed, or -1 if the process's heartbeat is fresh again.

local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lapse = tonumber(ARGV[2])
local since = now
if lapse > 0 then
  local beat = redis.call("HGET", KEYS[1], ARGV[1])
  if beat then since = tonumber(string.match(beat, ":(%d+)$") or "0") end
  if now - since <= lapse then return -1 end
end
local departed = 0
for _, ticket in ipairs(redis.call("SMEMBERS", KEYS[2])) do
  if redis.call("HGET", KEYS[3], ticket) == ARGV[1] then
    redis.call("HDEL", KEYS[3], ticket)
    if redis.call("ZSCORE", KEYS[4], ticket) then
      redis.call("ZADD", KEYS[5], since, ticket)
      departed = departed + 1
    end
  end
end
redis.call("DEL", KEYS[2])
redis.call("HDEL", KEYS[1], ARGV[1])
return departed
