"""Teamgate as `make run` serves it (gunicorn, gunicorn.conf.py, gevent workers) while 60
clients, each from its own loopback address, post random emails at /ui/login as fast as they
are answered: another team's proxied calls keep answering promptly. Before, every login held a
pooled database connection while it waited for argon2, and a proxied call that needed one (the
routing cache's check, every 0.5 s) waited seconds behind them; and a refused login, answered
at once, came straight back, so the refusals alone kept the workers busy."""
import contextlib
import multiprocessing
import statistics
import time

import requests

from tests.conftest import bearer
from tests.fake_upstream import FakeUpstream
from tests.login_flood import flood
from tests.test_served import MASTER, served

FLOOD_CLIENTS = 60
MEASURED_SECONDS = 3.0
FLOOD_SECONDS = 0.5 + MEASURED_SECONDS


def p99(values: list[float]) -> float:
    return sorted(values)[min(len(values) - 1, round(0.99 * (len(values) - 1)))]


def test_proxied_calls_answer_promptly_during_a_login_flood(tmp_path, database_url):
    upstream = FakeUpstream()
    with served(tmp_path, database_url, workers=2) as (base, _), contextlib.closing(upstream), \
            requests.Session() as caller:
        admin = bearer(MASTER)
        team = requests.post(base + "/team/new", json={"team_alias": "calls"},
                             headers=admin).json()["team_id"]
        key = requests.post(base + "/key/generate", json={"team_id": team},
                            headers=admin).json()["key"]
        assert requests.post(base + "/model/new", headers=bearer(key), json={
            "model_name": "calls-model", "model_info": {"team_id": team},
            "litellm_params": {"model": "openai/gpt-4o", "api_base": upstream.url,
                               "api_key": "sk-provider-calls"}}).status_code == 200
        body = {"model": "calls-model", "messages": [{"role": "user", "content": "hi"}]}

        def timed_calls(seconds: float) -> list[float]:
            latencies = []
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                started = time.perf_counter()
                assert caller.post(base + "/v1/chat/completions", json=body,
                                   headers=bearer(key), timeout=30).status_code == 200
                latencies.append(time.perf_counter() - started)
                time.sleep(0.02)
            return latencies

        baseline = timed_calls(1.0)
        spawn = multiprocessing.get_context("spawn")
        started, results = spawn.Event(), spawn.Queue()
        flooding = spawn.Process(target=flood, args=(base, FLOOD_CLIENTS, FLOOD_SECONDS,
                                                     started, results))
        flooding.start()
        try:
            assert started.wait(60), "the flood did not start"
            time.sleep(0.5)  # every client has a login in flight
            during = timed_calls(MEASURED_SECONDS)
            statuses = results.get(timeout=90)
        finally:
            flooding.join(30)
            flooding.kill()
    # generous, for a machine that other work shares (bench/login_flood.py measures): before,
    # calls waited 3 to 14 s for a connection
    allowed = max(1.0, 5 * p99(baseline))
    assert p99(during) < allowed, (f"p99 {p99(during):.3f} s during the flood (median "
                                   f"{statistics.median(during):.3f} s), {p99(baseline):.3f} s "
                                   f"before; logins {statuses}")
    assert set(statuses) <= {401, 429}, statuses
    # passwords were checked meanwhile, and the process's budget was full
    assert statuses.get(401, 0) > 0 and statuses.get(429, 0) > 0, statuses
    # a refused client's next request on its connection waits a second
    assert statuses[429] <= FLOOD_CLIENTS * (FLOOD_SECONDS + 1.5), statuses
