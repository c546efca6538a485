-- wrk script: every request a new visitor. POST to the path given after `--`, each request with its own
-- X-Forwarded-For (the server trusts 127.0.0.1) and no cookie. Prints one JSON line at the end:
-- requests, duration, latency percentiles (microseconds), socket errors and the count of each status.
--   wrk -t2 -c64 -d5s -s bench/wrk_join.lua http://127.0.0.1:PORT -- /api/events/bench/tickets [GET]

local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("id", next_id)
  table.insert(threads, thread)
end

function init(args)
  path = args[1] or "/"
  method = args[2] or "POST"
  statuses = {}
  counter = 0
end

function request()
  counter = counter + 1
  local ip = string.format("10.%d.%d.%d", id % 256, math.floor(counter / 256) % 256, counter % 256)
  return wrk.format(method, path, {["X-Forwarded-For"] = ip})
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(total) do
    table.insert(parts, string.format('"%d": %d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d, "status": %d}, "statuses": {%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.timeout, e.status, table.concat(parts, ", ")))
end
