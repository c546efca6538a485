-- wrk script: every request a new visitor. Arguments after `--`: PATH [METHOD [INTERVAL_MS]].
-- Each request carries its own X-Forwarded-For (the server trusts 127.0.0.1) and no cookie. Like the
-- waiting page, a connection answered 429 waits its Retry-After before its next request; with
-- INTERVAL_MS each connection sends one request every INTERVAL_MS at most (a paced, fixed offered
-- rate of connections * 1000 / INTERVAL_MS per second while the server keeps up).
-- Prints one JSON line at the end: requests, duration, latency percentiles (microseconds), socket
-- errors and the count of each status.
--   wrk -t2 -c64 -d5s -s bench/wrk_join.lua http://127.0.0.1:PORT -- /api/events/bench/tickets

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
  interval = tonumber(args[3] or "0")
  statuses = {}
  counter = 0
  backoff = 0
end

function request()
  counter = counter + 1
  local ip = string.format("10.%d.%d.%d", id % 256, math.floor(counter / 256) % 256, counter % 256)
  return wrk.format(method, path, {["X-Forwarded-For"] = ip})
end

-- wrk calls delay() for a connection right after response() for it
function delay()
  local wait = math.max(interval, backoff)
  backoff = 0
  return wait
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 429 then
    backoff = 1000 * (tonumber(headers["Retry-After"] or headers["retry-after"] or "1") or 1)
  end
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
