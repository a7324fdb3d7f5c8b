"""Another team's proxied call and the health probe while one team's upstream misbehaves:
HOSTILE callers (8) call, again and again, models of one team whose upstream answers with a
600 MiB body, a 48 MiB header, a 48 MiB event stream without a newline, 48 MiB of well-formed
events as fast as loopback carries them, or one byte a second (the model's timeout is 5 s). Teamgate runs as `make run` serves it (gunicorn, SQLite,
loopback); the hostile upstream and the hostile callers run in processes of their own, so their
event loops never delay the probes. Rounds; medians of the rounds. The gateway's memory (RSS of
all its processes) is sampled meanwhile.

Usage: cd bench && TEAMGATE_PYTHON=../.venv/bin/python .venv-tools/bin/python hostile.py
       [--rounds 3] [--seconds 8] [--callers 8] [--modes huge_body,huge_head,no_newlines,event_flood,drip]
The parts alone: hostile.py upstream PORT | hostile.py callers --base URL --key K --seconds S
"""
import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import aiohttp
import psutil

from load import chat_body
from login_flood import medians, probes, warm_up
from run import machine
from targets import BENCH, free_port, post, start_teamgate, start_upstream, wait_http

MODES = ("huge_body", "huge_head", "no_newlines", "event_flood", "drip")
MIB = 1 << 20


async def hostile_answer(mode: str, writer: asyncio.StreamWriter):
    """What the hostile upstream writes for one request, until the caller hangs up."""
    piece = b"x" * MIB
    if mode == "huge_body":
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                     b"content-length: %d\r\n\r\n{\"id\": \"" % (600 * MIB))
        for _ in range(600):
            writer.write(piece)
            await writer.drain()
    elif mode == "huge_head":
        writer.write(b"HTTP/1.1 200 OK\r\nx-junk: ")
        for _ in range(48):
            writer.write(piece)
            await writer.drain()
        writer.write(b"\r\ncontent-length: 2\r\n\r\n{}")
    elif mode == "no_newlines":
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                     b"transfer-encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"y" * 64 * 1024)
        for _ in range(48 * 16):
            writer.write(chunk)
            await writer.drain()
    elif mode == "event_flood":  # well-formed events, 48 MiB of them, as fast as loopback goes
        event = b"data: " + json.dumps({"choices": [{"index": 0, "delta": {
            "content": "z" * 4000}}]}).encode() + b"\n\n"
        chunk = b"%x\r\n%s\r\n" % (len(event) * 16, event * 16)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                     b"transfer-encoding: chunked\r\n\r\n")
        for _ in range(48 * MIB // (len(event) * 16)):
            writer.write(chunk)
            await writer.drain()
        writer.write(b"d\r\ndata: [DONE]\n\n\r\n0\r\n\r\n")
    else:  # drip
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                     b"content-length: 1000\r\n\r\n")
        for _ in range(1000):
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(1.0)


async def serve_hostile(port: int):
    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                length = next((int(line.split(":", 1)[1]) for line in lines
                               if line.lower().startswith("content-length:")), 0)
                await reader.readexactly(length)
                path = lines[0].split(" ")[1]
                if path.startswith("/v1/models"):
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                    await writer.drain()
                    continue
                await hostile_answer(path.split("/")[1], writer)
                break
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


async def callers(args) -> dict:
    """CALLERS callers, each cycling through the hostile models until the deadline."""
    answers, modes = Counter(), args.modes.split(",")
    deadline = time.monotonic() + args.seconds
    headers = {"Authorization": f"Bearer {args.key}", "Content-Type": "application/json"}

    async def caller(number: int):
        turn = number
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            while time.monotonic() < deadline:
                mode = modes[turn % len(modes)]
                turn += 1
                body = chat_body(f"hostile-{mode}", mode in ("no_newlines", "event_flood"))
                try:
                    async with session.post(args.base + "/v1/chat/completions", data=body,
                                            headers=headers) as response:
                        await response.read()
                        answers[f"{mode} {response.status}"] += 1
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    answers[f"{mode} error"] += 1

    await asyncio.gather(*(caller(n) for n in range(args.callers)))
    return dict(answers)


def register_hostile_models(target, hostile_base: str):
    """Team bench-a's hostile models; their calls end at the model's timeout at the latest."""
    base = target.url.split("/v1/")[0]
    for mode in MODES:
        post(base + "/model/new", {
            "model_name": f"hostile-{mode}",
            "litellm_params": {"model": f"openai/hostile-{mode}", "timeout": 5,
                               "api_base": f"{hostile_base}/{mode}/v1",
                               "api_key": "sk-fake-hostile"},
            "model_info": {"team_id": target.extra["team_ids"][0]}}, target.key)


