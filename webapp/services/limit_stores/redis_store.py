"""The counter store every instance shares: a single Redis or Valkey server."""
import hashlib
import logging
import os
import threading
import time
from pathlib import Path

from webapp.services.limit_stores.base import BUDGET_KEEP, Check, Refusal, Unavailable

log = logging.getLogger(__name__)
TRIP = (Path(__file__).parent / "trip.lua").read_text()  # what its comment says it takes
TRIP_SHA = hashlib.sha1(TRIP.encode()).hexdigest()
FLUSH_SECONDS = 0.05  # how long a token correction waits for a trip to carry it, at most


def _limit(value) -> int:
    return -1 if value is None else int(value)


class _Waiting:
    """One operation waiting for the process's next trip to Redis."""
    __slots__ = ("args", "result", "ready", "lead")

    def __init__(self, args: list | None):
        self.args, self.result, self.ready, self.lead = args, None, None, False


class RedisStore:
    """Counters on a single Redis or Valkey server, shared by every instance.

    Each process holds one connection and sends one script at a time over it (a trip); the
    script is atomic on the server, so every admission it carries is checked and counted as if
    alone, and limits stay exact across workers and instances. What waits while a trip is out
    goes together in the next one: admissions and slot releases that arrive meanwhile (each
    caller waits for its own answer), and the token corrections of settled calls.

    A token correction (real tokens minus the reservation) does not make a trip of its own: it
    is added to the process's pending corrections (one sum per subject and minute), which the
    next trip carries, before that trip's admissions are checked; so is a budget settlement
    (a call's holds replaced by its cost). When no trip goes within
    FLUSH_SECONDS (50 ms), one goes for the corrections alone. So for at most FLUSH_SECONDS
    (plus one trip's time) other processes still see a settled call's reservation instead of
    its real tokens; this process's own next admission always sees them. If Redis fails in
    that time the corrections it carried are lost, as are those pending when a worker exits.
    Slot releases (max_parallel_requests) are never deferred: settle() returns once Redis has
    removed the slots.

    Slots expire after slot_seconds, so a crashed worker's slots stop counting."""

    def __init__(self, url: str, slot_seconds: float, timeout: float):
        import redis  # only deployments that set REDIS_URL need the client loaded
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self._errors = (redis.RedisError, OSError)
        self._connection_error = redis.ConnectionError
        self._no_script = redis.exceptions.NoScriptError
        # connecting is tried twice at once, never with backoff (redis-py's default would hold
        # every call up while Redis is down)
        self._pool = redis.ConnectionPool.from_url(url, socket_timeout=timeout,
                                                   socket_connect_timeout=timeout,
                                                   retry=Retry(NoBackoff(), 1))
        self.slot_ms = int(slot_seconds * 1000)
        self._connection, self._pid = None, None
        self._lock = threading.Lock()
        self._waiting: list[_Waiting] = []  # for the next trip
        self._leading = False  # a trip is out (its sender takes the next one too, or hands over)
        self._corrections: dict[tuple[str, int], int] = {}
        self._settlements: list[tuple[str, str, str]] = []  # (budget, ticket, cost)
        self._flusher_pid, self._wake = None, None

    def admit(self, checks: list[Check], ticket: str, holds: tuple = (),
              amount: float = 0.0) -> tuple[int, Refusal | None]:
        args = ["a", ticket, len(checks), len(holds), repr(float(amount))]
        for check in checks:
            args += [check.subject, _limit(check.rpm), _limit(check.parallel), _limit(check.tpm),
                     check.estimate]
        for hold in holds:
            args += [hold.subject, repr(float(hold.max_budget)), repr(float(hold.spend))]
        index, limit, spent, window, left = self._trip(args)
        if not index:
            return int(window), None
        if limit == b"budget":
            return int(window), Refusal(int(index) - 1, "budget", 0, float(spent))
        return int(window), Refusal(int(index) - 1, limit.decode(), max(1, int(left)))

    def release(self, checks: list[Check], ticket: str, window: int, tokens: int,
                holds: tuple = (), cost: float = 0.0):
        if tokens or holds:
            with self._lock:
                for check in checks if tokens else ():
                    if check.tpm is not None:
                        key = (check.subject, window)
                        self._corrections[key] = self._corrections.get(key, 0) + tokens
                spent = repr(float(cost)) if cost else "0"
                self._settlements += [(hold.subject, ticket, spent) for hold in holds]
        slots = [check.subject for check in checks if check.parallel is not None]
        if slots:
            self._trip(["r", ticket, len(slots), *slots])  # carries the corrections too
        elif tokens or holds:
            self._flush_soon()

    def _trip(self, args: list | None):
        """Send args (an operation, None: only the pending corrections) in the next trip and
        return its answer: (refused, limit, window, left) for an admission."""
        mine = _Waiting(args)
        with self._lock:
            self._waiting.append(mine)
            follow = self._leading
            if follow:
                mine.ready = threading.Event()
            else:
                self._leading = True
        if follow:
            try:
                mine.ready.wait()
            except BaseException:  # killed while waiting (a worker's shutdown)
                self._abandon(mine)
                raise
            if not mine.lead:
                if isinstance(mine.result, Unavailable):
                    raise mine.result
                return mine.result
        with self._lock:
            batch, self._waiting = self._waiting, []
            corrections, self._corrections = self._corrections, {}
            settlements, self._settlements = self._settlements, []
        answers = None
        try:
            answers = self._send(batch, corrections, settlements)
        except Unavailable as error:
            answers = error
        finally:
            if answers is None:  # something else went wrong: nobody must wait for ever
                answers = Unavailable("trip failed")
            self._answer(batch, answers)
        if isinstance(mine.result, Unavailable):
            raise mine.result
        return mine.result

    def _answer(self, batch: list[_Waiting], answers):
        position = 2
        for waiting in batch:
            if isinstance(answers, Unavailable):
                waiting.result = answers
            elif waiting.args is not None and waiting.args[0] == "a":
                waiting.result = (answers[position], answers[position + 1],
                                  answers[position + 2], answers[0], answers[1])
                position += 3
        with self._lock:
            successor = self._waiting[0] if self._waiting else None
            if successor is None:
                self._leading = False
            else:
                successor.lead = True  # what arrived during this trip goes in the next
        for waiting in batch:
            if waiting.ready is not None:
                waiting.ready.set()
        if successor is not None:
            successor.ready.set()

    def _abandon(self, mine: _Waiting):
        """A caller that stops waiting: unsent, its operation is dropped; handed the next trip,
        it hands it on."""
        with self._lock:
            if mine not in self._waiting:
                return  # out in a trip already
            self._waiting.remove(mine)
            if not mine.lead:
                return
            successor = self._waiting[0] if self._waiting else None
            if successor is None:
                self._leading = False
            else:
                successor.lead = True
        if successor is not None:
            successor.ready.set()

    def _send(self, batch: list[_Waiting], corrections: dict, settlements: list) -> list:
        args = [self.slot_ms, BUDGET_KEEP, len(corrections)]
        for (subject, window), tokens in corrections.items():
            args += [subject, window, tokens]
        args.append(len(settlements))
        for settlement in settlements:
            args += settlement
        for waiting in batch:
            if waiting.args is not None:
                args += waiting.args
        try:
            try:
                return self._run(args)
            except self._connection_error:  # a connection Redis closed (a restart): once more
                return self._run(args)
        except self._errors as error:
            raise Unavailable(type(error).__name__) from None

    def _run(self, args: list) -> list:
        if self._connection is None or self._pid != os.getpid():  # never share one over a fork
            self._connection, self._pid = self._pool.make_connection(), os.getpid()
        connection = self._connection
        connection.send_command("EVALSHA", TRIP_SHA, 0, *args)
        try:
            return connection.read_response()
        except self._no_script:  # a Redis that has not seen the script yet (or restarted)
            connection.send_command("EVAL", TRIP, 0, *args)
            return connection.read_response()

    def _flush_soon(self):
        """Make sure a trip goes within FLUSH_SECONDS to carry the pending corrections."""
        if self._flusher_pid != os.getpid():
            with self._lock:
                if self._flusher_pid != os.getpid():
                    self._wake = threading.Event()
                    threading.Thread(target=self._flush, args=(self._wake,), daemon=True,
                                     name="teamgate-limits-flush").start()
                    self._flusher_pid = os.getpid()
        self._wake.set()

    def _flush(self, wake):
        while True:
            wake.wait()
            time.sleep(FLUSH_SECONDS)
            wake.clear()
            if self._corrections or self._settlements:  # an admission may have carried them
                try:
                    self._trip(None)
                except Unavailable as error:
                    log.debug("limits: token corrections lost (%s)", error)
