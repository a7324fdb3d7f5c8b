"""Does the load generator see the latency Teamgate gives it? At concurrency 1, wrk and the
asyncio client (load.py latency) take turns against the same Teamgate, whose workers note when
they finish each request (trace_gunicorn.py). A client on one connection cannot send a call
before it has read the previous answer, so no call can take it longer than the gap between the
two answers Teamgate finished around it, unless the client itself held it up. The table puts
each client's percentiles beside those gaps, for the same window.

Usage (from bench/): .venv-tools/bin/python clients.py [SECONDS [ROUNDS]]"""
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from load import percentile
from targets import BENCH, start_teamgate, start_upstream


def wrk_c1(url: str, env: dict, seconds: int) -> dict:
    out = subprocess.run(["wrk", "-t1", "-c1", f"-d{seconds}s", "-s", str(BENCH / "post.lua"),
                          url], env={**os.environ, **env}, capture_output=True, text=True,
                         timeout=seconds + 30).stdout
    return json.loads(next(line for line in out.splitlines() if line.startswith("BENCH "))[6:])


def asyncio_c1(url: str, key: str, model: str, seconds: int) -> dict:
    out = subprocess.run([sys.executable, str(BENCH / "load.py"), "latency", "--url", url,
                          "--key", key, "--model", model, "--seconds", str(seconds),
                          "--requests", str(seconds * 50_000)],
                         capture_output=True, text=True, timeout=seconds + 30).stdout
    return json.loads(out.strip().splitlines()[-1])


def gaps(ends: list[float], start: float, stop: float) -> list[float]:
    inside = sorted(t for t in ends if start <= t <= stop)
    return [(b - a) * 1000 for a, b in zip(inside, inside[1:])]


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    trace = Path(tempfile.mkdtemp(prefix="teamgate-trace-"))
    (BENCH / "out").mkdir(exist_ok=True)
    log = open(BENCH / "out" / "clients-servers.log", "w")
    upstream = start_upstream(sys.executable, 1)
    teamgate = start_teamgate(Path(tempfile.mkdtemp()), upstream.extra["api_base"], log,
                              config=str(BENCH / "trace_gunicorn.py"),
                              env={"TRACE_DIR": str(trace)})
    windows = []
    try:
        for _ in range(rounds):
            for client in ("wrk", "asyncio"):
                start = time.monotonic()
                if client == "wrk":
                    result = wrk_c1(teamgate.url, {"BENCH_MODEL": teamgate.fast_model,
                                                   "BENCH_KEY": teamgate.key}, seconds)
                else:
                    result = asyncio_c1(teamgate.url, teamgate.key, teamgate.fast_model,
                                        seconds)
                windows.append((client, start, time.monotonic(), result))
                time.sleep(0.5)
    finally:
        teamgate.stop()
        upstream.stop()
    ends = [t for path in trace.glob("ends-*.json") for t in json.loads(path.read_text())]
    print("| client | calls | client p50 | client p99 | Teamgate's gaps p50 | gaps p99 | "
          "gaps p99.9 | gaps max |")
    print("|---|---|---|---|---|---|---|---|")
    for client, start, stop, result in windows:
        between = gaps(ends, start, stop)
        cells = [result["p50_ms"], result["p99_ms"], percentile(between, 0.5),
                 percentile(between, 0.99), percentile(between, 0.999), max(between)]
        print(f"| {client} | {result['requests']} | " + " | ".join(f"{c:.2f}" for c in cells)
              + " |")


if __name__ == "__main__":
    main()
