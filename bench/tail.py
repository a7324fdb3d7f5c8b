"""Where the c=1 tail comes from: wrk at one connection against Teamgate's chat route, its
health route (no upstream, no database) and the fake upstream directly, in turn, with the
gateway worker's voluntary/involuntary context switches per request.

Usage (from bench/): .venv-tools/bin/python tail.py [SECONDS [ROUNDS]]"""
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

from targets import BENCH, start_teamgate, start_upstream


def wrk(url: str, seconds: int, env: dict, post: bool) -> dict:
    command = ["wrk", "-t1", "-c1", f"-d{seconds}s", "--latency"]
    if post:
        command += ["-s", str(BENCH / "post.lua")]
    out = subprocess.run(command + [url], env=env, capture_output=True, text=True,
                         timeout=seconds + 30).stdout
    result = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("50%", "90%", "99%"):
            value = parts[1]
            scale = 1000 if value.endswith("us") else (1 / 1000 if value.endswith("s")
                                                       and not value.endswith("ms") else 1)
            number = float(value.rstrip("msu"))
            result[parts[0]] = number / 1000 if value.endswith("us") else (
                number * 1000 if not value.endswith("ms") else number)
        if line.startswith("Requests/sec"):
            result["rps"] = float(parts[1])
    return result


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
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
                result = wrk(url, seconds, case_env, post)
                after = [w.num_ctx_switches() for w in workers]
                requests = result["rps"] * seconds
                result["invol_per_req"] = sum(a.involuntary - b.involuntary
                                              for a, b in zip(after, before)) / requests
                results[name].append(result)
    finally:
        teamgate.stop()
        upstream.stop()
    for name, runs in results.items():
        print(name, {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]})


if __name__ == "__main__":
    main()
