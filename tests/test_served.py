"""Teamgate as `make run` serves it (gunicorn, gunicorn.conf.py, gevent workers) on the suite's
database (SQLite, or PostgreSQL in the second CI run): calls answered under concurrent load, and
after a graceful stop exactly one request-log row per call, even with the database locked."""
import contextlib
import os
import re
import signal
import threading
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.conftest import bearer
from tests.fake_upstream import FakeUpstream
from tests.test_request_log_durable import Lock
from tests.test_security_input import CHUNKED, MIB, pieces, vision_call

ROOT = Path(__file__).resolve().parent.parent
CALLS, CONCURRENCY = 300, 12
LOCKED_CALLS = 20
MASTER = "sk-master-served-test"
BIN = Path(sys.executable).parent


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_up(url: str):
    for _ in range(200):
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError("gunicorn did not start")


@contextlib.contextmanager
def served(tmp_path, database_url, workers: int, setup: bool = True):
    """gunicorn with gunicorn.conf.py on the suite's database (migrated by `flask setup` first,
    unless setup is False); yields its base URL and the environment it runs in, and stops it
    gracefully (worker_exit flushes the request log)."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "TEAMGATE_INSTANCE_PATH": str(tmp_path),
           "TEAMGATE_MASTER_KEY": MASTER, "TEAMGATE_UPSTREAM_ALLOW": "127.0.0.1/32",
           "WORKERS": str(workers)}
    if setup:
        subprocess.run([str(BIN / "flask"), "--app", "wsgi", "setup"], cwd=ROOT,
                       env=env, check=True, capture_output=True)
    with open(tmp_path / "server.log", "w") as log:
        server = subprocess.Popen([str(BIN / "gunicorn"), "--config", "gunicorn.conf.py",
                                   "--bind", f"127.0.0.1:{port}", "wsgi:app"], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(base + "/health/liveliness")
        yield base, env
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert server.returncode == 0, (tmp_path / "server.log").read_text()[-2000:]


def logged(database_url: str, team: str) -> tuple[int, int]:
    """Rows and distinct request ids of the team's successful calls in the request log."""
    engine = create_engine(database_url)
    with engine.connect() as connection:
        counts = connection.execute(text(
            "SELECT count(*), count(DISTINCT request_id) FROM request_log "
            "WHERE team_id = :team AND route = '/chat/completions' AND status = 200"),
            {"team": team}).one()
    engine.dispose()
    return tuple(counts)


def spooled(spool: Path) -> int:
    return sum(len(path.read_bytes().splitlines()) for path in spool.glob("*.jsonl"))


