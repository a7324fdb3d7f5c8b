"""Liveness and readiness probes."""
from flask import jsonify
from sqlalchemy import text

from webapp.api import bp
from webapp.auth.access import PUBLIC, declare
from webapp.errors import APIError
from webapp.extensions import db


@bp.get("/health/liveliness")
@bp.get("/health/liveness")
@declare(PUBLIC)
def liveliness():
    return jsonify({"status": "healthy"})


@bp.get("/health/readiness")
@declare(PUBLIC)
def readiness():
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:  # any driver failure means not ready; the probe must answer
        raise APIError(503, "Database unreachable.", headers={"Retry-After": "1"}) from exc
    return jsonify({"status": "healthy", "db": "connected"})
