"""`make bench`: the fake upstream directly, Teamgate and the LiteLLM proxy, side by side, on the
same upstream and load, in rounds (medians of the rounds); writes bench/RESULTS.md and
bench/out/results.json. Bounded: every scenario has a duration or a request count and a deadline.
"""
import argparse
import json
import os
import platform
import shlex
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from targets import BENCH, BENCH_LIMITS, start_litellm, start_redis, start_teamgate, start_upstream
from report import write_limits_report, write_report

LOAD = [sys.executable, str(BENCH / "load.py")]


class Sampler:
    """Samples RSS of process trees and CPU time of groups of processes while load runs."""

    def __init__(self, groups: dict):
        self.groups = groups  # name -> callable returning processes
        self.max_rss = {name: 0 for name in groups}
        self._stop = threading.Event()
        self._cpu_start = {}
        self._cpu = {name: {} for name in groups}

    def _cpu_of(self, name):
        for process in self.groups[name]():
            try:
                times = process.cpu_times()
                self._cpu[name][process.pid] = times.user + times.system
            except psutil.Error:
                pass

    def _run(self):
        while not self._stop.wait(0.25):
            for name, processes in self.groups.items():
                rss = 0
                for process in processes():
                    try:
                        rss += process.memory_info().rss
                    except psutil.Error:
                        pass
                self.max_rss[name] = max(self.max_rss[name], rss)
                self._cpu_of(name)

    def __enter__(self):
        for name in self.groups:
            self._cpu_of(name)
        self._cpu_start = {name: dict(cpu) for name, cpu in self._cpu.items()}
        self.started = time.perf_counter()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        for name in self.groups:
            self._cpu_of(name)
        self._stop.set()
        self._thread.join()
        self.elapsed = time.perf_counter() - self.started

    def cpu_share(self, name) -> float:
        """CPU seconds used per wall second, as a share of the whole machine."""
        used = sum(self._cpu[name].get(pid, 0) - self._cpu_start[name].get(pid, 0)
                   for pid in self._cpu[name])
        return used / (self.elapsed * psutil.cpu_count())


def wrk(target, concurrency: int, seconds: float, sampler_groups) -> dict:
    env = {**os.environ, "BENCH_MODEL": target.fast_model, "BENCH_KEY": target.key}
    command = ["wrk", f"-t{min(concurrency, 2)}", f"-c{concurrency}", f"-d{seconds}s",
               "--timeout", "10s", "-s", str(BENCH / "post.lua"), target.url]
    holder = {}
    groups = {**sampler_groups, "loadgen": lambda: holder.get("procs", [])}
    with Sampler(groups) as sampler:
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
        holder["procs"] = [psutil.Process(process.pid)]
        output, _ = process.communicate(timeout=seconds + 30)
    line = next(l for l in output.splitlines() if l.startswith("BENCH "))
    result = json.loads(line[6:])
    result.update(cpu_share(sampler), rss_mb=sampler.max_rss["gateway"] / 2**20)
    return result


def cpu_share(sampler) -> dict:
    return {f"cpu_{name}": round(sampler.cpu_share(name), 3) for name in sampler.groups}


def load(target, mode: str, sampler_groups, **options) -> dict:
    command = [*LOAD, mode, "--url", target.url, "--key", target.key]
    for name, value in options.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    holder = {}
    groups = {**sampler_groups, "loadgen": lambda: holder.get("procs", [])}
    timeout = float(options.get("seconds", 60)) + 30
    with Sampler(groups) as sampler:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        holder["procs"] = [psutil.Process(process.pid)]
        output, _ = process.communicate(timeout=timeout)
    lines = output.strip().splitlines()
    if process.returncode != 0 or not lines:  # counted as a failed run, not a crash
        return {"errors": 1, "failed": f"{mode} exited {process.returncode}", "rss_mb": 0}
    result = json.loads(lines[-1])
    result.update(cpu_share(sampler), rss_mb=sampler.max_rss["gateway"] / 2**20)
    return result


def scenarios(target, upstream, args) -> dict:
    groups = {"gateway": target.tree, "upstream": upstream.tree}
    slow = {"model": target.slow_model, "concurrency": args.streams, "seconds": 60,
            "health_url": target.health_url, "other_key": target.other_key,
            "other_model": target.other_model}
    if target.dashboard_url:
        slow.update(dashboard_url=target.dashboard_url, dashboard_cookie=target.dashboard_cookie)
    runs = {
        # c=1 latency by the asyncio client; wrk's c=1 figures are kept beside them (PROFILE.md
        # section 8: its p99 there exceeds what the gateway's own answer times allow)
        "c1": lambda: load(target, "latency", groups, model=target.fast_model,
                           seconds=args.seconds, requests=args.seconds * 50_000),
        "c1wrk": lambda: wrk(target, 1, args.seconds, groups),
        "c32": lambda: wrk(target, 32, args.seconds, groups),
        "ttfb1": lambda: load(target, "ttfb", groups, model=target.fast_model, concurrency=1,
                              requests=args.ttfb_requests, seconds=30),
        "ttfb32": lambda: load(target, "ttfb", groups, model=target.fast_model, concurrency=32,
                               requests=args.ttfb_requests * 4, seconds=30),
        "slow": lambda: load(target, "slow", groups, **slow),
    }
    return {name: run() for name, run in runs.items() if name in args.scenarios}


