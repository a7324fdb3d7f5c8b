"""Several Teamgate instances on one database: a change made through one is seen by the others
within 2 s (each process compares the database's change counter every CACHE_CHECK_INTERVAL)."""
import time

import pytest
import requests

from tests.conftest import ADMIN, LiveServer, bearer

PROPAGATION = 2.0  # seconds: the documented bound for every instance to see a change


def chat(server, key, model="my-team-model"):
    return requests.post(server.url + "/v1/chat/completions", headers=bearer(key), timeout=5,
                         json={"model": model, "messages": [{"role": "user", "content": "hi"}]})


def seconds_until(condition) -> float:
    """How long until condition() holds, failing once PROPAGATION has passed."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < PROPAGATION, "not seen within 2 s"
        time.sleep(0.05)
    return time.monotonic() - started


@pytest.fixture
def instances(app, make_app):
    """Instance 1 is the `app` fixture's server; instance 2 another app on the same database,
    with the production check interval."""
    first = LiveServer(app)
    second = LiveServer(make_app(CACHE_CHECK_INTERVAL=0.5))
    yield first, second
    first.stop()
    second.stop()


def test_a_model_added_through_one_instance_is_callable_through_another(instances, upstream,
                                                                         seed):
    first, second = instances
    team_id = seed.team()
    key = seed.key(team_id)
    assert chat(second, key).status_code == 400  # instance 2 now remembers "no such model"

    seed.model(key, team_id, upstream.url)

    seconds_until(lambda: chat(second, key).status_code == 200)
    assert "/chat/completions" in upstream.received[-1].path


def test_a_deleted_key_stops_working_on_every_instance(instances, upstream, seed):
    first, second = instances
    _, key = seed.team_with_model(upstream.url)
    assert chat(first, key).status_code == 200
    assert chat(second, key).status_code == 200  # both instances have the key cached

    response = requests.post(first.url + "/key/delete", json={"keys": [key]},
                             headers=bearer(key), timeout=5)
    assert response.status_code == 200

    seconds_until(lambda: chat(second, key).status_code == 401)
    assert chat(first, key).status_code == 401


def test_a_blocked_key_stops_working_on_every_instance(instances, upstream, seed):
    first, second = instances
    _, key = seed.team_with_model(upstream.url)
    assert chat(second, key).status_code == 200

    response = requests.post(first.url + "/key/update", json={"key": key, "blocked": True},
                             headers=ADMIN, timeout=5)
    assert response.status_code == 200

    seconds_until(lambda: chat(second, key).status_code == 401)


def test_a_deleted_model_stops_working_on_every_instance(instances, upstream, seed):
    first, second = instances
    team_id = seed.team()
    key = seed.key(team_id)
    model = seed.model(key, team_id, upstream.url)
    assert chat(second, key).status_code == 200
    model_id = model.get("model_id") or model["model_info"]["id"]

    response = requests.post(first.url + "/model/delete", json={"id": model_id},
                             headers=bearer(key), timeout=5)
    assert response.status_code == 200, response.text

    seconds_until(lambda: chat(second, key).status_code == 400)
    assert chat(first, key).status_code == 400
