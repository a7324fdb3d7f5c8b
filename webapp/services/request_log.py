"""The request log, written off the response's critical path: rows are queued in memory and a
background thread inserts them in batches; none is lost while the database will not take them.

Batches go every 0.2 s (request_log_table); every 0.05 s measured worse at c=1 p99, as a
disturbance 20 times a second touches 2 % of calls at 1,000/s. Under gevent the database and
spool work runs in gevent's pool of native threads: the driver waits for SQLite's write lock
(held by another worker) or a WAL checkpoint without the GIL, where in the event loop it stalled
every call of the worker.

While the database refuses writes (locked, away) rows wait: up to REQUEST_LOG_MEMORY_ROWS in
memory, the rest appended to spool files (request_log_spool), and they are written in the order
they were logged once it takes writes again; at shutdown what is in memory goes to the spool if
the database still refuses. A write whose outcome is unknown (it failed, or it comes from a
spool that may have been replayed before a crash) first looks up which of its request ids the
database already has, so no row is written twice."""
import atexit
import errno
import itertools
import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from flask import current_app, has_app_context
from sqlalchemy.exc import DatabaseError, OperationalError, SQLAlchemyError

from webapp.blocking import off_the_loop
from webapp.models.base import utcnow
from webapp.services import prices
from webapp.services.request_log_spool import Spool
from webapp.services.request_log_table import MODEL_NAME_LENGTH, RequestLogTable

log = logging.getLogger(__name__)
BATCH = 500
INTERVAL = 0.2  # seconds between batches (the response store's writer keeps the same pace)
ADOPT_EVERY = 10.0  # seconds between looks for spool files that a stopped process left


@dataclass(frozen=True)
class Backlog:
    """What readiness reports: rows waiting, why, and whether some cannot be kept."""
    in_memory: int
    spooled: int
    waiting_for: str | None  # the database's refusal in plain words, while it lasts
    problem: str | None  # rows cannot be kept (the spool cannot be written either)


def _outcome(function, args):
    try:
        return function(*args), None
    except (SQLAlchemyError, OSError) as exc:
        return None, exc


def in_native_thread(function, *args):
    """off_the_loop, with a failure raised here only: raised inside gevent's pool it would
    also be printed there, a traceback per attempt while the database is locked."""
    value, error = off_the_loop(_outcome, function, args)
    if error is not None:
        raise error
    return value


