"""What Teamgate's workers do while 500 slow streams start and while they end: py-spy records
every worker for one window at the start and one at the end of the streams (the moments the
probes in RESULTS.md see the longest waits), then prints the largest shares of each window.

Usage (from bench/): .venv-tools/bin/python slowspy.py [STREAMS]"""
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from profile import top
from targets import BENCH, start_teamgate, start_upstream

SPY = str(BENCH / ".venv-tools" / "bin" / "py-spy")


def record(workers, name: str, seconds: float) -> list[Path]:
    out = BENCH / "out"
    spies = [(subprocess.Popen(
        [SPY, "record", "--format", "raw", "--nonblocking", "--duration", str(seconds),
         "--rate", "500", "--output", str(out / f"slow-{name}-{w.pid}.txt"), "--pid", str(w.pid)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), out / f"slow-{name}-{w.pid}.txt")
        for w in workers]
    return spies


def main():
    streams = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    (BENCH / "out").mkdir(exist_ok=True)
    log = open(BENCH / "out" / "slowspy-servers.log", "w")
    upstream = start_upstream(sys.executable, 1)
    teamgate = start_teamgate(Path(tempfile.mkdtemp()), upstream.extra["api_base"], log)
    try:
        workers = teamgate.tree()[1:]
        start = record(workers, "start", 1)
        load = subprocess.Popen(
            [sys.executable, str(BENCH / "load.py"), "slow", "--url", teamgate.url, "--key",
             teamgate.key, "--model", teamgate.slow_model, "--concurrency", str(streams),
             "--seconds", "60", "--health-url", teamgate.health_url, "--other-key",
             teamgate.other_key, "--other-model", teamgate.other_model, "--dashboard-url",
             teamgate.dashboard_url, "--dashboard-cookie", teamgate.dashboard_cookie],
            stdout=subprocess.PIPE, text=True)
        time.sleep(4.6)
        end = record(workers, "end", 1.5)
        print(load.communicate(timeout=90)[0].strip().splitlines()[-1])
        for spy, _ in start + end:
            spy.wait(30)
    finally:
        teamgate.stop()
        upstream.stop()
    for name, spies in (("start", start), ("end", end)):
        print(f"=== {name} of the streams")
        files = [path for _, path in spies if path.exists()]
        if files:
            top(files, limit=30)
        else:  # py-spy writes nothing when no thread ran in the window
            print("no samples: the workers were idle")


if __name__ == "__main__":
    main()
