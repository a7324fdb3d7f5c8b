"""One Teamgate call's CPU, in process: the Flask test client calls /v1/chat/completions on an
app seeded like the benchmark's (team, key, team model, request log on) in front of the real fake
upstream on loopback; prints time per call and, with --profile, cProfile's largest entries.
With --stream the calls stream (the fake upstream's 5 chunks and [DONE]), read to their end.

Run with Teamgate's python from the repository root:
.venv/bin/python bench/inprocess.py [--calls 2000] [--stream] [--profile]"""
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
# the repository root, not bench/ (whose profile.py would hide the standard library's)
sys.path[0] = str(BENCH.parent)

import argparse  # noqa: E402
import cProfile  # noqa: E402
import os  # noqa: E402
import pstats  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from flask_migrate import upgrade  # noqa: E402

from webapp import create_app  # noqa: E402
from webapp.crypto import new_encryption_key  # noqa: E402

MASTER = {"Authorization": "Bearer sk-inprocess-master-0123456789"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seeded_client(api_base: str):
    workdir = tempfile.mkdtemp(prefix="teamgate-inprocess-")
    os.environ["TEAMGATE_INSTANCE_PATH"] = workdir
    app = create_app({
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir}/teamgate.db",
        "TEAMGATE_MASTER_KEY": MASTER["Authorization"][7:], "SECRET_KEY": "inprocess",
        "TEAMGATE_ENCRYPTION_KEY": new_encryption_key(),
        "TEAMGATE_UPSTREAM_ALLOW": "127.0.0.1/32"})
    with app.app_context():
        upgrade()
    client = app.test_client()
    team_id = client.post("/team/new", json={"team_alias": "a"}, headers=MASTER).json["team_id"]
    key = client.post("/key/generate", json={"team_id": team_id}, headers=MASTER).json["key"]
    client.post("/model/new", headers=MASTER, json={
        "model_name": "bench-fast", "model_info": {"team_id": team_id},
        "litellm_params": {"model": "openai/bench-fast", "api_base": api_base,
                           "api_key": "sk-fake-upstream"}})
    return app, client, {"Authorization": f"Bearer {key}"}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--callees", nargs="*", help="also print what these functions call")
    args = parser.parse_args()
    port = free_port()
    upstream = subprocess.Popen([sys.executable, str(BENCH / "upstream.py"), str(port)])
    try:
        time.sleep(0.7)
        app, client, headers = seeded_client(f"http://127.0.0.1:{port}/v1")
        body = {"model": "bench-fast", "messages": [{"role": "user", "content": "Say hello."}],
                **({"stream": True} if args.stream else {})}

        def calls(n):
            for _ in range(n):
                response = client.post("/v1/chat/completions", json=body, headers=headers)
                assert response.status_code == 200, response.data
                assert not args.stream or response.data.endswith(b"data: [DONE]\n\n")

        calls(200)  # warm the caches and the connection pool
        cpu, wall = time.process_time(), time.perf_counter()
        calls(args.calls)
        print(f"{args.calls} calls: wall {(time.perf_counter() - wall) / args.calls * 1e6:.0f} µs, "
              f"CPU {(time.process_time() - cpu) / args.calls * 1e6:.0f} µs per call")
        if args.profile:
            profiler = cProfile.Profile()
            profiler.runcall(calls, args.calls)
            stats = pstats.Stats(profiler)
            print(f"{stats.total_calls / args.calls:.0f} function calls per call")
            stats.sort_stats("cumulative").print_stats(args.top)
            if args.callees:
                for pattern in args.callees:
                    stats.print_callees(pattern)
        app.extensions["teamgate.request_log"].stop()
    finally:
        upstream.kill()


if __name__ == "__main__":
    main()
