"""Liveness and readiness probes."""
from flask import jsonify
from sqlalchemy import text

from webapp.api import bp
from webapp.auth.access import PUBLIC, declare
from webapp.errors import APIError
from webapp.extensions import db
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
