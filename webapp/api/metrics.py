"""/metrics for Prometheus, for the proxy admin's key only (the series name every team and its
models): a scrape sends `Authorization: Bearer <master key>` (docs/spend.md, Metrics)."""
from flask import Response

from webapp.api import bp
from webapp.auth.access import ADMIN, declare
from webapp.services import metrics


@bp.get("/metrics")
@declare(ADMIN)
def prometheus_metrics():
    return Response(metrics.exposition(), content_type=metrics.CONTENT_TYPE)


prometheus_metrics.media_type = "text/plain"  # for /openapi.json