def plain_reason(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", exc)
    if getattr(orig, "sqlstate", None) == "55P03" or "locked" in str(orig).lower():
        return "the database is locked"
    return "the database is unavailable"


class RequestLogWriter:
    def __init__(self, app, interval: float = INTERVAL):
        self.app = app
        self.interval = interval
        config = app.config
        self.memory_rows = config["REQUEST_LOG_MEMORY_ROWS"]
        self.lock_wait = config["REQUEST_LOG_LOCK_WAIT"]
        self.retry_seconds = config["REQUEST_LOG_RETRY_SECONDS"]
        self.spool = Spool(Path(config.get("REQUEST_LOG_SPOOL_DIR")
                                or Path(app.instance_path) / "request-log-spool"))
        self.table = RequestLogTable(app, self.lock_wait)
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._head: deque = deque()  # the oldest rows, written before the spool's
        self._tail: deque = deque()  # rows newer than the spool's, not spooled yet
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._retry_at = 0.0
        self._verify = False  # the last write failed: some of its rows may be in already
        self._database_error: str | None = None
        self._failing_since = 0.0
        self._spool_error: str | None = None
        self._dropped = 0
        atexit.register(self.stop)

    def add(self, **row) -> dict:
        """Queue one call's row; the row is given back priced (its cost) for the metrics."""
        # the model name is the caller's text: make it fit its column on every database
        if row.get("public_model"):
            row["public_model"] = row["public_model"].replace("\x00", "")[:MODEL_NAME_LENGTH]
        row.setdefault("created_at", utcnow())  # when the call ended, not when it was written
        if "cost" not in row:
            self._price(row)
        self._inbox.put(row)
        if self._thread is None:
            self.start()
        return row

    def _price(self, row: dict):
        """The row's cost (None: unpriced, or usage unknown) and whether it went to a team's own
        model; a stream ends after its request's context, so the lookup may need one of its
        own."""
        if has_app_context():
            priced = prices.for_deployment(row.get("deployment_id"))
        else:
            with self.app.app_context():
                priced = prices.for_deployment(row.get("deployment_id"))
        row["team_model"] = priced.team_id is not None
        if row.get("prompt_tokens") is None and row.get("completion_tokens") is None:
            # a refused or failed call used nothing; an answer without usage is not known
            row["cost"] = 0.0 if row.get("status", 200) >= 400 else None
            return
        row["cost"] = None if priced.prices is None else priced.prices.cost(
            row.get("prompt_tokens"), row.get("completion_tokens"),
            row.get("cache_read_tokens"), row.get("cache_creation_tokens"))

    def start(self):
        """Run the background writer (it first adopts spool files a stopped process left)."""
        if self._thread is not None or self._stopped.is_set():
            return
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="request-log",
                                                daemon=True)
                self._thread.start()

    def _run(self):
        adopt_at = 0.0
        while not self._stopped.wait(self.interval):
            with self._lock:
                if self._stopped.is_set():
                    return
                try:
                    if time.monotonic() >= adopt_at:
                        adopt_at = time.monotonic() + ADOPT_EVERY
                        in_native_thread(self.spool.adopt_leftovers)
                    self._work()
                except Exception:  # the writer must outlive any one failure, or logging stops
                    log.exception("request log: the writer failed; it goes on")

    def flush(self) -> int:
        """Write every waiting row now (memory, then spool) unless the database refuses;
        returns how many were written."""
        with self._lock:
            self._retry_at = 0.0
            return self._work()

    def backlog(self) -> Backlog:
        """Read without the lock, so a probe never waits for a write to the database."""
        in_memory = len(self._head) + len(self._tail) + self._inbox.qsize()
        problem = None
        if self._spool_error is not None:
            problem = "request log cannot be written: " + " and ".join(
                filter(None, (self._database_error, self._spool_error)))
            if self._dropped:
                problem += f"; {self._dropped} rows were dropped"
        return Backlog(in_memory, self.spool.rows, self._database_error, problem)

    def stop(self):
        """Write what waits in memory, or spool it if the database refuses it now (as at a
        shutdown with the database locked), and leave the spool to the next process."""
        self._stopped.set()
        with self._lock:
            self._place_new_rows()
            if not self.spool.rows and not self._tail:
                self._retry_at = 0.0
                while self._head and self._write_next():
                    pass
            self._spool_the_rest()
            self.spool.close()
        self.table.dispose()

    def _work(self) -> int:
        """Place the new rows, then write batches until none waits or the database refuses."""
        written = 0
        while True:
            self._place_new_rows()
            if time.monotonic() < self._retry_at:
                return written
            count = self._write_next()
            if not count:
                return written
            written += count

    def _place_new_rows(self):
        """New rows join the head in memory while nothing is spooled and the head is under
        its cap; past it, or behind spooled rows, they are appended to the spool."""
        while True:
            try:
                self._tail.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        if not self.spool.rows:
            self._head.extend(self._tail)
            self._tail.clear()
            while len(self._head) > self.memory_rows:
                self._tail.appendleft(self._head.pop())
        if not self._tail:
            if self._spool_error is not None and not self._head and not self.spool.rows:
                self._spool_recovered()  # everything is written: no row is at risk now
            return
        try:
            in_native_thread(self.spool.append, list(self._tail))
        except OSError as exc:
            self._spool_failed(exc)
            for _ in range(len(self._head) + len(self._tail) - self.memory_rows):
                self._tail.pop()
                self._dropped += 1
            return
        self._tail.clear()
        self._spool_recovered()

    def _write_next(self) -> int:
        """Write the oldest waiting batch; returns its size, 0 if none or if refused."""
        from_spool = not self._head
        if from_spool:
            batch = in_native_thread(self.spool.peek, BATCH) if self.spool.rows else []
        else:
            batch = list(itertools.islice(self._head, BATCH))
        if not batch:
            return 0
        try:
            self._write(batch, verify=from_spool or self._verify)
        except SQLAlchemyError as exc:  # locked or away: the rows wait for the next attempt
            self._database_failed(exc)
            return 0
        if from_spool:
            in_native_thread(self.spool.consume)
        else:
            for _ in batch:
                self._head.popleft()
        self._verify = False
        if self._database_error is not None:
            log.warning("request log: the database takes rows again after %.1f s",
                        time.monotonic() - self._failing_since)
            self._database_error = None
        return len(batch)

    def _database_failed(self, exc: SQLAlchemyError):
        reason = plain_reason(exc)
        if self._database_error is None:
            self._failing_since = time.monotonic()
            log.warning("request log: %s (%s); rows wait, %d in memory and the rest in %s, "
                        "until it takes them", reason,
                        getattr(exc, "orig", exc).__class__.__name__,
                        self.memory_rows, self.spool.directory)
        self._database_error = reason
        self._verify = True
        self._retry_at = time.monotonic() + self.retry_seconds

    def _spool_failed(self, exc: OSError):
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            reason = "the spool is full"
        else:
            reason = f"the spool cannot be written ({exc.strerror or exc.__class__.__name__})"
        if self._spool_error is None:
            log.error("request log: %s (%s); up to %d rows wait in memory, more are dropped "
                      "until it can be written", reason, exc.strerror, self.memory_rows)
        self._spool_error = reason

    def _spool_recovered(self):
        if self._spool_error is not None:
            (log.error if self._dropped else log.warning)(
                "request log: rows are kept again; %d rows were dropped while the spool could "
                "not be written", self._dropped)
            self._spool_error = None
            self._dropped = 0

    def _spool_the_rest(self):
        for rows, put in ((self._head, self.spool.prepend), (self._tail, self.spool.append)):
            if not rows:
                continue
            try:
                in_native_thread(put, list(rows))
            except OSError as exc:
                log.error("request log: %d rows are lost at shutdown: the database does not "
                          "take them and the spool cannot be written (%s)", len(rows),
                          exc.strerror)
            rows.clear()

    def _write(self, batch: list[dict], verify: bool):
        """Raises when the database does not take writes now; rows it refuses as values are
        logged and left out, so they cannot hold up the others."""
        try:
            in_native_thread(self.table.insert, batch, verify)
        except DatabaseError as exc:
            if isinstance(exc, OperationalError):
                raise
            for row in batch:
                try:
                    in_native_thread(self.table.insert, [row], True)
                except DatabaseError as refused:
                    if isinstance(refused, OperationalError):
                        raise
                    log.error("request log: a row was refused (%s)",
                              refused.__class__.__name__)


def writer():
    return current_app.extensions["teamgate.request_log"]


def init_app(app):
    writer = RequestLogWriter(app)
    app.extensions["teamgate.request_log"] = writer
    # spool files a stopped process left are replayed from the first request on (once running,
    # the writer also looks for those of processes that stop later)
    if writer.spool.leftovers():
        app.before_request(writer.start)
