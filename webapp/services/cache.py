"""In-process cache of routing data (keys, resolved models) that every worker drops within
CACHE_CHECK_INTERVAL of a change anywhere: changes bump a counter row in the database, and each
process compares it at most once per interval."""
import threading
import time

from flask import current_app
from sqlalchemy import select, update

from webapp.extensions import db
from webapp.models import ChangeCounter

COUNTER = "routing"


class RoutingCache:
    def __init__(self, interval: float):
        self.interval = interval
        self._lock = threading.Lock()
        self._entries: dict = {}
        self._version: int | None = None
        self._checked_at = 0.0

    def get(self, key, loader):
        self._revalidate()
        try:
            return self._entries[key]
        except KeyError:
            value = loader()
            with self._lock:
                self._entries[key] = value
            return value

    def clear(self):
        with self._lock:
            self._entries.clear()
            self._checked_at = 0.0

    def _revalidate(self):
        now = time.monotonic()
        if now - self._checked_at < self.interval:
            return
        version = db.session.scalar(
            select(ChangeCounter.value).where(ChangeCounter.name == COUNTER)
        )
        with self._lock:
            if version != self._version:
                self._entries.clear()
                self._version = version
            self._checked_at = now


def routing_cache() -> RoutingCache:
    return current_app.extensions["teamgate.routing_cache"]


def routing_changed():
    """Call inside the transaction of any change to keys, teams or deployments."""
    result = db.session.execute(
        update(ChangeCounter).where(ChangeCounter.name == COUNTER)
        .values(value=ChangeCounter.value + 1)
    )
    if result.rowcount == 0:
        db.session.add(ChangeCounter(name=COUNTER, value=1))
    routing_cache().clear()


def init_app(app):
    app.extensions["teamgate.routing_cache"] = RoutingCache(app.config["CACHE_CHECK_INTERVAL"])
