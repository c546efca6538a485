-- Mark waiting tickets as seen now (their holder has a socket open or polled).
-- XX: a ticket that has left the line (admitted, removed) is not brought back.
--
-- KEYS[1] seen       zset   waiting ticket -> last seen (ms)
-- ARGV[1..n]         tickets
--
-- Returns the number of tickets updated.

if #ARGV == 0 then return 0 end
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local args = {}
for i, ticket in ipairs(ARGV) do
  args[2 * i - 1] = now
  args[2 * i] = ticket
end
return redis.call("ZADD", KEYS[1], "XX", "CH", unpack(args))
