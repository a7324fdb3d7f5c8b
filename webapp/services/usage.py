"""What the request log says about a team: requests, errors, tokens, money and latency over a
period, per model and per key (calls of unpriced models counted apart, never as $0), its rows
as CSV, and the last call of a deployment. The dashboard draws it; the JSON API can
serve the same numbers."""
import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import RequestLogEntry
from webapp.models.base import utcnow

# period name -> (span, width of one bucket)
PERIODS = {"24h": (timedelta(hours=24), timedelta(hours=1)),
           "7d": (timedelta(days=7), timedelta(days=1))}
DEFAULT_PERIOD = "24h"


@dataclass
class TeamUsage:
    period: str
    series: list[dict]  # requests and errors per bucket, oldest first
    per_model: list[dict]
    per_key: list[dict]

    @property
    def peak(self) -> int:
        return max([b["requests"] for b in self.series] + [1])


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
                    "cost": sum(r.cost for r in items if r.cost is not None),
                    "unpriced": sum(1 for r in items if r.cost is None),
                    "p50": round(percentile(latencies, 0.5)),
                    "p95": round(percentile(latencies, 0.95))})
    return out


def buckets(rows, since: datetime, step: timedelta, now: datetime) -> list[dict]:
    """Requests and errors per time bucket, oldest first."""
    count = int((now - since) / step)
    out = [{"start": since + step * i, "requests": 0, "errors": 0} for i in range(count)]
    for row in rows:
        index = min(count - 1, int((row.created_at - since) / step))
        out[index]["requests"] += 1
        out[index]["errors"] += row.status >= 400
    return out


def _rows(team_id: str, period: str) -> tuple[str, datetime, datetime, list]:
    if period not in PERIODS:
        period = DEFAULT_PERIOD
    now = utcnow()
    since = now - PERIODS[period][0]
    rows = list(db.session.scalars(select(RequestLogEntry).where(
        RequestLogEntry.team_id == team_id, RequestLogEntry.created_at >= since)
        .order_by(RequestLogEntry.id)))
    return period, since, now, rows


def for_team(team_id: str, period: str) -> TeamUsage:
    """A team's usage over a named period (an unknown name means the default one)."""
    period, since, now, rows = _rows(team_id, period)
    step = PERIODS[period][1]
    return TeamUsage(
        period=period, series=buckets(rows, since, step, now),
        per_model=summarise(rows, lambda r: r.public_model or "(none)"),
        per_key=summarise(rows, lambda r: r.key_name or "dashboard playground"))


CSV_COLUMNS = ("request_id", "time", "key", "model", "status", "prompt_tokens",
               "completion_tokens", "cache_read_tokens", "cache_creation_tokens", "cost_usd")


def csv_for_team(team_id: str, period: str) -> str:
    """The team's calls of the period, one line each; an unpriced call's cost reads
    "unpriced". Cells a spreadsheet would run as a formula are quoted with a leading '."""
    _, _, _, rows = _rows(team_id, period)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow([_cell(v) for v in (
            r.request_id, r.created_at.isoformat() + "Z", r.key_name or "dashboard playground",
            r.public_model or "", r.status, r.prompt_tokens, r.completion_tokens,
            r.cache_read_tokens, r.cache_creation_tokens,
            "unpriced" if r.cost is None else f"{r.cost:.8f}")])
    return out.getvalue()


def _cell(value):
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def last_failure(deployment_id: str) -> RequestLogEntry | None:
    """The deployment's last call, if it failed."""
    last = db.session.scalar(select(RequestLogEntry).where(
        RequestLogEntry.deployment_id == deployment_id).order_by(RequestLogEntry.id.desc())
        .limit(1))
    return last if last is not None and last.status >= 400 else None
