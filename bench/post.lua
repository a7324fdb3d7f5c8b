-- wrk script: POST a small chat completion; report percentiles and errors as one JSON line.
-- Environment: BENCH_MODEL (model name), BENCH_KEY (Bearer key, may be empty).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("BENCH_KEY") or ""
if key ~= "" then wrk.headers["Authorization"] = "Bearer " .. key end
wrk.body = '{"model": "' .. (os.getenv("BENCH_MODEL") or "bench") ..
           '", "messages": [{"role": "user", "content": "Say hello."}]}'

function done(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write +
                 summary.errors.status + summary.errors.timeout
  io.write(string.format(
    'BENCH {"requests": %d, "errors": %d, "non2xx": %d, "seconds": %.3f, "rps": %.1f, ' ..
    '"p50_ms": %.3f, "p99_ms": %.3f, "mean_ms": %.3f}\n',
    summary.requests, errors, summary.errors.status, summary.duration / 1e6,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.mean / 1000))
end
