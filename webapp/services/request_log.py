"""The request log, written off the response's critical path: rows are queued in memory and a
background thread inserts them in batches; the queue is drained at shutdown, so none is lost."""
import atexit
import logging
import queue
import threading

from flask import current_app
from sqlalchemy.exc import DatabaseError, OperationalError

from webapp.extensions import db
from webapp.models import RequestLogEntry

log = logging.getLogger(__name__)
BATCH = 500
MODEL_NAME_LENGTH = RequestLogEntry.__table__.c.public_model.type.length


class RequestLogWriter:
    def __init__(self, app, interval: float = 0.2):
        self.app = app
        self.interval = interval
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        atexit.register(self.flush)

    def add(self, **row):
        # the model name is the caller's text: make it fit its column on every database
        if row.get("public_model"):
            row["public_model"] = row["public_model"].replace("\x00", "")[:MODEL_NAME_LENGTH]
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
                    db.session.execute(db.insert(RequestLogEntry), batch)
                    db.session.commit()
                    return
                except OperationalError as exc:  # busy or away: back off and retry
                    db.session.rollback()
                    log.warning("request log write failed (%s), attempt %d",
                                exc.__class__.__name__, attempt + 1)
                    self._stopped.wait(0.2 * (attempt + 1))
                except DatabaseError:
                    # a row the database refuses must not take the rest of its batch with it
                    db.session.rollback()
                    return self._write_one_by_one(batch)
            log.error("request log: %d rows could not be written", len(batch))

    def _write_one_by_one(self, batch: list[dict]):
        for row in batch:
            try:
                db.session.execute(db.insert(RequestLogEntry), [row])
                db.session.commit()
            except DatabaseError as exc:
                db.session.rollback()
                log.error("request log: a row was refused (%s)", exc.__class__.__name__)

    def stop(self):
        self._stopped.set()
        self.flush()


def writer():
    return current_app.extensions["teamgate.request_log"]


def init_app(app):
    app.extensions["teamgate.request_log"] = RequestLogWriter(app)
