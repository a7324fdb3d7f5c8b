"""Work that holds one native call for long (argon2 password hashing, a batch of request-log
rows, a login counter's write) runs where it cannot stall a gevent worker: in native threads
(gevent's pool, or a few of its own), while the worker's event loop goes on serving every other
connection. Under plain threads (gthread, the development server, the tests) each request
already has a thread of its own. Admission bounds how much of such work a process takes on:
beyond its limit a caller is refused at once rather than queued, and hold_connection keeps a
refused client from coming straight back."""
import os
import sys
import threading

import gevent
from gevent import monkey
from gevent.threadpool import ThreadPool

# the kernel weighs a nice-19 thread 15 where the event loop's weighs 1024: with the cores busy
# the loop runs first, and a password check still progresses (bench/README.md, login flood)
LOWEST_PRIORITY = 19


def off_the_loop(function, *args):
    if monkey.is_module_patched("threading"):
        return gevent.get_hub().threadpool.apply(function, args)
    return function(*args)


def hold_connection(response, seconds: float):
    """Under gevent, keep the client's connection from its next request for `seconds` after
    `response` has gone (at once): a client refused for a while cannot come straight back on the
    same connection and keep the event loop busy answering it. A waiting greenlet costs nothing;
    under threads a thread would wait, so there nothing is held."""
    if monkey.is_module_patched("threading"):
        response.call_on_close(lambda: gevent.sleep(seconds))
    return response


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


class NativeThreads:
    """A few native threads of their own for one kind of call, so that it neither waits for nor
    fills gevent's shared pool, which also resolves host names for new upstream connections and
    writes the request log. With `nice`, at that CPU priority (password hashing takes the lowest:
    when the cores are busy the kernel runs the event loop, and with it every proxied call, first;
    Linux keeps a nice value per thread, and the threads argon2 starts for its lanes inherit it)."""

    def __init__(self, threads: int, nice: int = 0):
        self.threads = threads
        self.nice = nice
        self._pool = None

    def run(self, function, *args):
        if not monkey.is_module_patched("threading"):
            return function(*args)
        if self._pool is None:
            self._pool = ThreadPool(self.threads)
        return self._pool.apply(self._call, (function, args))

    def _call(self, function, args):
        if (self.nice and sys.platform.startswith("linux")
                and os.getpriority(os.PRIO_PROCESS, 0) < self.nice):
            os.setpriority(os.PRIO_PROCESS, 0, self.nice)  # this thread only
        return function(*args)
