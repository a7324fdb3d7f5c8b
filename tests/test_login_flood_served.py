"""Teamgate as `make run` serves it (gunicorn, gunicorn.conf.py, gevent workers) while 60
clients, each from its own loopback address, post random emails at /ui/login as fast as they
are answered: another team's proxied calls keep answering promptly. Before, every login held a
pooled database connection while it waited for argon2, and a proxied call that needed one (the
routing cache's check, every 0.5 s) waited seconds behind them; and a refused login, answered
at once, came straight back, so the refusals alone kept the workers busy."""
import contextlib
import http.client
import multiprocessing
import re
import statistics
import threading
import time
import uuid
from collections import Counter
from urllib.parse import urlencode, urlsplit

import requests

from tests.conftest import bearer
from tests.fake_upstream import FakeUpstream
from tests.test_served import MASTER, served

FLOOD_CLIENTS = 60
MEASURED_SECONDS = 3.0
FLOOD_SECONDS = 0.5 + MEASURED_SECONDS
TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def flood_client(base: str, address: str, ready, stop, statuses: Counter):
    """One client: the login page's CSRF token and cookie, then random emails until stopped, on
    one kept-alive connection from its own address."""
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30,
                                            source_address=(address, 0))
    connection.request("GET", "/ui/login")
    response = connection.getresponse()
    token = TOKEN.search(response.read().decode()).group(1)
    cookie = response.getheader("Set-Cookie").split(";")[0]
    ready.wait()
    while not stop.is_set():
        form = urlencode({"csrf_token": token, "email": f"{uuid.uuid4().hex}@example.com",
                          "password": uuid.uuid4().hex})
        connection.request("POST", "/ui/login", form, {
            "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
        response = connection.getresponse()
        response.read()
        statuses[response.status] += 1
    connection.close()


def flood(base: str, clients: int, seconds: float, started, results):
    """The flood, in a process of its own so that its threads never hold the test's GIL (the
    fake upstream and the measured calls live there). Puts the answers' statuses in results."""
    statuses = [Counter() for _ in range(clients)]
    ready, stop = threading.Barrier(clients + 1, timeout=30), threading.Event()
    threads = [threading.Thread(target=flood_client, args=(
        base, f"127.0.0.{10 + n}", ready, stop, statuses[n])) for n in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait()
    started.set()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(60)
    results.put(dict(sum(statuses, Counter())))


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
    assert p99(during) < 1.0, (f"p99 {p99(during):.3f} s during the flood (median "
                               f"{statistics.median(during):.3f} s), "
                               f"{p99(baseline):.3f} s before; logins {statuses}")
    assert set(statuses) <= {401, 429}, statuses
    # passwords were checked meanwhile, and the process's budget was full
    assert statuses.get(401, 0) > 0 and statuses.get(429, 0) > 0, statuses
    # a refused client's next request on its connection waits a second
    assert statuses[429] <= FLOOD_CLIENTS * (FLOOD_SECONDS + 1.5), statuses
