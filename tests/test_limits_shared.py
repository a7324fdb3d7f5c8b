"""Limits and budgets hold exactly across processes: gunicorn with two gevent workers on the
embedded counter file, and two instances on one database and one Redis
(TEAMGATE_TEST_REDIS_URL). Many connections at once; every count is exact, not "about"."""
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import ADMIN, LiveServer, bearer
from tests.fake_upstream import FakeUpstream, Reply, completion
from tests.test_served import MASTER, served

REDIS_URL = os.environ.get("TEAMGATE_TEST_REDIS_URL")
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="TEAMGATE_TEST_REDIS_URL is not set "
                                                      "(.ci/run starts a redis-server)")
CONNECTIONS = 24
IN, OUT = 0.001, 0.002  # USD a token; a call of "hi" with max_tokens 5 is held at 4 + 5 tokens
CALL_COST = 4 * IN + 5 * OUT  # 0.014, and the upstream reports exactly those tokens


def same_minute(seconds: float):
    """Wait for the next minute when fewer than `seconds` are left in this one: a count that
    straddles two minutes would start again halfway."""
    left = 60 - time.time() % 60
    if left < seconds:
        time.sleep(left + 0.05)


def call(base: str, key: str, **extra) -> int:
    return requests.post(base + "/v1/chat/completions", headers=bearer(key), timeout=15, json={
        "model": "limited-model", "messages": [{"role": "user", "content": "hi"}],
        **extra}).status_code


def burst(bases: list[str], key: str, calls: int, **extra) -> list[int]:
    """`calls` calls at once over CONNECTIONS connections, spread over the given servers."""
    with ThreadPoolExecutor(CONNECTIONS) as pool:
        return sorted(pool.map(lambda i: call(bases[i % len(bases)], key, **extra),
                               range(calls)))


def limited_key(base: str, admin: dict, upstream_url: str, team: dict, key: dict,
                **params) -> str:
    team_id = requests.post(base + "/team/new", json={"team_alias": "limited", **team},
                            headers=admin, timeout=10).json()["team_id"]
    made = requests.post(base + "/key/generate", json={"team_id": team_id, **key},
                         headers=admin, timeout=10).json()["key"]
    created = requests.post(base + "/model/new", headers=bearer(made), timeout=10, json={
        "model_name": "limited-model", "model_info": {"team_id": team_id},
        "litellm_params": {"model": "openai/gpt-4o", "api_base": upstream_url,
                           "api_key": "sk-provider-limited", **params}})
    assert created.status_code == 200, created.text
    return made


def check_exact_limits(bases: list[str], admin: dict, upstream: FakeUpstream):
    """rpm: 40 of 90 calls; parallel: 6 of 30 held calls; tpm: 4 of 20 reserving 204 each."""
    same_minute(15)
    # held a little, calls overlap, and both workers (or instances) take their share
    upstream.default = Reply(delay=0.2)
    key = limited_key(bases[0], admin, upstream.url, {}, {"rpm_limit": 40})
    assert burst(bases, key, 90) == [200] * 40 + [429] * 50
    assert len(upstream.received) == 40

    upstream.default = Reply(delay=1.0)  # every call stays in flight while the burst lands
    key = limited_key(bases[0], admin, upstream.url, {"max_parallel_requests": 6}, {})
    assert burst(bases, key, 30) == [200] * 6 + [429] * 24
    assert len(upstream.received) == 46
    assert call(bases[-1], key) == 200  # the slots were given back

    key = limited_key(bases[0], admin, upstream.url, {}, {"tpm_limit": 1000})
    assert burst(bases, key, 20, max_tokens=200) == [200] * 4 + [429] * 16
    assert len(upstream.received) == 51


def check_exact_budgets(bases: list[str], admin: dict, upstream: FakeUpstream):
    """A key budget of 0.065 USD admits exactly 5 calls of 0.014 out of 30 at once (the 6th
    would start past it), and the key's spend is then exactly their cost; a team budget holds
    the same way for all of the team's keys."""
    upstream.default = Reply(body=completion(prompt_tokens=4, completion_tokens=5), delay=0.3)
    before = len(upstream.received)
    key = limited_key(bases[0], admin, upstream.url, {}, {"max_budget": 0.065},
                      input_cost_per_token=IN, output_cost_per_token=OUT)
    statuses = burst(bases, key, 30, max_tokens=5)
    assert statuses == [200] * 5 + [400] * 25
    assert len(upstream.received) - before == 5
    refused = requests.post(bases[-1] + "/v1/chat/completions", headers=bearer(key), timeout=15,
                            json={"model": "limited-model", "max_tokens": 5,
                                  "messages": [{"role": "user", "content": "hi"}]})
    assert refused.status_code == 400
    assert refused.json()["error"]["type"] == "budget_exceeded"
    # spend, and holds of calls whose settlement is still on its way (50 ms at most)
    spent, held = re.fullmatch(
        r"Budget has been exceeded! Current cost: ([0-9.]+), Max budget: 0.065"
        r"(?: \(([0-9.]+) more is held for calls not yet settled\))?",
        refused.json()["error"]["message"]).groups(default="0")
    assert round(float(spent) + float(held), 6) == round(5 * CALL_COST, 6)
    deadline = time.monotonic() + 5
    while True:  # the request log writes spend in batches
        spent = requests.get(bases[0] + "/key/info", headers=bearer(key), timeout=10).json()
        if spent["info"]["spend"] >= 5 * CALL_COST - 1e-9 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert round(spent["info"]["spend"], 6) == round(5 * CALL_COST, 6)

    # a team budget of 0.04: 3 calls of 0.014 (0.028 < 0.04 admits the third), whichever key
    first = limited_key(bases[0], admin, upstream.url, {"max_budget": 0.04}, {},
                        input_cost_per_token=IN, output_cost_per_token=OUT)
    team_id = requests.get(bases[0] + "/key/info", headers=bearer(first),
                           timeout=10).json()["info"]["team_id"]
    second = requests.post(bases[0] + "/key/generate", json={"team_id": team_id},
                           headers=admin, timeout=10).json()["key"]
    with ThreadPoolExecutor(CONNECTIONS) as pool:
        statuses = sorted(pool.map(lambda i: call(bases[i % len(bases)], (first, second)[i % 2],
                                                  max_tokens=5), range(20)))
    assert statuses == [200] * 3 + [400] * 17
    assert len(upstream.received) - before == 8


@pytest.fixture
def upstream_server():
    server = FakeUpstream()
    yield server
    server.close()


def test_two_gunicorn_workers_share_the_limits_exactly(tmp_path, database_url, upstream_server):
    with served(tmp_path, database_url, workers=2) as (base, _):
        check_exact_limits([base], bearer(MASTER), upstream_server)
        check_exact_budgets([base], bearer(MASTER), upstream_server)


@needs_redis
def test_two_instances_on_one_database_and_one_redis_share_the_limits_exactly(
        make_app, tmp_path, upstream_server):
    """Each instance has a counter file of its own, so only Redis can make them agree."""
    first = LiveServer(make_app(REDIS_URL=REDIS_URL, LIMITS_DB=str(tmp_path / "first.db")))
    second = LiveServer(make_app(REDIS_URL=REDIS_URL, LIMITS_DB=str(tmp_path / "second.db")))
    try:
        check_exact_limits([first.url, second.url], ADMIN, upstream_server)
        check_exact_budgets([first.url, second.url], ADMIN, upstream_server)
    finally:
        first.stop()
        second.stop()
