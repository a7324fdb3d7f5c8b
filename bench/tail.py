"""Where the latency tail comes from: wrk at CONNECTIONS (1 unless given) against Teamgate's chat
route, its health route (no upstream, no database) and the fake upstream directly, in turn, with
the gateway workers' involuntary context switches per request, and for the chat route the
latency Teamgate itself logged (view entered to log row; the same minus the upstream's time).

Usage (from bench/): .venv-tools/bin/python tail.py [SECONDS [ROUNDS [CONNECTIONS]]]"""
import sqlite3
import statistics
import time
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

from targets import BENCH, start_teamgate, start_upstream


def logged(db: Path, since: str) -> dict:
    """p50/p99 of the request log's latency and overhead for the chat calls since `since`."""
    time.sleep(0.5)  # the writer's next batch
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT latency_ms, overhead_ms FROM request_log WHERE created_at > ? AND "
            "route = '/chat/completions'", (since,)).fetchall()
    if not rows:
        return {}
    latency, overhead = sorted(r[0] for r in rows), sorted(r[1] for r in rows)
    at = lambda values, q: values[min(len(values) - 1, int(len(values) * q))]  # noqa: E731
    return {"app_50%": at(latency, 0.5), "app_99%": at(latency, 0.99),
            "own_99%": at(overhead, 0.99), "app_max": latency[-1]}


def wrk(url: str, seconds: int, env: dict, post: bool, connections: int) -> dict:
    command = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s",
               "--latency"]
    if post:
        command += ["-s", str(BENCH / "post.lua")]
    out = subprocess.run(command + [url], env=env, capture_output=True, text=True,
                         timeout=seconds + 30).stdout
    result = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("50%", "90%", "99%"):
            value = parts[1]
            number = float(value.rstrip("msu"))
            result[parts[0]] = number / 1000 if value.endswith("us") else (
                number * 1000 if not value.endswith("ms") else number)
        if line.startswith("Requests/sec"):
            result["rps"] = float(parts[1])
    return result


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    connections = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    log = open(BENCH / "out" / "tail-servers.log", "w")
    upstream = start_upstream(sys.executable, 1)
    teamgate = start_teamgate(Path(tempfile.mkdtemp()), upstream.extra["api_base"], log)
    env = {"BENCH_MODEL": teamgate.fast_model, "BENCH_KEY": teamgate.key}
    base = teamgate.url.split("/v1/")[0]
    cases = {"chat": (teamgate.url, env, True), "health": (base + "/health/liveliness", {}, False),
             "direct": (upstream.url, {"BENCH_MODEL": "bench-fast"}, True)}
    results = {name: [] for name in cases}
    try:
        workers = [psutil.Process(w.pid) for w in teamgate.tree()[1:]]
        for _ in range(rounds):
            for name, (url, case_env, post) in cases.items():
                before = [w.num_ctx_switches() for w in workers]
                since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
                result = wrk(url, seconds, case_env, post, connections)
                after = [w.num_ctx_switches() for w in workers]
                requests = result["rps"] * seconds
                result["invol_per_req"] = sum(a.involuntary - b.involuntary
                                              for a, b in zip(after, before)) / requests
                if name == "chat":
                    result.update(logged(teamgate.extra["db"], since))
                results[name].append(result)
    finally:
        teamgate.stop()
        upstream.stop()
    for name, runs in results.items():
        print(name, {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]})


if __name__ == "__main__":
    main()
