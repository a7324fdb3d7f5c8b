"""The request log keeps every row while the database will not take it: rows wait in memory up
to a cap, then in spool files in the instance folder, and reach the database exactly once when
it takes writes again, also after a shutdown or a crash; a spool that cannot be written is
reported, never silently dropped."""
import contextlib
import errno
import logging
import runpy
import shutil
import sqlite3
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.conftest import LiveServer, Seed, bearer
from tests.fake_upstream import FakeUpstream
from webapp import database
from webapp.services import request_log_spool

GUNICORN_CONF = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"
CAP = 10


class Lock:
    """Another connection holding the write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: a lock
    on request_log that lets readers through) from hold() to release()."""

    def __init__(self, database_url: str):
        self.url = database_url
        self._release = None

    def hold(self):
        if self.url.startswith("sqlite"):
            connection = sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=5,
                                         isolation_level=None)
            connection.execute("BEGIN IMMEDIATE")
            self._release = lambda: (connection.execute("ROLLBACK"), connection.close())
            return
        engine = create_engine(self.url)
        connection = engine.connect()
        transaction = connection.begin()
        connection.execute(text("LOCK TABLE request_log IN EXCLUSIVE MODE"))
        self._release = lambda: (transaction.rollback(), connection.close(), engine.dispose())

    def release(self):
        if self._release is not None:
            self._release()
            self._release = None


@contextlib.contextmanager
def locked(database_url: str):
    lock = Lock(database_url)
    lock.hold()
    try:
        yield
    finally:
        lock.release()


@pytest.fixture
def quick_locks(monkeypatch):
    """Every connection waits at most 50 ms for a lock, so a lock of a few seconds outlasts many
    write attempts."""
    monkeypatch.setattr(database, "SQLITE_PRAGMAS", tuple(
        "PRAGMA busy_timeout=50" if "busy_timeout" in pragma else pragma
        for pragma in database.SQLITE_PRAGMAS))


@pytest.fixture
def spool_dir(tmp_path):
    return tmp_path / "request-log-spool"


@pytest.fixture
def make_logging_app(app, make_app, spool_dir, quick_locks):
    """Apps on the emptied test database (the `app` fixture empties it) whose request log
    retries every 50 ms, keeps CAP rows in memory and spools into spool_dir."""
    def factory(**extra):
        return make_app(REQUEST_LOG_SPOOL_DIR=str(spool_dir), REQUEST_LOG_LOCK_WAIT=0.05,
                        REQUEST_LOG_RETRY_SECONDS=0.05, REQUEST_LOG_MEMORY_ROWS=CAP, **extra)
    return factory


