"""Concurrent writers on a live Teamgate: 8 threads register models while 8 send chat calls. No
caller sees a 5xx ('database is locked' included) and no deployment or request-log row is lost."""
import threading
import time

import requests
from sqlalchemy import func, select

from tests.conftest import bearer
from webapp.extensions import db
from webapp.models import Deployment, RequestLogEntry

DURATION = 20.0
THREADS = 8


def test_concurrent_registrations_and_calls_lose_nothing(app, live, seed, upstream):
    team_id = seed.team()
    key = seed.key(team_id)
    seed.model(key, team_id, upstream.url, name="busy")
    stop = time.monotonic() + DURATION
    lock = threading.Lock()
    outcome = {"registered": 0, "called": 0, "failures": []}

    def register(worker):
        session, n = requests.Session(), 0
        while time.monotonic() < stop:
            n += 1
            response = session.post(live.url + "/model/new", headers=bearer(key), timeout=30,
                                    json={"model_name": f"m-{worker}-{n}",
                                          "model_info": {"team_id": team_id},
                                          "litellm_params": {"model": "openai/gpt-4o",
                                                             "api_base": upstream.url,
                                                             "api_key": "sk-provider-x-12345678"}})
            with lock:
                if response.status_code == 200:
                    outcome["registered"] += 1
                else:
                    outcome["failures"].append(("register", response.status_code,
                                                response.text[:200]))

    def call(_worker):
        session = requests.Session()
        while time.monotonic() < stop:
            response = session.post(live.url + "/v1/chat/completions", headers=bearer(key),
                                    timeout=30, json={"model": "busy", "messages": [
                                        {"role": "user", "content": "hi"}]})
            with lock:
                if response.status_code == 200:
                    outcome["called"] += 1
                else:
                    outcome["failures"].append(("call", response.status_code,
                                                response.text[:200]))

    threads = [threading.Thread(target=register, args=(i,)) for i in range(THREADS)]
    threads += [threading.Thread(target=call, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcome["failures"] == []
    assert outcome["registered"] > THREADS and outcome["called"] > THREADS
    app.extensions["teamgate.request_log"].flush()
    with app.app_context():
        deployments = db.session.scalar(select(func.count()).select_from(Deployment))
        logged = db.session.scalar(select(func.count()).select_from(RequestLogEntry)
                                   .where(RequestLogEntry.status == 200))
    assert deployments == outcome["registered"] + 1
    assert logged == outcome["called"]
