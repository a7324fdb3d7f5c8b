"""The counter store every instance shares: a single Redis or Valkey server."""
import hashlib
import os
from pathlib import Path

from webapp.services.limit_stores.base import BUDGET_KEEP, Refusal, Unavailable
from webapp.services.limit_stores.trips import TripStore

TRIP = (Path(__file__).parent / "trip.lua").read_text()  # what its comment says it takes
TRIP_SHA = hashlib.sha1(TRIP.encode()).hexdigest()


def _limit(value) -> int:
    return -1 if value is None else int(value)


class RedisStore(TripStore):
    """Counters on a single Redis or Valkey server, shared by every instance.

    Each process holds one connection and sends one script at a time over it (a trip, see
    TripStore); the script is atomic on the server, so every admission it carries is checked
    and counted as if alone, and limits stay exact across workers and instances. Slots and
    budget holds expire after slot_seconds, so a crashed worker's slots and
    holds stop counting."""

    def __init__(self, url: str, slot_seconds: float, timeout: float):
        import redis  # only deployments that set REDIS_URL need the client loaded
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        super().__init__()
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

    def _send(self, operations: list, corrections: dict, settlements: list) -> list:
        args = [self.slot_ms, BUDGET_KEEP, len(corrections)]
        for (subject, window), tokens in corrections.items():
            args += [subject, window, tokens]
        args.append(len(settlements))
        for budget, ticket, held, cost in settlements:
            args += [budget, ticket, repr(held), repr(cost) if cost else "0"]
        for operation in operations:
            if operation[0] == "r":
                _, ticket, slots = operation
                args += ["r", ticket, len(slots), *slots]
                continue
            _, ticket, checks, holds, amount = operation
            args += ["a", ticket, len(checks), len(holds), repr(amount)]
            for check in checks:
                args += [check.subject, _limit(check.rpm), _limit(check.parallel),
                         _limit(check.tpm), check.estimate]
            for hold in holds:
                args += [hold.subject, repr(float(hold.max_budget)), repr(float(hold.spend))]
        try:
            try:
                answer = self._run(args)
            except self._connection_error:  # a connection Redis closed (a restart): once more
                answer = self._run(args)
        except self._errors as error:
            raise Unavailable(type(error).__name__) from None
        window, left, position, results = int(answer[0]), answer[1], 2, []
        for operation in operations:
            if operation[0] == "r":
                results.append(None)
                continue
            index, limit, spent, held = answer[position:position + 4]
            position += 4
            if not index:
                results.append((window, None))
            elif limit == b"budget":
                refusal = Refusal(int(index) - 1, "budget", 0, float(spent), float(held))
                results.append((window, refusal))
            else:
                results.append((window, Refusal(int(index) - 1, limit.decode(),
                                                max(1, int(left)))))
        return results

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
