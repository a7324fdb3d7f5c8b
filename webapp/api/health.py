"""Liveness and readiness probes."""
from flask import jsonify
from sqlalchemy import func, select, text

from webapp.api import bp
from webapp.auth.access import ADMIN, PUBLIC, declare
from webapp.errors import APIError
from webapp.extensions import db
from webapp.models import Deployment, RequestLogEntry
from webapp.models.base import isoformat
from webapp.services.request_log import writer


@bp.get("/health/liveliness")
@bp.get("/health/liveness")
@declare(PUBLIC)
def liveliness():
    return jsonify({"status": "healthy"})


@bp.get("/health/readiness")
@declare(PUBLIC)
def readiness():
    """Ready while the database answers and the request log can keep its rows; the rows that
    wait for the database (in this worker) are reported either way."""
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:  # any driver failure means not ready; the probe must answer
        raise APIError(503, "Database unreachable.", headers={"Retry-After": "1"}) from exc
    backlog = writer().backlog()
    if backlog.problem:
        raise APIError(503, backlog.problem, headers={"Retry-After": "5"})
    request_log = {"in_memory": backlog.in_memory, "spooled": backlog.spooled}
    if backlog.waiting_for:
        request_log["waiting_for"] = backlog.waiting_for
    return jsonify({"status": "healthy", "db": "connected", "request_log": request_log})


# a last call that failed like this says the deployment is down (not the caller's mistake)
UNHEALTHY_ERRORS = ("upstream_error", "timeout", "server_error")


@bp.get("/health")
@declare(ADMIN)
def health():
    """LiteLLM's /health from what the last call to each deployment showed; Teamgate sends no
    probe of its own (a probe costs the team's tokens). A deployment never called is unknown."""
    last = select(func.max(RequestLogEntry.id)).where(
        RequestLogEntry.deployment_id.is_not(None)).group_by(RequestLogEntry.deployment_id)
    calls = {row.deployment_id: row for row in db.session.scalars(
        select(RequestLogEntry).where(RequestLogEntry.id.in_(last)))}
    found = {"healthy": [], "unhealthy": [], "unknown": []}
    for row in db.session.scalars(select(Deployment).order_by(Deployment.created_at)):
        call = calls.get(row.id)
        endpoint = {"model": row.params.get("model"), "api_base": row.params.get("api_base"),
                    "model_id": row.id, "model_name": row.public_name, "team_id": row.team_id,
                    "last_call_at": isoformat(call.created_at) if call else None,
                    "last_status": call.status if call else None}
        if call is None:
            found["unknown"].append(endpoint)
        elif call.status >= 500 or call.error_type in UNHEALTHY_ERRORS:
            found["unhealthy"].append({**endpoint, "error": call.error_type})
        else:
            found["healthy"].append(endpoint)
    return jsonify({f"{state}_endpoints": rows for state, rows in found.items()} |
                   {f"{state}_count": len(rows) for state, rows in found.items()})