def logged(database_url: str) -> list[str]:
    """The request ids in the request log, in the order they were inserted."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(
                "SELECT request_id FROM request_log ORDER BY id")).scalars())
    finally:
        engine.dispose()


def wait_for(condition, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def add_rows(writer, ids):
    for request_id in ids:
        writer.add(request_id=request_id, team_id=None, key_token=None, key_name=None,
                   route="/chat/completions", public_model="m", deployment_id=None,
                   status=200, latency_ms=1.0, overhead_ms=0.5, prompt_tokens=None,
                   completion_tokens=None, stream=False, error_type=None)


def spooled_lines(spool_dir: Path) -> int:
    return sum(len(path.read_bytes().splitlines()) for path in spool_dir.glob("*.jsonl"))


def test_rows_wait_out_a_long_lock_and_arrive_once_in_order(make_logging_app, database_url,
                                                            spool_dir):
    """The database stays locked for longer than the writer used to retry (5 attempts): calls
    made meanwhile are answered, their rows wait (CAP in memory, the rest on disk, readiness
    shows the backlog) and every row reaches the database once, in the order of the calls."""
    app = make_logging_app()
    client = app.test_client()
    seed = Seed(client)
    upstream = FakeUpstream("a")
    server = LiveServer(app)
    try:
        _, key = seed.team_with_model(upstream.url)
        body = {"model": "my-team-model", "messages": [{"role": "user", "content": "hi"}]}
        writer = app.extensions["teamgate.request_log"]
        readiness = []
        with locked(database_url), requests.Session() as session:
            started = time.monotonic()
            for _ in range(20):
                response = session.post(server.url + "/v1/chat/completions", json=body,
                                        headers=bearer(key), timeout=10)
                assert response.status_code == 200
            add_rows(writer, [f"row-{n:02d}" for n in range(20)])
            while time.monotonic() - started < 3.5:
                readiness.append(session.get(server.url + "/health/readiness", timeout=10))
                time.sleep(0.1)
            assert logged(database_url) == []
        wait_for(lambda: len(logged(database_url)) >= 40)
        ids = logged(database_url)
        assert len(ids) == len(set(ids)) == 40
        assert ids[20:] == [f"row-{n:02d}" for n in range(20)]
        late = readiness[-1]
        assert late.status_code == 200
        backlog = late.json()["request_log"]
        assert backlog["in_memory"] <= CAP and backlog["in_memory"] + backlog["spooled"] == 40
        assert "locked" in backlog["waiting_for"]
        wait_for(lambda: not list(spool_dir.glob("*.jsonl")))
        ready = client.get("/health/readiness").json["request_log"]
        assert ready["in_memory"] == ready["spooled"] == 0 and "waiting_for" not in ready
    finally:
        server.stop()
        upstream.close()


def test_shutdown_with_the_database_locked_spools_the_rows_and_a_restart_writes_them_once(
        make_logging_app, database_url, spool_dir):
    """gunicorn's worker_exit hook while the database is locked: the queued rows go to the
    spool, quickly; the next start writes them once, and a spool replayed again (a crash after
    the insert, before the files were removed) adds nothing twice."""
    first = make_logging_app()
    ids = [f"queued-{n:03d}" for n in range(50)]
    with locked(database_url):
        add_rows(first.extensions["teamgate.request_log"], ids)
        hooks = runpy.run_path(str(GUNICORN_CONF))
        started = time.monotonic()
        hooks["worker_exit"](None, SimpleNamespace(wsgi=first))
        assert time.monotonic() - started < 2
        assert spooled_lines(spool_dir) == 50
    assert logged(database_url) == []
    copy = spool_dir.parent / "spool-copy"
    shutil.copytree(spool_dir, copy)

    second = make_logging_app()
    second.test_client().get("/health/readiness")  # the first request starts the writer
    wait_for(lambda: len(logged(database_url)) == 50)
    wait_for(lambda: not list(spool_dir.glob("*.jsonl")))
    assert logged(database_url) == ids
    second.extensions["teamgate.request_log"].stop()

    shutil.rmtree(spool_dir)
    shutil.copytree(copy, spool_dir)  # as if the process had died before removing its spool
    third = make_logging_app()
    third.test_client().get("/health/readiness")
    wait_for(lambda: not list(spool_dir.glob("*.jsonl")))
    assert logged(database_url) == ids


def test_a_running_writer_keeps_its_spool_to_itself(make_logging_app, database_url, spool_dir):
    """Two workers share the instance folder: a second one never replays the first one's live
    spool (that would write its rows twice); the first writes its own once the lock goes."""
    first = make_logging_app()
    ids = [f"mine-{n:02d}" for n in range(30)]
    with locked(database_url):
        add_rows(first.extensions["teamgate.request_log"], ids)
        wait_for(lambda: spooled_lines(spool_dir) == 30 - CAP)
        second = make_logging_app()
        client = second.test_client()
        assert client.get("/health/readiness").json["request_log"]["spooled"] == 0
    wait_for(lambda: len(logged(database_url)) == 30)
    time.sleep(0.2)
    assert logged(database_url) == ids
    assert client.get("/health/readiness").json["request_log"]["spooled"] == 0


def test_a_full_disk_is_reported_once_and_on_readiness(make_logging_app, database_url, spool_dir,
                                                       monkeypatch, caplog):
    """Database locked and the spool's disk full: readiness answers 503 with the reason and the
    log says it once for the whole episode, with how many rows could not be kept; once the
    disk has room again rows are spooled, readiness recovers, and every row kept arrives."""
    def disk_full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    room = request_log_spool.write_all
    monkeypatch.setattr(request_log_spool, "write_all", disk_full)
    app = make_logging_app()
    client = app.test_client()
    writer = app.extensions["teamgate.request_log"]
    caplog.set_level(logging.INFO, logger="webapp.services.request_log")
    with locked(database_url):
        add_rows(writer, [f"first-{n:02d}" for n in range(CAP)])
        time.sleep(0.3)
        assert client.get("/health/readiness").status_code == 200  # CAP rows fit in memory
        add_rows(writer, [f"late-{n:02d}" for n in range(15)])
        wait_for(lambda: client.get("/health/readiness").status_code == 503)
        time.sleep(0.5)  # several more attempts to spool, each failing
        response = client.get("/health/readiness")
        assert response.status_code == 503
        message = response.json["error"]["message"]
        assert message.startswith("request log cannot be written: the database is locked and "
                                  "the spool is full")
        assert "15 rows were dropped" in message
        failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(failures) == 1, [r.getMessage() for r in failures]
        assert "No space left on device" in failures[0].getMessage()

        monkeypatch.setattr(request_log_spool, "write_all", room)  # the disk has room again
        add_rows(writer, ["after-00"])
        wait_for(lambda: client.get("/health/readiness").status_code == 200)
        assert spooled_lines(spool_dir) >= 1
    wait_for(lambda: len(logged(database_url)) == CAP + 1)
    assert logged(database_url) == [f"first-{n:02d}" for n in range(CAP)] + ["after-00"]
    recovered = [r.getMessage() for r in caplog.records if "15 rows" in r.getMessage()]
    assert recovered, [r.getMessage() for r in caplog.records]
