-- Sockets closed: their holders have departed now, and the grace starts. Only
-- for tickets this process still holds (a newer socket elsewhere keeps the
-- ticket held) and that still wait.
--
-- KEYS[1] line       zset   waiting tickets by order
-- KEYS[2] departed   zset   waiting ticket no socket holds -> since when (ms)
-- KEYS[3] holders    hash   ticket -> web process holding its socket
-- KEYS[4] held       set    tickets this web process holds
-- ARGV[1] process    this web process's id
-- ARGV[2..n]         tickets whose socket closed
--
-- Returns the number of tickets marked departed.

local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local marked = 0
for i = 2, #ARGV do
  local ticket = ARGV[i]
  redis.call("SREM", KEYS[4], ticket)
  if redis.call("HGET", KEYS[3], ticket) == ARGV[1] then
    redis.call("HDEL", KEYS[3], ticket)
    if redis.call("ZSCORE", KEYS[1], ticket) then
      redis.call("ZADD", KEYS[2], now, ticket)
      marked = marked + 1
    end
  end
end
return marked