def test_gunicorn_gevent_workers_log_one_row_per_call(tmp_path, database_url):
    """Also for the calls made while the database is locked at the stop: the workers spool
    those rows (worker_exit) and exit cleanly, and the next start writes them, once each."""
    upstream, lock = FakeUpstream(), Lock(database_url)
    spool = tmp_path / "request-log-spool"
    try:
        with served(tmp_path, database_url, workers=2) as (base, _):
            admin = bearer(MASTER)
            team = requests.post(base + "/team/new", json={"team_alias": "served"},
                                 headers=admin).json()["team_id"]
            key = requests.post(base + "/key/generate", json={"team_id": team},
                                headers=admin).json()["key"]
            created = requests.post(base + "/model/new", headers=bearer(key), json={
                "model_name": "served-model", "model_info": {"team_id": team},
                "litellm_params": {"model": "openai/gpt-4o", "api_base": upstream.url,
                                   "api_key": "sk-provider-served"}})
            assert created.status_code == 200, created.text
            body = {"model": "served-model", "messages": [{"role": "user", "content": "hi"}]}

            def calls(n):
                with requests.Session() as session:
                    return [session.post(base + "/v1/chat/completions", json=body,
                                         headers=bearer(key), timeout=10).status_code
                            for _ in range(n)]

            with ThreadPoolExecutor(CONCURRENCY) as pool:
                statuses = [s for batch in pool.map(calls, [CALLS // CONCURRENCY] * CONCURRENCY)
                            for s in batch]
            assert statuses == [200] * CALLS
            lock.hold()
            assert calls(LOCKED_CALLS) == [200] * LOCKED_CALLS
        assert spooled(spool) >= LOCKED_CALLS
        assert logged(database_url, team)[0] <= CALLS
        lock.release()
        with served(tmp_path, database_url, workers=1, setup=False) as (base, _):
            requests.get(base + "/health/readiness", timeout=10)  # starts the writer
            for _ in range(100):
                if not spooled(spool):
                    break
                time.sleep(0.05)
        assert not list(spool.glob("*.jsonl"))
        assert logged(database_url, team) == (CALLS + LOCKED_CALLS, CALLS + LOCKED_CALLS)
        assert len(upstream.received) == CALLS + LOCKED_CALLS
    finally:
        lock.release()
        upstream.close()


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory, database_url):
    """One gunicorn with one gevent worker, for the tests that need no server of their own."""
    with served(tmp_path_factory.mktemp("served"), database_url, workers=1) as running:
        yield running


def test_chunked_bodies_up_to_the_limit_are_read_whole_and_past_it_are_a_413(one_worker):
    """gunicorn ends a chunked body itself (wsgi.input_terminated), as the development server
    does: 21 MiB is a JSON 413 that the client reads, and on the same connection a vision call
    of 5 MiB (over the former limit) reaches the upstream whole."""
    base, _ = one_worker
    upstream = FakeUpstream()
    with contextlib.closing(upstream):
        admin = bearer(MASTER)
        team = requests.post(base + "/team/new", json={"team_alias": "chunked"},
                             headers=admin).json()["team_id"]
        key = requests.post(base + "/key/generate", json={"team_id": team},
                            headers=admin).json()["key"]
        assert requests.post(base + "/model/new", headers=bearer(key), json={
            "model_name": "my-team-model", "model_info": {"team_id": team},
            "litellm_params": {"model": "openai/gpt-4o", "api_base": upstream.url,
                               "api_key": "sk-provider-chunked"}}).status_code == 200
        with requests.Session() as session:
            statuses = [session.post(base + "/v1/chat/completions", headers={
                **bearer(key), **CHUNKED}, data=pieces(vision_call(size * MIB)),
                timeout=30) for size in (21, 5)]
    assert [response.status_code for response in statuses] == [413, 200]
    assert statuses[0].json()["error"]["message"].startswith("Request body too large")
    assert len(upstream.received) == 1
    image = upstream.received[0].body["messages"][0]["content"][0]["image_url"]["url"]
    assert len(image) > 5 * MIB - 200


def test_a_login_does_not_hold_up_the_other_calls_of_its_worker(one_worker):
    """Checking a password is ~0.2 s of argon2; done in the event loop it held up every call of
    that worker until it ended. One worker here, so the login and the probes share its loop:
    health probes sent one after another while the login is checked keep being answered."""
    base, env = one_worker
    with requests.Session() as session, requests.Session() as probes:
        subprocess.run([str(BIN / "flask"), "--app", "wsgi", "create-user", "ops@example.com",
                        "--password", "a-long-password-1"], cwd=ROOT, env=env, check=True,
                       capture_output=True)
        page = session.get(base + "/ui/login", timeout=10).text
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        login = {}

        def log_in():
            login["response"] = session.post(base + "/ui/login", timeout=30, data={
                "csrf_token": token, "email": "ops@example.com",
                "password": "a-long-password-1"}, allow_redirects=False)

        thread = threading.Thread(target=log_in)
        answered_meanwhile = 0
        thread.start()
        while thread.is_alive():
            answered = probes.get(base + "/health/liveliness", timeout=10).status_code == 200
            answered_meanwhile += answered and thread.is_alive()
        thread.join()
    assert login["response"].status_code == 302
    assert login["response"].headers["Location"].endswith("/ui/")
    # held up by the password check, at most the probes before it began would be answered
    assert answered_meanwhile >= 8, answered_meanwhile
