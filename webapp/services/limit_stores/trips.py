"""How both counter stores are asked: one trip at a time per process, each carrying what
waited meanwhile."""
import logging
import os
import threading
import time

from webapp.services.limit_stores.base import Check, Refusal, Unavailable

log = logging.getLogger(__name__)
FLUSH_SECONDS = 0.05  # how long a token correction or budget settlement waits for a trip


class _Waiting:
    """One operation waiting for the process's next trip: ("a", ticket, checks, holds,
    amount), an admission; ("r", ticket, subjects), a release of slots; None, only what is
    pending."""
    __slots__ = ("operation", "result", "ready", "lead")

    def __init__(self, operation: tuple | None):
        self.operation, self.result, self.ready, self.lead = operation, None, None, False


class TripStore:
    """A store asked in trips. A process sends one trip at a time (one transaction of the
    SQLite file, one script on Redis); what arrives while a trip is out goes together in the
    next one: admissions and slot releases (each caller waits for its own answer), and the
    pending token corrections and budget settlements of settled calls. Each operation of a trip
    is checked and counted as if alone, so limits stay exact.

    A token correction (real tokens minus the reservation) and a budget settlement (a call's
    holds replaced by its cost) make no trip of their own: the next trip carries them, before
    its admissions are checked, so this process's own next admission always sees them. When no
    trip goes within FLUSH_SECONDS, one goes for them alone; until then other processes still
    see the settled call's reservation and holds. If the store fails meanwhile, they are lost,
    as are those pending when a worker is killed; a worker that stops gracefully sends them
    (flush). Slot releases (max_parallel_requests) are never
    deferred: release() returns once the slots are free.

    A store says how to run one trip: _send(operations, corrections, settlements) returns, for
    each operation in order, (window, refusal) for an admission and None for a release."""

    def __init__(self):
        self._lock = threading.Lock()
        self._waiting: list[_Waiting] = []  # for the next trip
        self._leading = False  # a trip is out (its sender takes the next one too, or hands over)
        self._corrections: dict[tuple[str, int], int] = {}  # (subject, minute) -> tokens
        self._settlements: list[tuple] = []  # (budget, ticket, amount held, cost)
        self._flusher_pid, self._wake = None, None

    def admit(self, checks: list[Check], ticket: str, holds: tuple = (),
              amount: float = 0.0) -> tuple[int, Refusal | None]:
        """Count the call for every check and hold `amount` on every budget, or do none of it:
        (window, None) or (window, refusal)."""
        return self._trip(("a", ticket, checks, holds, float(amount)))

    def release(self, checks: list[Check], ticket: str, window: int, tokens: int,
                holds: tuple = (), cost: float = 0.0, held: float = 0.0):
        """Give back the call's slots, add `tokens` (real minus reserved) to its minute, and
        turn its budget holds (of `held` each, the amount admit() took) into its `cost`."""
        if tokens or holds:
            with self._lock:
                for check in checks if tokens else ():
                    if check.tpm is not None:
                        key = (check.subject, window)
                        self._corrections[key] = self._corrections.get(key, 0) + tokens
                self._settlements += [(hold.subject, ticket, float(held), float(cost))
                                      for hold in holds]
        slots = [check.subject for check in checks if check.parallel is not None]
        if slots:
            self._trip(("r", ticket, slots))  # carries the corrections too
        elif tokens or holds:
            self._flush_soon()

    def flush(self):
        """Send what is pending at once (a worker's graceful stop)."""
        if self._corrections or self._settlements:
            self._trip(None)

    def _send(self, operations: list, corrections: dict, settlements: list) -> list:
        raise NotImplementedError

    def _trip(self, operation: tuple | None):
        """Send the operation in the next trip and return its answer."""
        mine = _Waiting(operation)
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
        # let the calls that are ready to run (in a gevent worker, the greenlets woken with this
        # one) reach their admissions and settlements first, so that this trip carries them too
        mine.lead = True
        try:
            time.sleep(0)
        except BaseException:  # killed meanwhile: the next caller sends the trip
            self._abandon(mine)
            raise
        with self._lock:
            batch, self._waiting = self._waiting, []
            corrections, self._corrections = self._corrections, {}
            settlements, self._settlements = self._settlements, []
        answers = None
        try:
            answers = self._send([w.operation for w in batch if w.operation is not None],
                                 corrections, settlements)
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
        if isinstance(answers, Unavailable):
            for waiting in batch:
                waiting.result = answers
        else:
            results = iter(answers)
            for waiting in batch:
                if waiting.operation is not None:
                    waiting.result = next(results)
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

    def _flush_soon(self):
        """Make sure a trip goes within FLUSH_SECONDS to carry what is pending."""
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
                    log.debug("limits: token corrections and settlements lost (%s)", error)
