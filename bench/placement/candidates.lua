-- wrk script for the placement benchmark: GET $BENCH_PATH (allocation candidates query) with
-- the token in $BENCH_TOKEN and placement microversion 1.39; the same bytes go to both systems
-- apart from the path prefix and the token. done() writes one JSON line to $BENCH_JSON.
local function env(name)
  local v = os.getenv(name)
  if v == nil or v == "" then
    error("environment variable " .. name .. " is not set")
  end
  return v
end

wrk.method = "GET"
wrk.path = env("BENCH_PATH")
wrk.headers["Accept"] = "application/json"
wrk.headers["X-Auth-Token"] = env("BENCH_TOKEN")
wrk.headers["OpenStack-API-Version"] = "placement 1.39"

-- Non-2xx answers are counted by wrk as errors.status; the script also counts the bytes read.
function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  local out = string.format(
    '{"requests":%d,"bytes":%d,"duration_s":%.3f,"rps":%.3f,"p50_ms":%.3f,"p90_ms":%.3f,'
      .. '"p99_ms":%.3f,"max_ms":%.3f,"mean_ms":%.3f,"errors":{"connect":%d,"read":%d,'
      .. '"write":%d,"status":%d,"timeout":%d}}',
    summary.requests, summary.bytes, secs, summary.requests / secs,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3,
    latency.max / 1e3, latency.mean / 1e3,
    e.connect, e.read, e.write, e.status, e.timeout)
  local path = os.getenv("BENCH_JSON")
  if path and path ~= "" then
    local f = assert(io.open(path, "w"))
    f:write(out, "\n")
    f:close()
  else
    io.write(out, "\n")
  end
end
