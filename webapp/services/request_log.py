"""The request log, written off the response's critical path: rows are queued in memory and a
background thread inserts them in batches; the queue is drained at shutdown, so none is lost.

Batches go every 0.2 s to the driver's executemany with the columns' own bind processors, at
under half the ORM bulk insert's cost per row (bench/PROFILE.md section 7); every 0.05 s measured
worse at c=1 p99, as a disturbance 20 times a second touches 2 % of calls at 1,000/s. Under
gevent the database work runs in gevent's pool of native threads on an engine of its own: the
driver waits for SQLite's write lock (held by another worker) or a WAL checkpoint without the
GIL, where in the event loop it stalled every call of the worker."""
import atexit
import logging
import queue
import threading

from flask import current_app
from sqlalchemy import create_engine
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlalchemy.pool import StaticPool

from webapp.blocking import off_the_loop
from webapp.extensions import db
from webapp.models import RequestLogEntry
from webapp.models.base import utcnow

log = logging.getLogger(__name__)
BATCH = 500
TABLE = RequestLogEntry.__table__
MODEL_NAME_LENGTH = TABLE.c.public_model.type.length
COLUMNS = ("request_id", "created_at", "team_id", "key_token", "key_name", "route",
           "public_model", "deployment_id", "status", "latency_ms", "overhead_ms",
           "prompt_tokens", "completion_tokens", "stream", "error_type")


class _Insert:
    """The INSERT in the driver's own parameter style, and each column's bind processor."""

    def __init__(self, dialect):
        compiled = TABLE.insert().compile(dialect=dialect, column_keys=list(COLUMNS))
        self.sql = compiled.string
        self.order = compiled.positiontup if compiled.positional else None
        self.processors = {name: TABLE.c[name].type.bind_processor(dialect) for name in COLUMNS}

    def parameters(self, batch: list[dict]) -> list:
        rows = []
        for row in batch:
            values = {name: row.get(name) for name in COLUMNS}
            for name, process in self.processors.items():
                if process is not None and values[name] is not None:
                    values[name] = process(values[name])
            rows.append(tuple(values[name] for name in self.order) if self.order else values)
        return rows


class RequestLogWriter:
    def __init__(self, app, interval: float = 0.2):
        self.app = app
        self.interval = interval
        self._insert: _Insert | None = None
        self._engine = None
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        atexit.register(self.flush)

    def add(self, **row):
        # the model name is the caller's text: make it fit its column on every database
        if row.get("public_model"):
            row["public_model"] = row["public_model"].replace("\x00", "")[:MODEL_NAME_LENGTH]
        row.setdefault("created_at", utcnow())  # when the call ended, not when it was written
        self._queue.put(row)
        if self._thread is None:
            self._start()

    def _start(self):
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="request-log",
                                                daemon=True)
                self._thread.start()

    def _run(self):
        while not self._stopped.wait(self.interval):
            self.flush()

    def flush(self) -> int:
        """Write every queued row now; returns how many were written."""
        written = 0
        with self._lock:
            while True:
                batch = []
                while len(batch) < BATCH:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                if not batch:
                    return written
                self._write(batch)
                written += len(batch)

    def _write(self, batch: list[dict]):
        with self.app.app_context():
            for attempt in range(5):
                try:
                    self._execute(batch)
                    return
                except OperationalError as exc:  # busy or away: back off and retry
                    log.warning("request log write failed (%s), attempt %d",
                                exc.__class__.__name__, attempt + 1)
                    self._stopped.wait(0.2 * (attempt + 1))
                except DatabaseError:
                    # a row the database refuses must not take the rest of its batch with it
                    return self._write_one_by_one(batch)
            log.error("request log: %d rows could not be written", len(batch))

    def _execute(self, batch: list[dict]):
        if self._engine is None:
            # one connection, used by one flush at a time: no pool whose locks would be shared
            # between the event loop and a native thread
            options = self.app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {})
            self._engine = create_engine(db.engine.url, poolclass=StaticPool,
                                         connect_args=options.get("connect_args", {}))
            self._insert = _Insert(self._engine.dialect)
        off_the_loop(self._insert_batch, self._insert.parameters(batch))

    def _insert_batch(self, parameters: list):
        with self._engine.begin() as connection:
            connection.exec_driver_sql(self._insert.sql, parameters)

    def _write_one_by_one(self, batch: list[dict]):
        for row in batch:
            try:
                self._execute([row])
            except DatabaseError as exc:
                log.error("request log: a row was refused (%s)", exc.__class__.__name__)

    def stop(self):
        self._stopped.set()
        self.flush()
        if self._engine is not None:
            self._engine.dispose()


def writer():
    return current_app.extensions["teamgate.request_log"]


def init_app(app):
    app.extensions["teamgate.request_log"] = RequestLogWriter(app)
