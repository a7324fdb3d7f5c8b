"""The Responses API passthrough beside chat completions, in one run: the fake upstream directly
and Teamgate (as `make run` serves it, bench/targets.py), one kept-alive connection each (c=1),
the calls of every kind taking turns so that they share the machine's moments. Kinds: chat, a
Responses call (Teamgate keeps which deployment made it: remembered in the process, its row
written by a background batch), the same
with store=false (nothing kept, as the Codex CLI sends it), and each streamed (time to the last
byte). Overhead = Teamgate's p50 minus the upstream's own p50 for the same kind; the ratio is
the Responses kind's overhead over chat's. Prints a table and writes it into RESULTS.md under
"Responses API" (report.py keeps that section when `make bench` rewrites the file).

Run with the tools environment (`make bench` makes it): `cd bench && TEAMGATE_PYTHON=../.venv/bin/python
.venv-tools/bin/python responses.py
[--rounds 3] [--calls 600] [--redis-url redis://127.0.0.1:6379/0]`; with --redis-url Teamgate keeps
responses (and limit counters) in that Redis, and the table goes to stdout only (RESULTS.md
holds the database's)."""
import argparse
import http.client
import json
import platform
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from report import write_section
from targets import BENCH, TEAMGATE_PYTHON, start_teamgate, start_upstream

SECTION = "## Responses API"
KINDS = {  # name -> (path under /v1, body without the model)
    "chat": ("/chat/completions", {"messages": [{"role": "user", "content": "Hello"}]}),
    "responses": ("/responses", {"input": "Hello"}),
    "responses store=false": ("/responses", {"input": "Hello", "store": False}),
    "chat streamed": ("/chat/completions", {"messages": [{"role": "user", "content": "Hello"}],
                                            "stream": True}),
    "responses streamed": ("/responses", {"input": "Hello", "stream": True}),
    "responses streamed store=false": ("/responses", {"input": "Hello", "stream": True,
                                                      "store": False}),
}


class Caller:
    """One kept-alive connection to a base URL (http://host:port/v1)."""

    def __init__(self, base: str, key: str, model: str):
        parts = urlsplit(base)
        self.prefix, self.model = parts.path.rstrip("/"), model
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        self.headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}

    def call(self, path: str, body: dict) -> float:
        data = json.dumps({"model": self.model, **body}).encode()
        started = time.perf_counter()
        self.connection.request("POST", self.prefix + path, data, self.headers)
        response = self.connection.getresponse()
        answer = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status} {answer[:200]!r}")
        return elapsed * 1000


def one_round(direct: Caller, teamgate: Caller, calls: int) -> dict:
    times = {(where, kind): [] for where in ("direct", "teamgate") for kind in KINDS}
    for _ in range(calls):
        for kind, (path, body) in KINDS.items():
            times[("direct", kind)].append(direct.call(path, body))
            times[("teamgate", kind)].append(teamgate.call(path, body))
    return {f"{where}|{kind}": statistics.median(values)
            for (where, kind), values in times.items()}


def table(medians: dict, rounds: int, calls: int) -> list[str]:
    def overhead(kind):
        return medians[f"teamgate|{kind}"] - medians[f"direct|{kind}"]

    lines = [
        SECTION, "",
        f"- Command: `cd bench && TEAMGATE_PYTHON=../.venv/bin/python .venv-tools/bin/python "
        f"responses.py --rounds {rounds} --calls {calls}`; {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"{platform.machine()}, Python {platform.python_version()}, on a shared machine.",
        "- c=1, one kept-alive connection per target; every kind takes its turn call by call. "
        "Medians of the rounds' p50s (ms). The upstream answers an OpenAI deployment's "
        "`/responses` at once; Teamgate relays it (only `model` replaced).",
        "- `responses` keeps which deployment made the response (`store` defaults to true): "
        "the process remembers it at once and a background writer upserts the rows in "
        "batches every 0.2 s, off the call path; with `store: false`, as the Codex CLI sends "
        "it, nothing is kept.", "",
        "| kind | direct p50 | Teamgate p50 | overhead p50 | overhead / chat's |",
        "|---|---|---|---|---|"]
    for kind in KINDS:
        base = "chat streamed" if "streamed" in kind else "chat"
        lines.append(f"| {kind} | {medians[f'direct|{kind}']:.2f} | "
                     f"{medians[f'teamgate|{kind}']:.2f} | {overhead(kind):.2f} | "
                     f"{overhead(kind) / overhead(base):.2f} |")
    return lines + [""]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=600)
    parser.add_argument("--redis-url", help="REDIS_URL for Teamgate (the store is Redis)")
    args = parser.parse_args()
    env = {"REDIS_URL": args.redis_url} if args.redis_url else None
    upstream = start_upstream(TEAMGATE_PYTHON, 1)
    with tempfile.TemporaryDirectory() as workdir, open(Path(workdir) / "log", "w") as log:
        teamgate = start_teamgate(Path(workdir) / "teamgate", upstream.extra["api_base"], log,
                                 env=env)
        try:
            base = teamgate.url.removesuffix("/chat/completions")
            direct = Caller(upstream.extra["api_base"], "sk-fake-upstream", "bench-fast")
            gate = Caller(base, teamgate.key, "bench-fast")
            one_round(direct, gate, 50)  # warm-up
            rounds = [one_round(direct, gate, args.calls) for _ in range(args.rounds)]
        finally:
            teamgate.stop()
            upstream.stop()
    medians = {name: statistics.median(r[name] for r in rounds) for name in rounds[0]}
    lines = table(medians, args.rounds, args.calls)
    print("\n".join(lines))
    if not args.redis_url:
        write_section(BENCH / "RESULTS.md", SECTION, "\n".join(lines))


if __name__ == "__main__":
    main()
