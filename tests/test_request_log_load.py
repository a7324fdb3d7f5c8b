"""The request log under concurrent load: exactly one row per call, none lost when the batching
writer is stopped (as gunicorn's worker_exit hook does at shutdown)."""
import runpy
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import requests
from sqlalchemy import func, select

from tests.conftest import bearer
from webapp.extensions import db
from webapp.models import RequestLogEntry

CALLS = 400
CONCURRENCY = 16
GUNICORN_CONF = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"


def rows(app) -> tuple[int, int]:
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(RequestLogEntry))
        distinct = db.session.scalar(select(func.count(RequestLogEntry.request_id.distinct())))
        return count, distinct


def test_one_row_per_call_under_concurrent_load(app, live, upstream, seed):
    team_id = seed.team()
    key = seed.key(team_id)
    seed.model(key, team_id, upstream.url)
    body = {"model": "my-team-model", "messages": [{"role": "user", "content": "hi"}]}

    def call(n):
        with requests.Session() as session:
            statuses = []
            for _ in range(n):
                response = session.post(live.url + "/v1/chat/completions", json=body,
                                        headers=bearer(key), timeout=10)
                statuses.append(response.status_code)
            return statuses

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        statuses = [s for batch in pool.map(call, [CALLS // CONCURRENCY] * CONCURRENCY)
                    for s in batch]
    assert statuses == [200] * CALLS

    app.extensions["teamgate.request_log"].stop()
    assert rows(app) == (CALLS, CALLS)


def test_worker_exit_writes_the_rows_still_queued(app):
    writer = app.extensions["teamgate.request_log"]
    for n in range(50):
        writer.add(request_id=f"queued-{n}", team_id=None, key_token=None, key_name=None,
                   route="/chat/completions", public_model="m", deployment_id=None,
                   status=200, latency_ms=1.0, overhead_ms=0.5, prompt_tokens=None,
                   completion_tokens=None, stream=False, error_type=None)

    hooks = runpy.run_path(str(GUNICORN_CONF))
    hooks["worker_exit"](None, SimpleNamespace(wsgi=app))

    assert rows(app) == (50, 50)
