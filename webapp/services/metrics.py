"""Prometheus metrics of the proxied calls, counted from each call's request-log row when the
call is over: requests by status, errors by type, tokens, spend, latency and Teamgate's own
overhead, per team, model and deployment.

Under gunicorn every worker writes its values to files in PROMETHEUS_MULTIPROC_DIR (made by
gunicorn.conf.py) and /metrics sums them all, so a scrape sees the whole server whichever
worker answers it; without that directory one process's own registry is shown.

Cheap on the call path: the labelled children of one (team, model, deployment) are looked up
once and kept, so a call's observation is a dictionary hit and a few increments. Label values
are bounded: the model label is the name the caller used only when it resolved to a deployment
(an unknown name would otherwise make a new series per typo); team and deployment ids come from
the database. Key tokens and names are never labels."""
import os
import threading

from flask import current_app
from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram,
                               generate_latest, multiprocess)

LABELS = ("team", "model", "deployment")
TOKEN_KINDS = (("prompt_tokens", "prompt"), ("completion_tokens", "completion"),
               ("cache_read_tokens", "cache_read"), ("cache_creation_tokens", "cache_creation"))
# a call lasts from milliseconds (embeddings) to minutes (a long stream)
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
# Teamgate's own time in a call: around a millisecond
OVERHEAD_BUCKETS = (0.0005, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)
CONTENT_TYPE = CONTENT_TYPE_LATEST


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class _Series:
    """The children of one (team, model, deployment), made once."""

    def __init__(self, metrics: "Metrics", labels: tuple):
        self.labels = labels
        self.tokens = [(field, metrics.tokens.labels(*labels, kind)) for field, kind in
                       TOKEN_KINDS]
        self.spend = metrics.spend.labels(*labels)
        self.latency = metrics.latency.labels(*labels)
        self.overhead = metrics.overhead.labels(*labels)
        self.statuses: dict = {}  # status -> requests child
        self.errors: dict = {}  # error type -> errors child


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter("teamgate_requests", "Proxied calls, by the status answered.",
                                LABELS + ("status",), registry=registry)
        self.errors = Counter("teamgate_errors", "Proxied calls that failed, by error type.",
                              LABELS + ("error_type",), registry=registry)
        self.tokens = Counter("teamgate_tokens", "Tokens the upstreams counted (prompt counts "
                              "cached tokens too, as OpenAI's usage does).", LABELS + ("kind",),
                              registry=registry)
        self.spend = Counter("teamgate_spend_usd", "What the calls cost, in USD (priced calls).",
                             LABELS, registry=registry)
        self.latency = Histogram("teamgate_request_duration_seconds", "A call from its arrival "
                                 "to its last byte.", LABELS, buckets=LATENCY_BUCKETS,
                                 registry=registry)
        self.overhead = Histogram("teamgate_overhead_seconds", "Teamgate's own time in a call: "
                                  "its duration less the upstream's until its answer began.",
                                  LABELS, buckets=OVERHEAD_BUCKETS, registry=registry)
        self._series: dict = {}
        self._lock = threading.Lock()

    def _of(self, labels: tuple) -> _Series:
        series = self._series.get(labels)
        if series is None:
            with self._lock:
                series = self._series.get(labels)
                if series is None:
                    series = self._series[labels] = _Series(self, labels)
        return series

    def observe(self, row: dict):
        """Count one call from its request-log row (as RequestLogWriter.add completed it)."""
        deployment = row.get("deployment_id") or ""
        model = (row.get("public_model") or "") if deployment else ""
        series = self._of((row.get("team_id") or "", model, deployment))
        status = row.get("status", 200)
        requests = series.statuses.get(status)
        if requests is None:
            requests = series.statuses[status] = self.requests.labels(*series.labels,
                                                                      str(status))
        requests.inc()
        error_type = row.get("error_type")
        if error_type or status >= 400:
            error_type = error_type or "error"
            errors = series.errors.get(error_type)
            if errors is None:
                errors = series.errors[error_type] = self.errors.labels(*series.labels,
                                                                        error_type)
            errors.inc()
        for field, child in series.tokens:
            value = row.get(field)
            if value:
                child.inc(value)
        if row.get("cost"):
            series.spend.inc(row["cost"])
        if row.get("latency_ms") is not None:
            series.latency.observe(row["latency_ms"] / 1000)
        if row.get("overhead_ms") is not None:
            series.overhead.observe(max(row["overhead_ms"], 0.0) / 1000)

    def exposition(self) -> bytes:
        """The text a Prometheus scrape reads: every worker's values summed under gunicorn."""
        if multiprocess_dir():
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


def observe(app, row: dict):
    """Count a finished call; a stream finishes after its request, so the app is given."""
    app.extensions["teamgate.metrics"].observe(row)


def exposition() -> bytes:
    return current_app.extensions["teamgate.metrics"].exposition()


def init_app(app):
    app.extensions["teamgate.metrics"] = Metrics()
