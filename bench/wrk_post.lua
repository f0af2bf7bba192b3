-- wrk script for `make bench`: POST JSON bodies read from a file (one body per line),
-- cycled per connection, and a `done` hook that prints the run's figures as one JSON line
-- (latency in microseconds, as wrk records it).
--   wrk -t1 -c4 -d10s --latency -s bench/wrk_post.lua URL -- BODIES_FILE
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local requests = {}
local counter = 0

function init(args)
  local path = args[1]
  assert(path, "usage: wrk ... -s wrk_post.lua URL -- BODIES_FILE")
  local file = assert(io.open(path, "r"))
  for line in file:lines() do
    if #line > 0 then
      requests[#requests + 1] = wrk.format(nil, nil, nil, line)
    end
  end
  file:close()
  assert(#requests > 0, "no request bodies in " .. path)
  counter = math.random(#requests) - 1
end

function request()
  counter = counter + 1
  return requests[(counter % #requests) + 1]
end

function done(summary, latency, requests_)
  local e = summary.errors
  io.write(string.format(
    '{"wrk_json":1,"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end
