"""What Anthropic's Messages API costs through Teamgate, against chat completions on the same
Teamgate in the same run: c=1 latency p50 (load.py latency) and a stream's time to first byte
p50 (load.py ttfb), each as overhead over the fake upstream answered directly, and as ratios.

Measured, in every round and in turn: the upstream directly (chat and Messages), Teamgate's
/v1/chat/completions on an OpenAI deployment (the baseline), /v1/messages on an Anthropic
deployment (relayed as sent), /v1/chat/completions on that Anthropic deployment (translated
both ways) and /v1/messages on the OpenAI deployment (Claude Code on a GPT model: translated
both ways). Writes the "## Messages API" section of bench/RESULTS.md and out/messages.json.

Usage: cd bench && .venv-tools/bin/python messages.py [--rounds 5] [--requests 2000]"""
import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from report import write_section
from run import load, machine
from targets import BENCH, Target, post, start_teamgate, start_upstream

# name: (gateway or direct, path, model, api, the direct case whose time it adds to)
CASES = {
    "direct chat": ("direct", "/v1/chat/completions", "bench-fast", "chat", None),
    "direct messages": ("direct", "/v1/messages", "bench-claude", "messages", None),
    "chat, OpenAI deployment": ("teamgate", "/v1/chat/completions", "bench-fast", "chat",
                                "direct chat"),
    "messages, Anthropic deployment": ("teamgate", "/v1/messages", "bench-claude", "messages",
                                       "direct messages"),
    "chat, Anthropic deployment": ("teamgate", "/v1/chat/completions", "bench-claude", "chat",
                                   "direct messages"),
    "messages, OpenAI deployment": ("teamgate", "/v1/messages", "bench-fast", "messages",
                                    "direct chat"),
}
BASELINE = "chat, OpenAI deployment"
METRICS = (("latency", "p50_ms", "c=1 latency p50"), ("ttfb", "ttfb_p50_ms",
                                                       "stream TTFB c=1 p50"))
HEADING = "## Messages API"


def measure(case: str, bases: dict, keys: dict, groups: dict, args) -> dict:
    where, path, model, api, _ = CASES[case]
    target = Target(case, bases[where] + path, key=keys[where])
    latency = load(target, "latency", groups, model=model, api=api, requests=args.requests,
                   seconds=args.seconds)
    ttfb = load(target, "ttfb", groups, model=model, api=api, requests=args.ttfb_requests,
                seconds=args.seconds, concurrency=1)
    return {"latency": latency, "ttfb": ttfb}


def medians(runs: list[dict]) -> dict:
    out = {}
    for case in CASES:
        for mode, field, _ in METRICS:
            values = [r[case][mode].get(field) for r in runs if r[case][mode].get(field)]
            errors = sum(r[case][mode].get("errors", 0) for r in runs)
            out[case, mode] = (statistics.median(values) if values else None, errors)
    return out


def overheads(found: dict) -> dict:
    out = {}
    for case, (*_, direct) in CASES.items():
        if direct is None:
            continue
        for mode, _, _ in METRICS:
            mine, base = found[case, mode][0], found[direct, mode][0]
            out[case, mode] = None if mine is None or base is None else mine - base
    return out


