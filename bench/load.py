"""The asyncio load generator: latency at concurrency 1, time to first byte of streamed
answers, many concurrent slow streams with latency probes beside them, exact-count bursts.

Every loop is bounded by a request count and a deadline. Prints one JSON object."""
import argparse
import asyncio
import json
import time
from urllib.parse import urlsplit

import aiohttp


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


API = "chat"  # or "messages": Anthropic's Messages API bodies (--api)


def chat_body(model: str, stream: bool) -> bytes:
    body = {"model": model, "stream": stream,
            "messages": [{"role": "user", "content": "Say hello."}]}
    if API == "messages":
        body["max_tokens"] = 64
    return json.dumps(body).encode()


async def stream_once(session, url, headers, body) -> tuple[float | None, bool]:
    """Time to the first byte of the body, and whether the stream ended with [DONE]."""
    started = time.perf_counter()
    first = None
    tail = b""
    async with session.post(url, data=body, headers=headers) as response:
        if response.status != 200:
            await response.read()
            return None, False
        async for chunk in response.content.iter_any():
            if first is None:
                first = time.perf_counter() - started
            tail = (tail + chunk)[-64:]
    return first, b"[DONE]" in tail or b"message_stop" in tail


async def ttfb(args, session, headers):
    body = chat_body(args.model, True)
    times, errors, sent = [], 0, 0
    deadline = time.monotonic() + args.seconds

    async def worker():
        nonlocal errors, sent
        while sent < args.requests and time.monotonic() < deadline:
            sent += 1
            try:
                first, complete = await stream_once(session, args.url, headers, body)
            except (aiohttp.ClientError, asyncio.TimeoutError):
                first, complete = None, False
            if first is None or not complete:
                errors += 1
            else:
                times.append(first * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    elapsed = time.perf_counter() - started
    return {"requests": sent, "errors": errors, "seconds": round(elapsed, 3),
            "rps": round(len(times) / elapsed, 1),
            "ttfb_p50_ms": percentile(times, 0.5), "ttfb_p99_ms": percentile(times, 0.99)}


async def latency(args, headers) -> dict:
    """Non-streaming calls one after another on one kept-alive connection, for at most
    args.seconds and args.requests: each call's time from the first byte written to the last
    byte of the answer read. Plain asyncio streams rather than aiohttp, whose own cost per call
    (about 0.2 ms here) would sit in both columns. wrk is not used for this: at concurrency 1
    its p99 came out 1.7 to 2.5 times the p99 of the gaps between the answers Teamgate sent in
    the same window (bench/clients.py, PROFILE.md section 8)."""
    parts = urlsplit(args.url)
    body = chat_body(args.model, False)
    head = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}",
            f"Content-Length: {len(body)}"] + [f"{k}: {v}" for k, v in headers.items()]
    request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
    times, errors = [], 0
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    deadline = time.perf_counter() + args.seconds
    started = time.perf_counter()
    try:
        while len(times) + errors < args.requests and time.perf_counter() < deadline:
            sent = time.perf_counter()
            writer.write(request)
            status_and_headers = await reader.readuntil(b"\r\n\r\n")
            lines = status_and_headers.split(b"\r\n")
            length = next((int(line.split(b":", 1)[1]) for line in lines
                           if line.lower().startswith(b"content-length:")), None)
            if length is None:  # every target answers these calls with a length
                raise RuntimeError(f"no Content-Length in {lines[0]!r}")
            await reader.readexactly(length)
            if lines[0].split(b" ")[1] == b"200":
                times.append((time.perf_counter() - sent) * 1000)
            else:
                errors += 1
    finally:
        writer.close()
    elapsed = time.perf_counter() - started
    return {"requests": len(times) + errors, "errors": errors, "seconds": round(elapsed, 3),
            "rps": round(len(times) / elapsed, 1), "p50_ms": percentile(times, 0.5),
            "p99_ms": percentile(times, 0.99), "max_ms": max(times, default=None)}


