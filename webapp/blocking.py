"""Work that holds one native call for long (argon2 password hashing, a batch of request-log
rows) runs where it cannot stall a gevent worker: in gevent's pool of native threads, while the
worker's event loop goes on serving every other connection. Under plain threads (gthread, the
development server, the tests) each request already has a thread of its own. Admission bounds
how much of such work a process takes on: beyond its limit a caller is refused at once rather
than queued."""
import threading

import gevent
from gevent import monkey


def off_the_loop(function, *args):
    if monkey.is_module_patched("threading"):
        return gevent.get_hub().threadpool.apply(function, args)
    return function(*args)


class Admission:
    """How many callers are inside; enter() admits one more only while fewer than `limit` are
    (the limit comes with each call, so it follows the app's config)."""

    def __init__(self):
        self._inside = 0
        self._lock = threading.Lock()

    def enter(self, limit: int) -> bool:
        with self._lock:
            if self._inside >= limit:
                return False
            self._inside += 1
            return True

    def leave(self):
        with self._lock:
            self._inside -= 1