def section(found: dict, runs: list[dict], meta: dict) -> str:
    over = overheads(found)
    lines = [HEADING, "",
             f"- Command: `cd bench && .venv-tools/bin/python messages.py` ({meta['args']}); "
             f"{meta['date']}; {meta['machine']}; load average {meta['load']} at the start "
             "(the machine was shared with other work).",
             f"- Medians of {meta['args']['rounds']} rounds after a warm-up, each running every "
             "case in turn (the order rotated from round to round) on one Teamgate (gunicorn "
             "with gunicorn.conf.py, SQLite, request log on) and one fake upstream that answers "
             "chat completions and Anthropic's Messages API at once (`upstream.py`). Overhead is "
             "Teamgate's time minus the same call answered by the upstream directly (Messages "
             "for both Anthropic cases). The ratio is a case's overhead over the baseline's "
             f"({BASELINE}) in the same round, the median of the rounds' ratios.", "",
             "| case | c=1 latency p50 (ms) | overhead (ms) | overhead / baseline | "
             "stream TTFB p50 (ms) | overhead (ms) | overhead / baseline | errors |",
             "|---|---|---|---|---|---|---|---|"]
    for case in CASES:
        cells = [case]
        for mode, _, _ in METRICS:
            cells.append(_ms(found[case, mode][0]))
            cells.append(_ms(over.get((case, mode))) if (case, mode) in over else "–")
            ratios = round_ratios(runs, case, mode)
            cells.append(f"{statistics.median(ratios):.2f}" if ratios else "–")
        cells.append(str(sum(found[case, mode][1] for mode, _, _ in METRICS)))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for case in ("messages, Anthropic deployment", "chat, Anthropic deployment",
                 "messages, OpenAI deployment"):
        for mode, _, label in METRICS:
            listed = ", ".join(f"{r:.2f}" for r in round_ratios(runs, case, mode))
            lines.append(f"- {case}, {label}, overhead / baseline per round: {listed}")
    return "\n".join(lines) + "\n"


def _ms(value) -> str:
    return "–" if value is None else f"{value:.2f}"


def round_ratios(runs: list[dict], case: str, mode: str) -> list[float]:
    """The case's overhead over the baseline's, round by round (paired: same minutes)."""
    direct = CASES[case][4]
    if direct is None:
        return []
    field = dict((m, f) for m, f, _ in METRICS)[mode]
    ratios = []
    for run in runs:
        def value(name):
            return run[name][mode].get(field)
        parts = (value(case), value(direct), value(BASELINE), value("direct chat"))
        if None in parts:
            continue
        base = parts[2] - parts[3]
        if base > 0:
            ratios.append((parts[0] - parts[1]) / base)
    return ratios


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--ttfb-requests", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()
    meta = {"args": vars(args), "machine": machine(), "python": platform.python_version(),
            "load": ", ".join(f"{n:.1f}" for n in os.getloadavg())}
    workdir = Path(tempfile.mkdtemp(prefix="teamgate-bench-messages-"))
    log = open(workdir / "servers.log", "w")
    upstream = start_upstream(sys.executable, 1)
    teamgate = None
    try:
        direct_base = upstream.url.removesuffix("/v1/chat/completions")
        teamgate = start_teamgate(workdir / "teamgate", upstream.extra["api_base"], log)
        base = teamgate.url.removesuffix("/v1/chat/completions")
        register_anthropic(base, teamgate.key, teamgate.extra["team_ids"][0], direct_base)
        bases = {"direct": direct_base, "teamgate": base}
        keys = {"direct": "", "teamgate": teamgate.key}
        groups = {"gateway": teamgate.tree, "upstream": upstream.tree}
        warm = argparse.Namespace(**{**vars(args), "requests": 200, "ttfb_requests": 50})
        for case in CASES:  # first calls load caches and open pools: not measured
            measure(case, bases, keys, groups, warm)
        runs = []
        names = list(CASES)
        for number in range(args.rounds):
            order = names[number % len(names):] + names[:number % len(names)]
            run = {case: measure(case, bases, keys, groups, args) for case in order}
            runs.append(run)
            print(f"round {number + 1}: " + ", ".join(
                f"{case} {run[case]['latency'].get('p50_ms')}" for case in CASES), flush=True)
    finally:
        for target in (teamgate, upstream):
            if target is not None:
                target.stop()
    found = medians(runs)
    meta["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    text = section(found, runs, meta)
    print(text)
    write_section(BENCH / "RESULTS.md", HEADING, text)
    (BENCH / "out").mkdir(exist_ok=True)
    (BENCH / "out" / "messages.json").write_text(json.dumps(
        {"meta": meta, "runs": runs}, indent=2, default=str))


def register_anthropic(base: str, key: str, team_id: str, api_base: str):
    """The measured team's Anthropic deployment, on the same fake upstream."""
    post(base + "/model/new", {
        "model_name": "bench-claude",
        "litellm_params": {"model": "anthropic/bench-claude", "api_base": api_base,
                           "api_key": "sk-ant-fake-upstream"},
        "model_info": {"team_id": team_id}}, key)


if __name__ == "__main__":
    main()
