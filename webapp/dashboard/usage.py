"""Usage of a team: requests, errors, tokens and latency per model and per key, from the request
log, drawn as server-rendered SVG (no script, nothing fetched from elsewhere)."""
from datetime import timedelta

from flask import g, render_template, request
from sqlalchemy import select

from webapp.dashboard import bp
from webapp.dashboard.access import TEAM_MEMBER, access
from webapp.extensions import db
from webapp.models import RequestLogEntry
from webapp.models.base import utcnow

PERIODS = {"24h": (timedelta(hours=24), timedelta(hours=1)),
           "7d": (timedelta(days=7), timedelta(days=1))}


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def summarise(rows, label) -> list[dict]:
    groups: dict[str, list] = {}
    for row in rows:
        groups.setdefault(label(row), []).append(row)
    out = []
    for name, items in sorted(groups.items()):
        latencies = [r.latency_ms for r in items]
        out.append({"name": name, "requests": len(items),
                    "errors": sum(1 for r in items if r.status >= 400),
                    "tokens": sum((r.prompt_tokens or 0) + (r.completion_tokens or 0)
                                  for r in items),
                    "p50": round(percentile(latencies, 0.5)),
                    "p95": round(percentile(latencies, 0.95))})
    return out


def buckets(rows, since, step, now) -> list[dict]:
    """Requests and errors per time bucket, oldest first."""
    count = int((now - since) / step)
    out = [{"start": since + step * i, "requests": 0, "errors": 0} for i in range(count)]
    for row in rows:
        index = min(count - 1, int((row.created_at - since) / step))
        out[index]["requests"] += 1
        out[index]["errors"] += row.status >= 400
    return out


@bp.get("/teams/<team_id>/usage")
@access(TEAM_MEMBER)
def usage(team_id):
    period = request.args.get("period", "24h")
    span, step = PERIODS.get(period, PERIODS["24h"])
    now = utcnow()
    since = now - span
    rows = list(db.session.scalars(select(RequestLogEntry).where(
        RequestLogEntry.team_id == team_id, RequestLogEntry.created_at >= since)))
    series = buckets(rows, since, step, now)
    return render_template(
        "dashboard/usage/index.html", team=g.team, period=period, periods=list(PERIODS),
        series=series, peak=max([b["requests"] for b in series] + [1]),
        per_model=summarise(rows, lambda r: r.public_model or "(none)"),
        per_key=summarise(rows, lambda r: r.key_name or "dashboard playground"))
