"""Profile Teamgate's hot path: start the fake upstream and Teamgate, drive non-streaming load at
c=32 (or CONNECTIONS) with wrk, and record every gunicorn worker with py-spy (collapsed stacks in bench/out/).
Prints the functions with the largest inclusive share of samples.

Usage (from bench/): .venv-tools/bin/python profile.py [SECONDS [CONNECTIONS]]
PROFILE_LIMITS=1 puts the limited runs' budget, rpm and tpm on the caller's key (run.py --limits),
PROFILE_REDIS=redis://... counts them in that Redis instead of the embedded file."""
import collections
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from targets import BENCH, BENCH_LIMITS, start_teamgate, start_upstream


def _function(frame: str) -> str:
    """'name (path/to/file.py:12)' -> 'name (file.py)': lines of one function add up."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})"


def _package(frame: str) -> str:
    where = frame.partition(" (")[2].rsplit(":", 1)[0]
    parts = where.replace("\\", "/").split("/")
    return parts[0] if len(parts) > 1 else where


def top(files: list[Path], limit: int = 45):
    inclusive, own, packages = (collections.Counter() for _ in range(3))
    total = 0
    for path in files:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue  # a blank or cut line
            frames = [f for f in stack.split(";") if "(" in f]
            if not any("handle_request" in f for f in frames):
                continue  # the main loop and the request-log thread are not the hot path
            count = int(count)
            total += count
            for frame in {_function(f) for f in frames}:
                inclusive[frame] += count
            own[_function(frames[-1])] += count
            packages[_package(frames[-1])] += count
    print(f"{total} samples in request handling; by package of the running frame:")
    for package, count in packages.most_common(15):
        print(f"{100 * count / total:5.1f}%  {package}")
    print("by function: inclusive share (own share)")
    for frame, count in inclusive.most_common(limit):
        print(f"{100 * count / total:5.1f}% ({100 * own[frame] / total:4.1f}%)  {frame}")


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    connections = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    out = BENCH / "out"
    out.mkdir(exist_ok=True)
    log = open(out / "profile-servers.log", "w")
    upstream = start_upstream(sys.executable, 1)
    limited = os.environ.get("PROFILE_LIMITS") or os.environ.get("PROFILE_REDIS")
    env = {"REDIS_URL": os.environ["PROFILE_REDIS"]} if os.environ.get("PROFILE_REDIS") else None
    teamgate = start_teamgate(Path(tempfile.mkdtemp()), upstream.extra["api_base"], log,
                              env=env, limits=BENCH_LIMITS if limited else None)
    try:
        workers = teamgate.tree()[1:]
        spies = [subprocess.Popen(
            [str(BENCH / ".venv-tools" / "bin" / "py-spy"), "record", "--format", "raw",
             "--nonblocking", "--duration", str(seconds), "--rate", "250",
             "--output", str(out / f"profile-{w.pid}.txt"), "--pid", str(w.pid)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for w in workers]
        wrk = subprocess.run(
            ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "-s", str(BENCH / "post.lua"), teamgate.url],
            env={"BENCH_MODEL": teamgate.fast_model, "BENCH_KEY": teamgate.key},
            capture_output=True, text=True, timeout=seconds + 30)
        print(next(l for l in wrk.stdout.splitlines() if l.startswith("BENCH ")))
        for spy in spies:
            spy.wait(seconds + 30)
    finally:
        teamgate.stop()
        upstream.stop()
    top([out / f"profile-{w.pid}.txt" for w in workers])


def analyse(paths: list[str]):
    top([Path(p) for p in paths])


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "analyse":
        analyse(sys.argv[2:])
    else:
        main()
