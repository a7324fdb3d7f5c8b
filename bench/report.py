"""bench/RESULTS.md from the medians: one table, Teamgate/LiteLLM ratios, the acceptance checks."""
import statistics


def _f(value, digits=2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _ratio(a, b, digits=2) -> str:
    if a is None or b in (None, 0):
        return "–"
    return f"{a / b:.{digits}f}"


def _rows(r: dict) -> list[tuple]:
    names = [n for n in ("direct", "teamgate", "litellm") if n in r]
    d = r.get("direct")

    def get(name, scenario, field):
        return r[name][scenario].get(field) if name in r else None

    def overhead(name, scenario, field):
        if name == "direct" or d is None or name not in r:
            return None
        return get(name, scenario, field) - get("direct", scenario, field)

    rows = [
        ("c=1 latency p50 (ms)", "c1", "p50_ms"), ("c=1 latency p99 (ms)", "c1", "p99_ms"),
    ]
    table = []
    for label, scenario, field in rows:
        table.append((label, *[get(n, scenario, field) for n in names]))
    for label, scenario, field in rows + [("stream TTFB c=1 p50 (ms)", "ttfb1", "ttfb_p50_ms"),
                                          ("stream TTFB c=1 p99 (ms)", "ttfb1", "ttfb_p99_ms")]:
        label = "**overhead** " + label.replace(" (ms)", " (ms, gateway − direct)")
        table.append((label, *[overhead(n, scenario, field) for n in names]))
    table += [
        ("c=1 calls / errors", *[f"{get(n, 'c1', 'requests')} / {get(n, 'c1', 'errors')}"
                                 for n in names]),
        ("c=1 by wrk: latency p50 / p99 (ms)",
         *[f"{_f(get(n, 'c1wrk', 'p50_ms'))} / {_f(get(n, 'c1wrk', 'p99_ms'))}" for n in names]),
        ("c=1 by wrk: overhead p50 / p99 (ms)",
         *[f"{_f(overhead(n, 'c1wrk', 'p50_ms'))} / {_f(overhead(n, 'c1wrk', 'p99_ms'))}"
           for n in names]),
        ("c=32 throughput (req/s)", *[get(n, "c32", "rps") for n in names]),
        ("c=32 errors (incl. non-2xx)", *[get(n, "c32", "errors") for n in names]),
        ("c=32 latency p99 (ms)", *[get(n, "c32", "p99_ms") for n in names]),
        ("stream TTFB c=1 p50 (ms)", *[get(n, "ttfb1", "ttfb_p50_ms") for n in names]),
        ("stream TTFB c=32 p50 (ms)", *[get(n, "ttfb32", "ttfb_p50_ms") for n in names]),
        ("stream TTFB c=32 p99 (ms)", *[get(n, "ttfb32", "ttfb_p99_ms") for n in names]),
        ("stream TTFB c=32 errors", *[get(n, "ttfb32", "errors") for n in names]),
        ("500 slow streams: complete", *[get(n, "slow", "complete") for n in names]),
        ("… meanwhile health probe max (ms)", *[get(n, "slow", "health_max_ms") for n in names]),
        ("… meanwhile other team's call max (ms)",
         *[get(n, "slow", "other_team_max_ms") for n in names]),
        ("… meanwhile a dashboard page (logged in) max (ms)",
         *[get(n, "slow", "dashboard_max_ms") for n in names]),
        ("… failed probes", *[get(n, "slow", "probe_failed") for n in names]),
        ("RSS of the process tree, max under load (MiB)", *[_rss(r, n) for n in names]),
        ("CPU share of the fake upstream at c=32", *[get(n, "c32", "cpu_upstream") for n in names]),
        ("CPU share of wrk at c=32", *[get(n, "c32", "cpu_loadgen") for n in names]),
        ("CPU share of the gateway at c=32", *[get(n, "c32", "cpu_gateway") for n in names]),
        ("CPU share of the asyncio client, TTFB c=32",
         *[get(n, "ttfb32", "cpu_loadgen") for n in names]),
    ]
    return names, table


def _rss(r: dict, name: str) -> float:
    return max(result["rss_mb"] for result in r[name].values() if "rss_mb" in result)


def write_report(path, meta: dict, results: dict):
    names, table = _rows(results)
    has_both = "teamgate" in results and "litellm" in results
    header = ["", *names] + (["Teamgate / LiteLLM"] if has_both else [])
    lines = ["# Benchmark results", "",
             f"- Machine: {meta['machine']}",
             f"- Command: `{meta['command']}` (arguments: {meta['args']})",
             f"- Date: {meta['date']}" + (f"; load average {meta['load']}" if meta.get("load")
                                          else ""),
             f"- Medians of {meta['args']['rounds']} rounds; each round runs every scenario "
             f"against every target in turn. CPU shares are of the whole machine (1.0 = all "
             f"cores); in the direct column the gateway is the fake upstream itself. The machine's 2 "
             f"vCPUs are shared with other work, so compare within one run.",
             "- c=1 latency comes from the asyncio client (`load.py latency`, one kept-alive "
             "connection); wrk's figures at c=1 are in their own rows: their p99 exceeds the "
             "gaps between the answers Teamgate sent (`clients.py`, PROFILE.md section 8). "
             "Throughput at c=32 comes from wrk.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    ti, li = (names.index("teamgate") + 1, names.index("litellm") + 1) if has_both else (0, 0)
    for row in table:
        cells = [row[0], *[_f(v) for v in row[1:]]]
        if has_both:
            numbers = all(isinstance(v, (int, float)) for v in (row[ti], row[li]))
            skip = row[0].startswith("CPU share") or not numbers
            cells.append("" if skip else _ratio(row[ti], row[li]))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *_acceptance(results)]
    path.write_text("\n".join(lines) + "\n" + kept_sections(path))


# written by other bench tools (messages.py, responses.py, run.py --limits), kept when the table is rewritten
KEPT_HEADINGS = ("## Messages API", "## Responses API", "## Budgets and limits")


def kept_sections(path) -> str:
    """The sections of the old file that another tool wrote, kept when the table is rewritten."""
    old = path.read_text() if path.exists() else ""
    starts = [old.find("\n" + heading + "\n") for heading in KEPT_HEADINGS]
    starts = [start for start in starts if start >= 0]
    return old[min(starts):] if starts else ""


def write_section(path, heading: str, text: str):
    """One tool's section of RESULTS.md (`text`, starting with `heading`) in place of its old
    one, the other sections kept; a new section goes at the end."""
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    start = old.find("\n" + heading + "\n")
    if start >= 0:
        end = old.find("\n## ", start + 1)
        old = old[:start] + (old[end:] if end >= 0 else "")
    path.write_text(old.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n")


def _acceptance(r: dict) -> list[str]:
    if "teamgate" not in r or "direct" not in r:
        return []
    t, d, l = r["teamgate"], r["direct"], r.get("litellm")
    rss = {n: _rss(r, n) for n in r}
    checks = [
        ("overhead p50 at c=1 ≤ 1.5 ms", t["c1"]["p50_ms"] - d["c1"]["p50_ms"] <= 1.5,
         f"{t['c1']['p50_ms'] - d['c1']['p50_ms']:.2f} ms"),
        ("overhead p99 at c=1 ≤ 5 ms", t["c1"]["p99_ms"] - d["c1"]["p99_ms"] <= 5,
         f"{t['c1']['p99_ms'] - d['c1']['p99_ms']:.2f} ms"),
        ("streaming TTFB overhead p50 at c=1 ≤ 2 ms",
         t["ttfb1"]["ttfb_p50_ms"] - d["ttfb1"]["ttfb_p50_ms"] <= 2,
         f"{t['ttfb1']['ttfb_p50_ms'] - d['ttfb1']['ttfb_p50_ms']:.2f} ms"),
        ("500 slow streams complete, probes < 100 ms",
         t["slow"]["complete"] == t["slow"]["streams"] and t["slow"]["probe_failed"] == 0
         and max(t["slow"]["health_max_ms"] or 1e9, t["slow"]["other_team_max_ms"] or 1e9,
                 t["slow"].get("dashboard_max_ms") or 1e9) < 100,
         f"{t['slow']['complete']}/{t['slow']['streams']}, health max "
         f"{_f(t['slow']['health_max_ms'])} ms, other team max "
         f"{_f(t['slow']['other_team_max_ms'])} ms, dashboard page max "
         f"{_f(t['slow'].get('dashboard_max_ms'))} ms"),
    ]
    if l:
        checks += [
            ("throughput at c=32 ≥ 5 × LiteLLM, zero errors",
             t["c32"]["rps"] >= 5 * l["c32"]["rps"] and t["c32"]["errors"] == 0,
             f"{t['c32']['rps'] / l['c32']['rps']:.1f} ×, {t['c32']['errors']} errors"),
            ("memory ≤ 25 % of LiteLLM's", rss["teamgate"] <= 0.25 * rss["litellm"],
             f"{100 * rss['teamgate'] / rss['litellm']:.0f} %"),
        ]
    if "log" in t:
        checks.append(("request log rows == requests sent", t["log"]["rows"] == t["log"]["sent"],
                       f"{t['log']['rows']} rows for {t['log']['sent']} requests "
                       f"({t['log']['ok']} answered 200)"))
    return ["## Acceptance", ""] + [f"- {'met' if ok else '**not met**'}: {name} ({value})"
                                    for name, ok, value in checks]


if __name__ == "__main__":  # rewrite RESULTS.md from a run's results.json
    import json
    import sys
    from pathlib import Path

    saved = json.loads(Path(sys.argv[1]).read_text())
    write_report(Path(__file__).with_name("RESULTS.md"), saved["meta"], saved["medians"])


def write_limits_report(path, meta: dict, results: dict, runs: dict):
    """bench/LIMITS.md: Teamgate with the caller's budget, rpm and tpm limits counted (embedded
    file, Redis) beside the limits-off run of the same run: c=1 overhead p50, c=32 throughput
    against the targets (<= 1.5 ms embedded, <= 2 ms Redis; >= 80 % of limits off)."""
    direct = results.get("direct", {}).get("c1", {}).get("p50_ms")
    off = results["teamgate"]
    names = ["teamgate", *[n for n in results if n.startswith("teamgate-limits-")]]
    lines = ["# Budgets and limits on: the cost of counting", "",
             f"- Machine: {meta['machine']}", f"- Command: `{meta['command']}`",
             f"- Date: {meta['date']}" + (f"; load average {meta['load']}" if meta.get("load")
                                          else ""),
             f"- Medians of {meta['args']['rounds']} rounds; each round runs every target in "
             "turn. The limited runs put `max_budget` with `budget_duration`, `rpm_limit` and "
             "`tpm_limit` (high enough never to refuse) on the measured key and prices on its "
             "models, so every call is checked against the budget and spends on it, and is "
             "reserved and settled under the limits. Targets: c=1 overhead p50 <= 1.5 ms "
             "embedded, <= 2 ms on Redis; c=32 >= 80 % of limits off.", "",
             "| | c=1 overhead p50 (ms) | c=1 overhead p50, each round | c=32 throughput (req/s) "
             "| c=32 / limits off | c=32 errors | c=32 calls per gateway CPU second / limits off "
             "|", "|---|---|---|---|---|---|---|"]

    def per_cpu(name):  # steadier than req/s on a shared machine: how much each call costs
        shares = [run["c32"]["rps"] / run["c32"]["cpu_gateway"] for run in runs[name]
                  if run.get("c32", {}).get("cpu_gateway")]
        return statistics.median(shares) if shares else None

    for name in names:
        c1 = results[name].get("c1", {})
        overhead = None if direct is None or c1.get("p50_ms") is None else \
            c1["p50_ms"] - direct
        rounds = ", ".join(_f(run["c1"]["p50_ms"] - run_direct["c1"]["p50_ms"])
                           for run, run_direct in zip(runs[name], runs.get("direct", [])))
        rps = results[name].get("c32", {}).get("rps")
        lines.append(f"| {name} | {_f(overhead)} | {rounds} | {_f(rps)} | "
                     f"{_ratio(rps, off.get('c32', {}).get('rps'))} | "
                     f"{_f(results[name].get('c32', {}).get('errors'))} | "
                     f"{_ratio(per_cpu(name), per_cpu('teamgate'))} |")
    lines += ["", "The last column divides each round's c=32 calls per second by the share of "
              "the machine's CPU that Teamgate's processes used in it (the medians of the rounds, "
              "against limits off), so that a round in which other work on the machine took CPU "
              "from Teamgate still measures what each call costs. A Redis server's own CPU is "
              "not in it."]
    path.write_text("\n".join(lines) + "\n")
    # the same table in RESULTS.md, where the targets are kept; the reading stays in LIMITS.md
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("| |")):]
    table = table[:table.index("")]
    load = f", load average {meta['load']}" if meta.get("load") else ""
    write_section(path.with_name("RESULTS.md"), "## Budgets and limits", "\n".join([
        "## Budgets and limits", "",
        f"- Command: `{meta['command']}`; {meta['date']}{load}; {meta['machine']}.",
        f"- Medians of {meta['args']['rounds']} rounds. Targets: c=1 overhead p50 <= 1.5 ms "
        "embedded, <= 2 ms on Redis; c=32 >= 80 % of limits off. What is counted, and the "
        f"reading: [{path.name}]({path.name}).", "", *table]))
