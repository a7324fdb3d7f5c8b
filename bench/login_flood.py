"""Another team's proxied call and a health probe, with no login flood and during one: CLIENTS
clients (60), each from its own loopback address, post random emails at /ui/login as fast as
they are answered, with the CSRF token of the login page each fetched first. A real user logs in
once a second meanwhile. Teamgate runs as `make run` serves it (gunicorn with gunicorn.conf.py,
SQLite, loopback) in front of the fast fake upstream (targets.py); the flood runs in a process of
its own, so its event loop never delays the probes. Rounds; medians of the rounds.

Usage: cd bench && TEAMGATE_PYTHON=../.venv/bin/python .venv-tools/bin/python login_flood.py
       [--rounds 3] [--seconds 5] [--clients 60] [--one-address]
The flood alone: login_flood.py flood --base URL --seconds S --clients N --subnet 127.0.N
"""
import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import aiohttp
import psutil

from load import chat_body, percentile
from run import Sampler, cpu_share, machine
from targets import BENCH, DASHBOARD_USER, start_teamgate, start_upstream

TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
REAL_USER_ADDRESS = "127.0.0.2"


def session_from(address: str) -> aiohttp.ClientSession:
    """One client: one kept-alive connection from its own address, and its cookies."""
    connector = aiohttp.TCPConnector(limit=1, local_addr=(address, 0))
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.CookieJar(unsafe=True),
                                 timeout=aiohttp.ClientTimeout(total=60))


async def login_token(session, base: str) -> str:
    async with session.get(base + "/ui/login") as response:
        return TOKEN.search(await response.text()).group(1)


def kind_of(status: int, body: str) -> str:
    if status != 429:
        return str(status)
    return "429 busy" if "at once" in body else "429 address"


async def flood(args) -> dict:
    """CLIENTS clients posting random emails until the deadline; answers by kind, latencies."""
    answers, latencies = Counter(), []
    ready = asyncio.Event()
    waiting = args.clients

    async def client(address: str):
        nonlocal waiting
        async with session_from(address) as session:
            token = await login_token(session, args.base)
            waiting -= 1
            if waiting == 0:
                ready.set()
            await ready.wait()
            while time.monotonic() < deadline:
                form = {"csrf_token": token, "email": f"{uuid.uuid4().hex}@example.com",
                        "password": uuid.uuid4().hex}
                started = time.perf_counter()
                try:
                    async with session.post(args.base + "/ui/login", data=form,
                                            allow_redirects=False) as response:
                        kind = kind_of(response.status, await response.text())
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    kind = "error"
                answers[kind] += 1
                latencies.append((time.perf_counter() - started) * 1000)

    deadline = float("inf")
    addresses = ([f"{args.subnet}.10"] * args.clients if args.one_address
                 else [f"{args.subnet}.{10 + n}" for n in range(args.clients)])
    tasks = [asyncio.ensure_future(client(address)) for address in addresses]
    await ready.wait()
    deadline = time.monotonic() + args.seconds
    print("ready", flush=True)
    await asyncio.gather(*tasks)
    counted = {"checked": answers["401"], "refused_busy": answers["429 busy"],
               "refused_address": answers["429 address"]}
    return {"logins": sum(answers.values()), **counted,
            "other_answers": sum(answers.values()) - sum(counted.values()),
            "answers": dict(answers), "login_p50_ms": percentile(latencies, 0.5),
            "login_p99_ms": percentile(latencies, 0.99)}


async def probes(target, seconds: float) -> dict:
    """Another team's call and the health probe one after the other, for `seconds`; a real
    user's login once a second beside them."""
    headers = {"Authorization": f"Bearer {target.other_key}", "Content-Type": "application/json"}
    body = chat_body(target.other_model, False)
    times = {"other_team": [], "health": []}
    failed = 0
    real = {"ok": [], "refused": 0, "failed": 0}
    base = target.url.split("/v1/")[0]
    deadline = time.monotonic() + seconds

    async def real_logins():
        while time.monotonic() < deadline:
            async with session_from(REAL_USER_ADDRESS) as session:
                token = await login_token(session, base)
                form = {"csrf_token": token, "email": DASHBOARD_USER[0],
                        "password": DASHBOARD_USER[1]}
                started = time.perf_counter()
                async with session.post(base + "/ui/login", data=form,
                                        allow_redirects=False) as response:
                    await response.read()
                    if response.status == 302:
                        real["ok"].append((time.perf_counter() - started) * 1000)
                    elif response.status == 429:
                        real["refused"] += 1
                    else:
                        real["failed"] += 1
            await asyncio.sleep(1.0)

    logins = asyncio.ensure_future(real_logins())
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        while time.monotonic() < deadline:
            for name in times:
                started = time.perf_counter()
                request = (session.post(target.url, data=body, headers=headers)
                           if name == "other_team" else session.get(target.health_url))
                async with request as response:
                    await response.read()
                if response.status == 200:
                    times[name].append((time.perf_counter() - started) * 1000)
                else:
                    failed += 1
            await asyncio.sleep(0.01)
    await logins
    result = {"probe_failed": failed, "real_logins_ok": len(real["ok"]),
              "real_logins_refused": real["refused"], "real_logins_failed": real["failed"],
              "real_login_p50_ms": percentile(real["ok"], 0.5),
              "real_login_max_ms": max(real["ok"], default=None)}
    for name, values in times.items():
        result.update({f"{name}_n": len(values), f"{name}_p50_ms": percentile(values, 0.5),
                       f"{name}_p99_ms": percentile(values, 0.99),
                       f"{name}_max_ms": max(values, default=None)})
    return result


