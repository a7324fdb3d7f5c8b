"""What counting one call in /metrics costs on the call path (Metrics.observe, label children
cached), in one process's registry and in gunicorn's multiprocess mode (files in
PROMETHEUS_MULTIPROC_DIR). Run with Teamgate's python: `python bench/metrics_cost.py`."""
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CALLS = 50_000
ROW = {"team_id": "team-1", "public_model": "my-team-model", "deployment_id": "dep-1",
       "status": 200, "prompt_tokens": 12, "completion_tokens": 5, "cache_read_tokens": 3,
       "cost": 0.000111, "latency_ms": 12.3, "overhead_ms": 1.1, "error_type": None}


def measure() -> float:
    sys.path.insert(0, str(ROOT))
    from webapp.services.metrics import Metrics
    metrics = Metrics()
    for _ in range(1000):  # the children are made on the first call
        metrics.observe(ROW)
    started = time.perf_counter()
    for _ in range(CALLS):
        metrics.observe(ROW)
    return (time.perf_counter() - started) / CALLS * 1e6


def main():
    if len(sys.argv) > 1:
        print(f"{measure():.1f}")
        return
    for mode in ("single process", "multiprocess"):
        env = dict(os.environ)
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        with tempfile.TemporaryDirectory() as directory:
            if mode == "multiprocess":
                env["PROMETHEUS_MULTIPROC_DIR"] = directory
            runs = [float(subprocess.run([sys.executable, __file__, "measure"], env=env,
                                         check=True, capture_output=True, text=True).stdout)
                    for _ in range(3)]
        print(f"{mode}: {sorted(runs)[1]:.1f} µs per call (median of 3: "
              f"{', '.join(f'{r:.1f}' for r in runs)})")


if __name__ == "__main__":
    main()
