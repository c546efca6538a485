-- A web process holds sockets for these tickets (they connected), and it is
-- alive: its heartbeat. Called with no ticket it is only the heartbeat, once
-- every few seconds per event the process holds sockets for. Abandonment
-- records departures, not presence: a held ticket is simply not departed.
--
-- KEYS[1] departed   zset   waiting ticket no socket holds -> since when (ms)
-- KEYS[2] holders    hash   ticket -> web process holding its socket
-- KEYS[3] held       set    tickets this web process holds
-- KEYS[4] conns      hash   web process -> "sockets:heartbeat ms"
-- ARGV[1] process    this web process's id
-- ARGV[2] sockets    how many sockets it holds for the event
-- ARGV[3..n]         tickets that connected
--
-- Returns 1 if the heartbeat entry was new (or, for a heartbeat alone, is
-- missing, and is then not written: a process holding nothing leaves no key):
-- the first, or the process was taken for dead (its holders departed) and
-- must hold its sockets again.

local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = #ARGV - 2
if n > 0 then
  local tickets, pairs_ = {}, {}
  for i = 1, n do
    local ticket = ARGV[i + 2]
    tickets[i] = ticket
    pairs_[2 * i - 1] = ticket
    pairs_[2 * i] = ARGV[1]
  end
  redis.call("ZREM", KEYS[1], unpack(tickets))
  redis.call("HSET", KEYS[2], unpack(pairs_))
  redis.call("SADD", KEYS[3], unpack(tickets))
end
if n == 0 and redis.call("HEXISTS", KEYS[4], ARGV[1]) == 0 then return 1 end
return redis.call("HSET", KEYS[4], ARGV[1], ARGV[2] .. ":" .. now)
