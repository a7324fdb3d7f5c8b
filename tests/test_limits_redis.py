"""Limits on Redis when Redis goes away mid-run: TEAMGATE_LIMITS_ON_REDIS_FAILURE=open admits
calls uncounted, closed refuses them with a 503; either logs once per episode, and the limits
hold again as soon as Redis answers. A redis-server of the test's own, stopped and restarted."""
import logging
import shutil
import subprocess
import time

import pytest
import redis

from tests.conftest import bearer
from tests.test_limits import check_settling
from tests.test_served import free_port
from webapp.services import limit_stores, limits

BINARY = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(not BINARY, reason="redis-server is not installed "
                                                   "(.ci/run installs it)")


class RedisServer:
    def __init__(self, folder):
        self.port, self.folder, self.process = free_port(), folder, None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.process = subprocess.Popen(
            [BINARY, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)], stdout=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.01)
        client.close()

    def stop(self):
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture
def redis_server(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "RETRY_SECONDS", 0.05)  # try Redis again soon after it failed
    server = RedisServer(tmp_path)
    server.start()
    yield server
    if server.process.poll() is None:
        server.stop()


def limited(seed, upstream) -> str:
    team_id = seed.team()
    key = seed.key(team_id, rpm_limit=2)
    seed.model(key, team_id, upstream.url)
    return key


def chat(client, key):
    return client.post("/v1/chat/completions", headers=bearer(key), json={
        "model": "my-team-model", "messages": [{"role": "user", "content": "hi"}]})


def statuses(client, key, n):
    time.sleep(limits.RETRY_SECONDS * 1.5)
    return [chat(client, key).status_code for _ in range(n)]


def outages(caplog) -> int:
    return sum("unreachable" in r.getMessage() for r in caplog.records
               if r.name == "webapp.services.limits")


@pytest.mark.parametrize("setting, while_down", [("open", 200), ("closed", 503)])
def test_redis_stopped_mid_run(make_app, seed, upstream, redis_server, caplog, setting,
                               while_down):
    app = make_app(REDIS_URL=redis_server.url, LIMITS_ON_REDIS_FAILURE=setting)
    client = app.test_client()
    key = limited(seed, upstream)
    caplog.set_level(logging.WARNING, logger="webapp.services.limits")
    assert statuses(client, key, 3) == [200, 200, 429]

    redis_server.stop()
    assert statuses(client, key, 4) == [while_down] * 4
    assert outages(caplog) == 1  # once per episode, not once per call
    refused = chat(client, key)
    if setting == "closed":
        assert refused.json["error"]["message"] == ("Teamgate cannot check this caller's "
                                                    "limits right now; try again shortly.")
        assert refused.headers["Retry-After"] == "1"

    redis_server.start()  # an empty Redis: the minute's count starts again
    assert statuses(client, key, 3) == [200, 200, 429]
    redis_server.stop()
    assert statuses(client, key, 1) == [while_down]
    assert outages(caplog) == 2  # a second episode


def test_a_slot_nobody_gives_back_expires(redis_server, tmp_path):
    """A worker killed mid-call never releases its parallel slots: they stop counting after
    LIMITS_SLOT_SECONDS, on Redis and in the embedded file alike."""
    for store in (limit_stores.RedisStore(redis_server.url, 0.3, 0.5),
                  limit_stores.SQLiteStore(str(tmp_path / "limits.db"), 0.3)):
        check = [limit_stores.Check(f"key:{store.__class__.__name__}", None, 1, None)]
        assert store.admit(check, "crashed")[1] is None
        assert store.admit(check, "next")[1].limit == "parallel"
        time.sleep(0.35)
        assert store.admit(check, "next")[1] is None


def test_budget_holds_become_the_calls_cost(redis_server, tmp_path):
    """A budget's counter starts from the database's spend, calls in flight hold their estimate,
    a call is refused once spend plus holds reach max_budget (the refusal tells them apart),
    and a settled call counts its real cost instead of its hold; a hold nobody settles expires
    like a slot. On Redis and in the embedded file alike."""
    for store in (limit_stores.RedisStore(redis_server.url, 0.3, 0.5),
                  limit_stores.SQLiteStore(str(tmp_path / "limits.db"), 0.3)):
        hold = (limit_stores.Hold(f"key:{store.__class__.__name__}:-", 1.0, 0.5),)
        window, refusal = store.admit([], "first", hold, 0.3)
        assert refusal is None  # 0.5 spent + 0 held < 1.0
        assert store.admit([], "second", hold, 0.3)[1] is None  # 0.5 + 0.3 held
        refusal = store.admit([], "third", hold, 0.3)[1]  # 0.5 + 0.6 held: no
        assert (refusal.limit, refusal.index) == ("budget", 0)
        assert abs(refusal.spent - 0.5) < 1e-9 and abs(refusal.held - 0.6) < 1e-9
        store.release([], "first", window, 0, hold, 0.1, 0.3)  # its hold becomes 0.1 spent
        store.release([], "second", window, 0, hold, 0.1, 0.3)
        assert store.admit([], "fourth", hold, 0.3)[1] is None  # 0.7 spent, nothing held
        time.sleep(0.35)  # "fourth" never settles: its hold expires
        assert store.admit([], "fifth", hold, 0.29)[1] is None
        assert store.admit([], "sixth", hold, 0.01)[1] is None  # 0.7 + 0.29 held < 1.0
        refusal = store.admit([], "seventh", hold, 0.01)[1]  # 0.7 + 0.3 held: no
        assert refusal.limit == "budget" and abs(refusal.spent + refusal.held - 1.0) < 1e-9
        store.release([], "fourth", window, 0, hold, 0.0, 0.3)  # late: its hold is gone already
        refusal = store.admit([], "eighth", hold, 0.01)[1]  # still 0.7 + 0.3 held
        assert abs(refusal.spent - 0.7) < 1e-9 and abs(refusal.held - 0.3) < 1e-9
        store.release([], "fifth", window, 0, hold, 0.0, 0.29)
        store.release([], "sixth", window, 0, hold, 0.0, 0.01)
        refusal = store.admit([], "ninth", hold, 0.3)[1]  # 0.7 spent, nothing held
        assert refusal is None