async def burst(args, session, headers):
    """Exactly args.requests non-streaming calls at args.concurrency; counts the answers."""
    body = chat_body(args.model, False)
    sent = ok = 0

    async def worker():
        nonlocal sent, ok
        while sent < args.requests:
            sent += 1
            try:
                async with session.post(args.url, data=body, headers=headers) as response:
                    await response.read()
                    ok += response.status == 200
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass

    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    return {"requests": sent, "ok": ok, "errors": sent - ok}


async def probe(session, url, headers=None, body=None) -> float | None:
    started = time.perf_counter()
    try:
        if body is None:
            async with session.get(url, headers=headers, allow_redirects=False) as response:
                await response.read()
                ok = response.status == 200
        else:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                ok = response.status == 200
    except (aiohttp.ClientError, asyncio.TimeoutError):
        ok = False
    return (time.perf_counter() - started) * 1000 if ok else None


async def slow_streams(args, session, headers):
    """args.concurrency slow streams at once; meanwhile probe the health route, another
    team's non-streaming call and (when given) a logged-in dashboard page every 200 ms.
    Returns completion counts and probe latencies."""
    body = chat_body(args.model, True)
    done = asyncio.Event()
    probes = {"health": [], "other_team": [], "dashboard": [], "failed": 0}

    async def prober():
        other = {"Authorization": f"Bearer {args.other_key}", "Content-Type": "application/json"}
        other_body = chat_body(args.other_model, False)
        await asyncio.sleep(1.0)  # let every stream get going first
        while not done.is_set():
            round_ = [("health", probe(session, args.health_url)),
                      ("other_team", probe(session, args.url, other, other_body))]
            if args.dashboard_url:
                round_.append(("dashboard", probe(session, args.dashboard_url,
                                                  {"Cookie": args.dashboard_cookie})))
            for name, coro in round_:
                latency = await coro
                if latency is None:
                    probes["failed"] += 1
                else:
                    probes[name].append(latency)
            await asyncio.sleep(0.2)

    async def one():
        try:
            return await stream_once(session, args.url, headers, body)
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return None, False

    started = time.perf_counter()
    probing = asyncio.ensure_future(prober())
    tasks = [asyncio.ensure_future(one()) for _ in range(args.concurrency)]
    finished, pending = await asyncio.wait(tasks, timeout=args.seconds)
    for task in pending:  # still streaming at the deadline: counted as not complete
        task.cancel()
    done.set()
    await probing
    complete = sum(1 for task in finished if task.result()[1])
    return {"streams": args.concurrency, "complete": complete, "unfinished": len(pending),
            "errors": args.concurrency - complete,
            "seconds": round(time.perf_counter() - started, 2),
            "probe_failed": probes["failed"],
            "health_max_ms": max(probes["health"], default=None),
            "health_p50_ms": percentile(probes["health"], 0.5),
            "other_team_max_ms": max(probes["other_team"], default=None),
            "other_team_p50_ms": percentile(probes["other_team"], 0.5),
            "dashboard_max_ms": max(probes["dashboard"], default=None),
            "dashboard_p50_ms": percentile(probes["dashboard"], 0.5),
            "probes": sum(len(probes[name]) for name in ("health", "other_team", "dashboard"))}


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["latency", "ttfb", "slow", "burst"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", default="")
    parser.add_argument("--model", required=True)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--health-url", default="")
    parser.add_argument("--other-key", default="")
    parser.add_argument("--other-model", default="")
    parser.add_argument("--dashboard-url", default="")
    parser.add_argument("--dashboard-cookie", default="")
    parser.add_argument("--api", choices=["chat", "messages"], default="chat")
    args = parser.parse_args()
    global API
    API = args.api
    headers = {"Content-Type": "application/json"}
    if args.key:
        headers["Authorization"] = f"Bearer {args.key}"
    if args.mode == "latency":
        print(json.dumps(await latency(args, headers)))
        return
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=args.seconds + 5)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        if args.mode == "ttfb":
            result = await ttfb(args, session, headers)
        elif args.mode == "burst":
            result = await burst(args, session, headers)
        else:
            result = await slow_streams(args, session, headers)
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
