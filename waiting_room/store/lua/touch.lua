-- A status poll counts as presence: a waiting ticket nobody holds a socket for
-- is departed from now on, not from before. XX: a ticket held by a socket (not
-- in the set) or no longer waiting is left alone.
--
-- KEYS[1] departed   zset   waiting ticket no socket holds -> since when (ms)
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