class Memory:
    """The gateway's RSS (all its processes), sampled every 0.2 s: the most seen."""

    def __init__(self, target):
        self.target, self.most, self.running = target, 0, True
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while self.running:
            rss = 0
            for process in self.target.tree():
                try:
                    rss += process.memory_info().rss
                except psutil.Error:
                    pass
            self.most = max(self.most, rss)
            time.sleep(0.2)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()


def attacked(target, args) -> dict:
    base = target.url.split("/v1/")[0]
    command = [sys.executable, __file__, "callers", "--base", base, "--key", target.key,
               "--seconds", str(args.seconds + 1), "--callers", str(args.callers),
               "--modes", args.modes]
    with Memory(target) as memory:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)  # every caller has a hostile call in flight
        result = asyncio.run(probes(target, args.seconds))
        output, _ = process.communicate(timeout=120)
    answers = json.loads(output.strip().splitlines()[-1])
    result.update({"hostile_calls": sum(answers.values()), "hostile_answers": answers,
                   "gateway_rss_max_mib": memory.most / MIB})
    return result


def quiet(target, args) -> dict:
    with Memory(target) as memory:
        result = asyncio.run(probes(target, args.seconds))
    result["gateway_rss_max_mib"] = memory.most / MIB
    return result


ROWS = [("other team's call p50 (ms)", "other_team_p50_ms"),
        ("other team's call p99 (ms)", "other_team_p99_ms"),
        ("other team's call max (ms)", "other_team_max_ms"),
        ("health probe p50 (ms)", "health_p50_ms"),
        ("health probe p99 (ms)", "health_p99_ms"),
        ("health probe max (ms)", "health_max_ms"),
        ("failed probes", "probe_failed"),
        ("gateway RSS, most seen (MiB)", "gateway_rss_max_mib")]


def report(results: dict, runs: dict, args) -> str:
    calm, loud = results["quiet"], results["hostile"]

    def cell(value):
        return "–" if value is None else f"{value:.2f}"

    lines = ["|  | quiet upstream | hostile upstream |", "|---|---|---|"]
    lines += [f"| {label} | {cell(calm.get(key))} | {cell(loud.get(key))} |"
              for label, key in ROWS]
    answers = Counter()
    for run in runs["hostile"]:
        answers.update(run["hostile_answers"])
    lines += ["", f"Hostile calls ({args.callers} callers, {args.seconds:g} s, all "
                  f"{args.rounds} rounds): " + ", ".join(
                      f"{name}: {count}" for name, count in sorted(answers.items()))]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", nargs="?", default="bench", choices=["bench", "upstream",
                                                                     "callers"])
    parser.add_argument("port", nargs="?", type=int)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--callers", type=int, default=8)
    parser.add_argument("--modes", default=",".join(MODES),
                        help="which misbehaviours the callers cycle through")
    parser.add_argument("--base")
    parser.add_argument("--key")
    args = parser.parse_args()
    if args.mode == "upstream":
        asyncio.run(serve_hostile(args.port))
        return
    if args.mode == "callers":
        print(json.dumps(asyncio.run(callers(args))))
        return
    out = BENCH / "out"
    out.mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="teamgate-hostile-"))
    upstream = start_upstream(sys.executable, 1)
    port = free_port()
    hostile = subprocess.Popen([sys.executable, __file__, "upstream", str(port)],
                               stdout=subprocess.PIPE, text=True, start_new_session=True)
    target = None
    runs = {"quiet": [], "hostile": []}
    load_before = os.getloadavg()[0]
    try:
        if hostile.stdout.readline().strip() != "ready":
            raise RuntimeError("the hostile upstream did not start")
        wait_http(f"http://127.0.0.1:{port}/v1/models")
        with open(out / "hostile-servers.log", "w") as log:
            target = start_teamgate(workdir, upstream.extra["api_base"], log)
            register_hostile_models(target, f"http://127.0.0.1:{port}")
            asyncio.run(warm_up(target))
            for round_number in range(args.rounds):
                print(f"round {round_number + 1}/{args.rounds}", flush=True)
                runs["quiet"].append(quiet(target, args))
                runs["hostile"].append(attacked(target, args))
                time.sleep(2)
    finally:
        for each in (target, upstream):
            if each is not None:
                each.stop()
        hostile.kill()
    results = {name: medians(rounds) for name, rounds in runs.items()}
    (out / "hostile.json").write_text(json.dumps(
        {"args": vars(args), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(),
         "load_average": [load_before, os.getloadavg()[0]], "medians": results, "runs": runs},
        indent=2))
    print(report(results, runs, args))
    print(f"\n{machine()}; load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after")


if __name__ == "__main__":
    main()
