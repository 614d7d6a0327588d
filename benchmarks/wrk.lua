-- wrk script for `python -m benchmarks`: POSTs BENCH_WRK_BODY with the headers in
-- BENCH_WRK_HEADERS ("Name: value" lines), counts non-200 answers and JSON-RPC errors, and
-- prints one JSON line of totals and latency percentiles (microseconds) at the end.
wrk.method = "POST"
wrk.body = os.getenv("BENCH_WRK_BODY")
for line in string.gmatch(os.getenv("BENCH_WRK_HEADERS") or "", "[^\n]+") do
  local name, value = string.match(line, "^([^:]+):%s*(.*)$")
  if name then wrk.headers[name] = value end
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

errors = 0
function response(status, headers, body)
  if status ~= 200 or string.find(string.sub(body, 1, 200), '"error"', 1, true) then
    errors = errors + 1
  end
end

function done(summary, latency, requests)
  local failed = 0
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("errors")
  end
  local e = summary.errors
  failed = failed + e.connect + e.read + e.write + e.timeout
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), failed))
end
