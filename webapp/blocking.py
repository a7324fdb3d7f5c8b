"""Work that holds one native call for long (argon2 password hashing, a batch of request-log
rows) runs where it cannot stall a gevent worker: in native threads (gevent's pool; password
hashing in threads of its own at the lowest CPU priority), while the worker's event loop goes on
serving every other connection. Under plain threads (gthread, the development server, the tests)
each request already has a thread of its own. Admission bounds how much of such work a process
takes on: beyond its limit a caller is refused at once rather than queued."""
import os
import sys
import threading

import gevent
from gevent import monkey
from gevent.threadpool import ThreadPool

# the kernel weighs a nice-19 thread 15 where the event loop's weighs 1024: with the cores busy
# the loop runs first, and a password check still progresses (bench/README.md, login flood)
NICE = 19


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


class LowPriority:
    """Native threads of their own, at the lowest CPU priority (nice 19), for long work that can
    wait while calls are served (password hashing): when the cores are busy the kernel runs the
    event loop, and with it every proxied call, first. Linux keeps a nice value per thread, and
    the threads argon2 starts for its lanes inherit it."""

    def __init__(self, threads: int):
        self.threads = threads
        self._pool = None

    def run(self, function, *args):
        if not monkey.is_module_patched("threading"):
            return function(*args)
        if self._pool is None:
            self._pool = ThreadPool(self.threads)
        return self._pool.apply(_lowered, (function, args))


def _lowered(function, args):
    if sys.platform.startswith("linux") and os.getpriority(os.PRIO_PROCESS, 0) < NICE:
        os.setpriority(os.PRIO_PROCESS, 0, NICE)  # this thread only
    return function(*args)