async def warm_up(target, calls: int = 20):
    """Calls on fresh connections, so that every worker has the other team's key and model in
    its cache and a connection to the upstream before anything is measured."""
    headers = {"Authorization": f"Bearer {target.other_key}", "Content-Type": "application/json"}
    for _ in range(calls):
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
            async with s.post(target.url, data=chat_body(target.other_model, False),
                              headers=headers) as response:
                await response.read()


def flooded(target, upstream, args, round_number: int) -> dict:
    """The probes while a flood process runs; the flood's own counts beside them."""
    base = target.url.split("/v1/")[0]
    warmup = 1.0  # every client has a login in flight before the probes start
    command = [sys.executable, __file__, "flood", "--base", base, "--clients", str(args.clients),
               "--seconds", str(warmup + args.seconds + 0.5),
               "--subnet", f"127.0.{round_number + 1}"] + (["--one-address"]
                                                            if args.one_address else [])
    holder = {}
    groups = {"gateway": target.tree, "upstream": upstream.tree,
              "loadgen": lambda: holder.get("procs", [])}
    with Sampler(groups) as sampler:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        holder["procs"] = [psutil.Process(process.pid)]
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the flood did not start (exit {process.wait()})")
        time.sleep(warmup)
        result = asyncio.run(probes(target, args.seconds))
        output, _ = process.communicate(timeout=120)
    result.update(json.loads(output.strip().splitlines()[-1]))
    result.update(cpu_share(sampler))
    return result


def medians(runs: list[dict]) -> dict:
    keys = {key for run in runs for key, value in run.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)}
    values = {key: [run[key] for run in runs if run.get(key) is not None] for key in keys}
    return {key: statistics.median(found) if found else None for key, found in values.items()}


ROWS = [("other team's call p50 (ms)", "other_team_p50_ms"),
        ("other team's call p99 (ms)", "other_team_p99_ms"),
        ("other team's call max (ms)", "other_team_max_ms"),
        ("health probe p50 (ms)", "health_p50_ms"),
        ("health probe p99 (ms)", "health_p99_ms"),
        ("health probe max (ms)", "health_max_ms"),
        ("failed probes", "probe_failed"),
        ("a real user's logins (one a second): logged in", "real_logins_ok"),
        ("… refused with 429", "real_logins_refused"),
        ("… p50 of those logged in (ms)", "real_login_p50_ms"),
        ("CPU share of the gateway", "cpu_gateway"),
        ("CPU share of the flood's client", "cpu_loadgen")]


def report(results: dict, args) -> str:
    quiet, loud = results["no_flood"], results["flood"]

    def cell(value):
        return "–" if value is None else f"{value:.2f}"

    lines = ["|  | no flood | flood |", "|---|---|---|"]
    lines += [f"| {label} | {cell(quiet.get(key))} | {cell(loud.get(key))} |"
              for label, key in ROWS]
    refused = loud["refused_busy"] + loud["refused_address"]
    lines += ["", f"The flood ({args.clients} clients, "
                  f"{'one address' if args.one_address else 'one address each'}, "
                  f"{args.seconds:g} s of probes, medians of {args.rounds} rounds): "
                  f"{loud['logins']:.0f} logins answered, {loud['checked']:.0f} checked (401), "
                  f"{refused:.0f} refused with 429 ({loud['refused_busy']:.0f} beyond the "
                  f"budget, {loud['refused_address']:.0f} past the address limit), "
                  f"{loud['other_answers']:.0f} other; their p50 {loud['login_p50_ms']:.1f} ms, "
                  f"p99 {loud['login_p99_ms']:.1f} ms."]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", nargs="?", default="bench", choices=["bench", "flood"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--clients", type=int, default=60)
    parser.add_argument("--one-address", action="store_true",
                        help="every flood client from the same address")
    parser.add_argument("--base", help="flood mode: Teamgate's base URL")
    parser.add_argument("--subnet", default="127.0.1", help="flood mode: the clients' /24")
    args = parser.parse_args()
    if args.mode == "flood":
        print(json.dumps(asyncio.run(flood(args))))
        return
    out = BENCH / "out"
    out.mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="teamgate-login-flood-"))
    upstream = start_upstream(sys.executable, 1)
    target = None
    runs = {"no_flood": [], "flood": []}
    load_before = os.getloadavg()[0]
    try:
        with open(out / "login_flood-servers.log", "w") as log:
            target = start_teamgate(workdir, upstream.extra["api_base"], log)
            asyncio.run(warm_up(target))
            for round_number in range(args.rounds):
                print(f"round {round_number + 1}/{args.rounds}", flush=True)
                runs["no_flood"].append(asyncio.run(probes(target, args.seconds)))
                runs["flood"].append(flooded(target, upstream, args, round_number))
                time.sleep(2)  # the logins still in flight end
    finally:
        for each in (target, upstream):
            if each is not None:
                each.stop()
    results = {name: medians(rounds) for name, rounds in runs.items()}
    (out / "login_flood.json").write_text(json.dumps(
        {"args": vars(args), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(),
         "load_average": [load_before, os.getloadavg()[0]],
         "workers": os.environ.get("WORKERS", "one per core"), "medians": results, "runs": runs},
        indent=2))
    print(report(results, args))
    print(f"\n{machine()}; load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after")


if __name__ == "__main__":
    main()