def count_log_rows(target, upstream, args) -> dict:
    """Send an exact number of calls, stop Teamgate (its workers flush at exit), count rows."""
    db = target.extra["db"]
    with sqlite3.connect(db) as connection:
        time.sleep(1.0)
        before = connection.execute("SELECT count(*) FROM request_log").fetchone()[0]
    result = load(target, "burst", {"gateway": target.tree, "upstream": upstream.tree},
                  model=target.fast_model, concurrency=32, requests=args.log_requests,
                  seconds=60)
    target.stop()
    with sqlite3.connect(db) as connection:
        after = connection.execute("SELECT count(*) FROM request_log").fetchone()[0]
    return {"sent": result["requests"], "ok": result["ok"], "rows": after - before}


def median_of(runs: list[dict]) -> dict:
    keys = runs[0].keys()
    return {k: statistics.median(r[k] for r in runs if r.get(k) is not None)
            if any(isinstance(r.get(k), (int, float)) for r in runs) else runs[0][k]
            for k in keys}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5, help="duration of each wrk run")
    parser.add_argument("--ttfb-requests", type=int, default=200)
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--log-requests", type=int, default=2000)
    parser.add_argument("--upstream-processes", type=int, default=1)
    parser.add_argument("--targets", default="direct,teamgate,litellm")
    parser.add_argument("--scenarios", default="c1,c1wrk,c32,ttfb1,ttfb32,slow",
                        help="a subset for quick comparisons; RESULTS.md wants them all")
    parser.add_argument("--no-log-check", action="store_true")
    parser.add_argument("--limits", default="",
                        help="also run Teamgate with a budget, an rpm and a tpm limit on the caller's key, "
                             "counted 'embedded' (the SQLite file) and/or on 'redis'; writes "
                             "LIMITS.md beside the limits-off run, e.g. --limits embedded,redis")
    args = parser.parse_args()
    args.scenarios = args.scenarios.split(",")
    args.limits = [mode for mode in args.limits.split(",") if mode]
    load_before = os.getloadavg()  # the machine may be shared: the figures say under what load
    out = BENCH / "out"
    out.mkdir(exist_ok=True)
    names = args.targets.split(",")
    workdir = Path(tempfile.mkdtemp(prefix="teamgate-bench-"))
    log = open(out / "servers.log", "w")
    upstream = start_upstream(sys.executable, args.upstream_processes)
    targets = {"direct": upstream}
    redis = None
    try:
        api_base = upstream.extra["api_base"]
        if "teamgate" in names:
            targets["teamgate"] = start_teamgate(workdir, api_base, log)
        for mode in args.limits:
            env = {}
            if mode == "redis":
                redis, url = start_redis(workdir)
                env["REDIS_URL"] = url
            name = f"teamgate-limits-{mode}"
            targets[name] = start_teamgate(workdir / name, api_base, log, env=env,
                                           limits=BENCH_LIMITS)
            names.append(name)
        if "litellm" in names:
            targets["litellm"] = start_litellm(workdir, api_base, log)
        runs = {name: [] for name in names}
        for round_number in range(args.rounds):
            for name in names:
                print(f"round {round_number + 1}/{args.rounds}: {name}", flush=True)
                runs[name].append(scenarios(targets[name], upstream, args))
        results = {name: {scenario: median_of([run[scenario] for run in runs[name]])
                          for scenario in runs[name][0]} for name in names}
        if "teamgate" in names and not args.no_log_check:
            results["teamgate"]["log"] = count_log_rows(targets["teamgate"], upstream, args)
    finally:
        for target in targets.values():
            target.stop()
        if redis is not None:
            redis.terminate()
            redis.wait(10)
    command = "make bench" if os.environ.get("MAKELEVEL") else (
        "cd bench && TEAMGATE_PYTHON=" + os.environ.get("TEAMGATE_PYTHON", "../.venv/bin/python")
        + " .venv-tools/bin/python " + shlex.join(sys.argv))
    meta = {"command": command, "machine": machine(), "args": vars(args),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "load": "{:.1f}, {:.1f}, {:.1f} at the start, {:.1f}, {:.1f}, {:.1f} at the end".format(
                *load_before, *os.getloadavg())}
    (out / "results.json").write_text(json.dumps(
        {"meta": meta, "medians": results, "runs": runs}, indent=2, default=str))
    if args.limits:
        write_limits_report(BENCH / "LIMITS.md", meta, results, runs)
        print((BENCH / "LIMITS.md").read_text())
    elif set(args.scenarios) == {"c1", "c1wrk", "c32", "ttfb1", "ttfb32", "slow"}:
        write_report(BENCH / "RESULTS.md", meta, results)
        print((BENCH / "RESULTS.md").read_text())
    else:
        print(json.dumps(results, indent=1, default=str))


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = psutil.virtual_memory().total / 2**30
    return (f"{psutil.cpu_count()} CPU ({cpu}), {memory:.1f} GiB RAM, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}")


if __name__ == "__main__":
    main()