def test_settled_calls_count_their_real_tokens_on_redis(make_app, redis_server):
    """The token corrections wait for the next trip to Redis; this instance's next admission
    always carries them, so it sees them at once."""
    check_settling(make_app(REDIS_URL=redis_server.url))


def two_stores(kind: str, redis_server, tmp_path):
    """Two processes' stores on one count: two instances on one Redis, or two workers on one
    embedded file."""
    if kind == "redis":
        return [limit_stores.RedisStore(redis_server.url, 30, 0.5) for _ in range(2)]
    return [limit_stores.SQLiteStore(str(tmp_path / "limits.db"), 30) for _ in range(2)]


@pytest.mark.parametrize("kind", ["redis", "embedded"])
def test_a_settled_calls_tokens_reach_others_without_another_call(kind, redis_server, tmp_path):
    """A reserves 900 of 1000 tokens and settles with 10 used, then makes no other call: B may
    soon reserve 200, once A's waiting correction has gone to the store on its own."""
    first, second = two_stores(kind, redis_server, tmp_path)
    checks = [limit_stores.Check("key:shared-tpm", None, None, 1000, 900)]
    window, refusal = first.admit(checks, "a")
    assert refusal is None
    smaller = [limit_stores.Check("key:shared-tpm", None, None, 1000, 200)]
    assert second.admit(smaller, "b")[1].limit == "tpm"
    first.release(checks, "a", window, 10 - 900)
    deadline = time.monotonic() + 2
    while second.admit(smaller, "b")[1] is not None:
        assert time.monotonic() < deadline, "the correction never reached the store"
        time.sleep(limit_stores.FLUSH_SECONDS / 5)
    assert second.admit(smaller, "c")[1] is None  # 10 + 200 + 200 of 1000
    assert second.admit(smaller, "d")[1] is None  # 610
    assert second.admit(smaller, "e")[1] is None  # 810
    assert second.admit(smaller, "f")[1].limit == "tpm"


@pytest.mark.parametrize("kind", ["redis", "embedded"])
def test_a_settled_calls_cost_reaches_others_without_another_call(kind, redis_server, tmp_path):
    """A holds all of a 1.0 budget and settles at 0.25, then makes no other call: B is refused
    at first and admitted once A's settlement has gone to the store on its own."""
    first, second = two_stores(kind, redis_server, tmp_path)
    hold = (limit_stores.Hold(f"key:settle-{kind}:-", 1.0, 0.0),)
    window, refusal = first.admit([], "a", hold, 1.0)
    assert refusal is None
    assert second.admit([], "b", hold, 0.5)[1].limit == "budget"  # 1.0 held
    first.release([], "a", window, 0, hold, 0.25, 1.0)
    deadline = time.monotonic() + 2
    while second.admit([], "b", hold, 0.5)[1] is not None:
        assert time.monotonic() < deadline, "the settlement never reached the store"
        time.sleep(limit_stores.FLUSH_SECONDS / 5)
    assert second.admit([], "c", hold, 0.25)[1] is None  # 0.25 spent + 0.5 held
    assert second.admit([], "d", hold, 0.25)[1].limit == "budget"  # 0.25 + 0.75 held


@pytest.mark.parametrize("kind", ["redis", "embedded"])
def test_a_worker_that_stops_sends_its_waiting_settlements(kind, redis_server, tmp_path):
    """gunicorn's worker_exit stops the limits' gate: the settlements still waiting for a trip
    reach the store then, not never."""
    first, second = two_stores(kind, redis_server, tmp_path)
    first._flush_soon = lambda: None  # the worker stops before its 50 ms are up
    hold = (limit_stores.Hold(f"key:exit-{kind}:-", 1.0, 0.0),)
    window, refusal = first.admit([], "a", hold, 1.0)
    assert refusal is None
    first.release([], "a", window, 0, hold, 0.25, 1.0)
    assert second.admit([], "b", hold, 0.5)[1].limit == "budget"  # still waiting in A
    limits.Gate(first, "open").stop()
    assert second.admit([], "b", hold, 0.5)[1] is None  # 0.25 spent


@pytest.mark.parametrize("kind", ["redis", "embedded"])
def test_slots_are_given_back_before_settle_returns(kind, redis_server, tmp_path):
    """max_parallel_requests is never deferred: once a call's ticket is settled, another
    instance (or worker) can take its slot at once."""
    first, second = two_stores(kind, redis_server, tmp_path)
    checks = [limit_stores.Check("key:shared-slot", None, 1, 1000, 100)]
    window, refusal = first.admit(checks, "a")
    assert refusal is None
    assert second.admit(checks, "b")[1].limit == "parallel"
    first.release(checks, "a", window, -50)
    assert second.admit(checks, "b")[1] is None

