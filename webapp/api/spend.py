"""/spend/logs (one row per call, LiteLLM's SpendLogs shape) and /global/spend/report (spend
per day, per team or per key). The proxy admin sees every call; a team key its team's; a
personal key its own. An unpriced call has spend null and "unpriced": true, never 0."""
import re
from datetime import datetime, timedelta

from flask import g, jsonify, request
from sqlalchemy import func, select

from webapp.api import bp
from webapp.auth.access import ANY_KEY, declare
from webapp.crypto import hash_key
from webapp.errors import APIError
from webapp.extensions import db
from webapp.models import RequestLogEntry, Team, VirtualKey
from webapp.models.base import isoformat

LOG = RequestLogEntry
MAX_ROWS = 10_000
CALL_TYPES = {"/chat/completions": "acompletion", "/embeddings": "aembedding",
              "/responses": "aresponses"}


def _date(name: str, end: bool = False) -> datetime | None:
    """A query date: YYYY-MM-DD (an end date takes in its whole day) or an ISO time."""
    text = request.args.get(name)
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        raise APIError(400, f"{name} must be a date (YYYY-MM-DD) or an ISO time.",
                       param=name) from None
    if end and re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        value += timedelta(days=1)
    return value


def _scope(query):
    """The caller's rows, narrowed by the filters it sent."""
    principal, team_id = g.principal, request.args.get("team_id")
    api_key = request.args.get("api_key")
    if not principal.is_admin:
        if team_id and team_id != principal.team_id:
            raise APIError(403, "A key sees only its own team's spend.", param="team_id")
        query = (query.where(LOG.team_id == principal.team_id) if principal.team_id
                 else query.where(LOG.key_token == principal.key_token))
    if team_id:
        query = query.where(LOG.team_id == team_id)
    if api_key:
        token = api_key if re.fullmatch(r"[0-9a-f]{64}", api_key) else hash_key(api_key)
        if not principal.is_admin and token != principal.key_token:
            row = db.session.get(VirtualKey, token)
            if row is None or principal.team_id is None or row.team_id != principal.team_id:
                raise APIError(404, "Key not found.", param="api_key")  # as for no such key
        query = query.where(LOG.key_token == token)
    start, end = _date("start_date"), _date("end_date", end=True)
    if start is not None:
        query = query.where(LOG.created_at >= start)
    if end is not None:
        query = query.where(LOG.created_at < end)
    return query


def log_row(row: RequestLogEntry) -> dict:
    """One request-log row as LiteLLM's /spend/logs gives it."""
    tokens = (row.prompt_tokens or 0) + (row.completion_tokens or 0)
    started = row.created_at - timedelta(milliseconds=row.latency_ms or 0)
    return {
        "request_id": row.request_id, "call_type": CALL_TYPES.get(row.route, row.route),
        "api_key": row.key_token or "", "spend": row.cost, "unpriced": row.cost is None,
        "total_tokens": tokens, "prompt_tokens": row.prompt_tokens or 0,
        "completion_tokens": row.completion_tokens or 0,
        "cache_read_input_tokens": row.cache_read_tokens or 0,
        "cache_creation_input_tokens": row.cache_creation_tokens or 0,
        "startTime": isoformat(started), "endTime": isoformat(row.created_at),
        "model": row.public_model or "", "model_group": row.public_model or "",
        "model_id": row.deployment_id or "", "user": "", "team_id": row.team_id or "",
        "metadata": {"key_name": row.key_name, "status_code": row.status,
                     "error_type": row.error_type},
        "status": "success" if row.status < 400 else "failure", "cache_hit": "False",
        "request_tags": [], "end_user": "",
    }


@bp.get("/spend/logs")
@declare(ANY_KEY)
def spend_logs():
    request_id = request.args.get("request_id")
    query = _scope(select(LOG))
    if request_id:
        query = query.where(LOG.request_id == request_id)
    rows = db.session.scalars(query.order_by(LOG.id.desc()).limit(MAX_ROWS))
    return jsonify([log_row(r) for r in rows])


def _day(value) -> str:
    text = value if isinstance(value, str) else value.isoformat()
    return text[:10] + "T00:00:00+00:00"


@bp.get("/global/spend/report")
@declare(ANY_KEY)
def spend_report():
    group_by = request.args.get("group_by", "team")
    if group_by not in ("team", "api_key"):
        raise APIError(400, "group_by must be team or api_key.", param="group_by")
    group = LOG.team_id if group_by == "team" else LOG.key_token
    day = func.date(LOG.created_at)
    query = _scope(select(day, group, LOG.public_model, func.sum(LOG.cost),
                          func.sum(func.coalesce(LOG.prompt_tokens, 0)
                                   + func.coalesce(LOG.completion_tokens, 0)),
                          func.count(), func.count(LOG.cost))
                   ).group_by(day, group, LOG.public_model).order_by(day, group, LOG.public_model)
    days: dict = {}
    for when, subject, model, cost, tokens, calls, priced in db.session.execute(query):
        groups = days.setdefault(_day(when), {})
        entry = groups.setdefault(subject, {"spend": 0.0, "unpriced": 0, "models": []})
        entry["spend"] += cost or 0.0
        entry["unpriced"] += calls - priced
        entry["models"].append({"model": model or "", "spend": cost,
                                "total_tokens": int(tokens or 0),
                                "unpriced_requests": calls - priced})
    names = _team_names({s for groups in days.values() for s in groups}) \
        if group_by == "team" else {}
    return jsonify([{"group_by_day": when, **_grouped(group_by, groups, names)}
                    for when, groups in days.items()])


def _team_names(team_ids: set) -> dict:
    ids = {t for t in team_ids if t}
    rows = db.session.execute(select(Team.id, Team.alias).where(Team.id.in_(ids))) if ids else []
    return {team_id: alias or team_id for team_id, alias in rows}


def _grouped(group_by: str, groups: dict, names: dict) -> dict:
    if group_by == "team":
        return {"teams": [{"team_name": names.get(s, s) or "(no team)", "team_id": s,
                           "total_spend": e["spend"], "unpriced_requests": e["unpriced"],
                           "metadata": e["models"]} for s, e in groups.items()]}
    return {"api_keys": [{"api_key": s or "", "total_cost": e["spend"],
                          "unpriced_requests": e["unpriced"],
                          "model_details": [{"model": m["model"], "total_cost": m["spend"],
                                             "total_tokens": m["total_tokens"]}
                                            for m in e["models"]]}
                         for s, e in groups.items()]}
