"""Where the limit counters live: a SQLite file every worker of one machine shares (the embedded
default), or Redis (or Valkey) that every instance shares. Both check all of a call's subjects
and count them in one atomic step, so no two workers can both take the last place. On Redis
the replacing of a settled call's token reservation by its real tokens, and of its budget holds
by its cost, is deferred, by 50 ms at most (FLUSH_SECONDS; RedisStore says how); admissions and
slot releases never are.

Budgets are held there too: each budget a call falls under (a Hold: the subject and its budget
period) has a spend counter, started from the database's spend the first time the store sees
it, and the holds of the calls in flight (their estimated cost). A call is admitted while the
counter plus the holds stays below max_budget, in the same atomic step as the rate limits, and
its hold becomes its real cost when it ends. A counter left alone for BUDGET_KEEP seconds is
dropped and started again from the database."""
import hashlib
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)
LOCK_RETRY = 0.0002  # seconds between attempts while another worker holds the file's write lock
LOCK_PATIENCE = 5.0  # seconds before a locked file counts as unavailable
BUDGET_KEEP = 86400  # seconds a budget's counter outlives its last call


@dataclass(frozen=True)
class Check:
    """One subject's limits for one call (None: not limited) and its token reservation."""
    subject: str  # "key:<sha256>" or "team:<id>"
    rpm: int | None
    parallel: int | None
    tpm: int | None
    estimate: int = 0


@dataclass(frozen=True)
class Hold:
    """One budget a call falls under: its counter ("key:<sha256>:<period>", ...), its
    max_budget and the spend the database has for it (the counter's start when it has none)."""
    subject: str
    max_budget: float
    spend: float


@dataclass(frozen=True)
class Refusal:
    index: int  # which check (or, for "budget", which hold) refused
    limit: str  # "rpm", "tpm", "parallel" or "budget"
    retry_after: int
    spent: float = 0.0  # a budget's spend and holds when it refused


class Unavailable(Exception):
    """The store could not be asked (Redis down, file locked too long)."""


class SQLiteStore:
    """Counters in one SQLite file (WAL, no fsync: they matter for a minute, not across a power
    cut). A process holds one connection; BEGIN IMMEDIATE makes check-and-count one step across
    processes. Parallel slots carry an expiry, so a killed worker's slots stop counting."""

    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS minute (subject TEXT NOT NULL, window INTEGER NOT NULL, "
        "requests INTEGER NOT NULL, tokens INTEGER NOT NULL, PRIMARY KEY (subject, window)) "
        "WITHOUT ROWID",
        "CREATE TABLE IF NOT EXISTS slot (subject TEXT NOT NULL, ticket TEXT NOT NULL, "
        "expires REAL NOT NULL, PRIMARY KEY (subject, ticket)) WITHOUT ROWID",
        "CREATE TABLE IF NOT EXISTS budget (subject TEXT PRIMARY KEY, spend REAL NOT NULL, "
        "expires REAL NOT NULL) WITHOUT ROWID",
        "CREATE TABLE IF NOT EXISTS budget_hold (subject TEXT NOT NULL, ticket TEXT NOT NULL, "
        "amount REAL NOT NULL, expires REAL NOT NULL, PRIMARY KEY (subject, ticket)) "
        "WITHOUT ROWID",
    )

    def __init__(self, path: str, slot_seconds: float):
        self.path, self.slot_seconds = path, slot_seconds
        self._lock = threading.Lock()
        self._connection = None
        self._pid = None
        self._swept = 0

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None or self._pid != os.getpid():  # never share one over a fork
            connection = sqlite3.connect(self.path, timeout=LOCK_PATIENCE, isolation_level=None,
                                         check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=OFF")
            for statement in self.SCHEMA:
                connection.execute(statement)
            connection.execute("PRAGMA busy_timeout=0")  # waits happen in _transaction, see there
            self._connection, self._pid = connection, os.getpid()
        return self._connection

    def _transaction(self, work):
        """work(connection) inside BEGIN IMMEDIATE ... COMMIT, the process's lock held.
        SQLite's own busy handler sleeps at least 1 ms and holds up every greenlet of a gevent
        worker meanwhile; here a locked file is tried again after a short sleep, taken without
        the lock held so that no greenlet waits on one that sleeps."""
        deadline = time.monotonic() + LOCK_PATIENCE
        while True:
            with self._lock:
                connection = self._connect()
                try:
                    connection.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as error:
                    if "locked" not in str(error) or time.monotonic() > deadline:
                        raise Unavailable(str(error)) from None
                else:
                    try:
                        result = work(connection)
                        connection.execute("COMMIT")
                    except BaseException:
                        connection.execute("ROLLBACK")
                        raise
                    return result
            time.sleep(LOCK_RETRY)

    def admit(self, checks: list[Check], ticket: str, holds: tuple = (),
              amount: float = 0.0) -> tuple[int, Refusal | None]:
        """Count the call for every check and hold `amount` on every budget, or do none of it:
        (window, None) or (window, refusal)."""
        now = time.time()
        window = int(now // 60)

        def work(connection):
            refusal = (self._refusal(connection, checks, window, now)
                       or self._budget_refusal(connection, holds, now))
            if refusal is None:
                self._count(connection, checks, window, ticket, now)
                for hold in holds:
                    connection.execute("INSERT OR REPLACE INTO budget_hold VALUES (?, ?, ?, ?)",
                                       (hold.subject, ticket, amount, now + self.slot_seconds))
            if window != self._swept:
                self._swept = window
                connection.execute("DELETE FROM minute WHERE window < ?", (window - 1,))
                connection.execute("DELETE FROM slot WHERE expires < ?", (now,))
                connection.execute("DELETE FROM budget_hold WHERE expires < ?", (now,))
                connection.execute("DELETE FROM budget WHERE expires < ?", (now,))
            return window, refusal

        return self._transaction(work)

    def _refusal(self, connection, checks, window, now) -> Refusal | None:
        for index, check in enumerate(checks):
            if check.rpm is not None or check.tpm is not None:
                row = connection.execute("SELECT requests, tokens FROM minute WHERE subject = ? "
                                         "AND window = ?", (check.subject, window)).fetchone()
                requests, tokens = row or (0, 0)
                retry = max(1, int(60 - now % 60))
                if check.rpm is not None and requests >= check.rpm:
                    return Refusal(index, "rpm", retry)
                if check.tpm is not None and tokens + check.estimate > check.tpm:
                    return Refusal(index, "tpm", retry)
            if check.parallel is not None:
                held, = connection.execute("SELECT count(*) FROM slot WHERE subject = ? AND "
                                           "expires > ?", (check.subject, now)).fetchone()
                if held >= check.parallel:
                    return Refusal(index, "parallel", 1)
        return None

    @staticmethod
    def _budget_refusal(connection, holds, now) -> Refusal | None:
        for index, hold in enumerate(holds):
            row = connection.execute("SELECT spend FROM budget WHERE subject = ? AND "
                                     "expires > ?", (hold.subject, now)).fetchone()
            if row is None:
                connection.execute("INSERT OR REPLACE INTO budget VALUES (?, ?, ?)",
                                   (hold.subject, hold.spend, now + BUDGET_KEEP))
                spent = hold.spend
            else:
                spent = row[0]
            held, = connection.execute("SELECT coalesce(sum(amount), 0) FROM budget_hold WHERE "
                                       "subject = ? AND expires > ?",
                                       (hold.subject, now)).fetchone()
            if spent + held >= hold.max_budget:
                return Refusal(index, "budget", 0, spent + held)
        return None

    def _count(self, connection, checks, window, ticket, now):
        for check in checks:
            if check.rpm is not None or check.tpm is not None:
                connection.execute(
                    "INSERT INTO minute VALUES (?, ?, 1, ?) ON CONFLICT (subject, window) DO "
                    "UPDATE SET requests = requests + 1, tokens = tokens + excluded.tokens",
                    (check.subject, window, check.estimate))
            if check.parallel is not None:
                connection.execute("INSERT OR REPLACE INTO slot VALUES (?, ?, ?)",
                                   (check.subject, ticket, now + self.slot_seconds))

    def release(self, checks: list[Check], ticket: str, window: int, tokens: int,
                holds: tuple = (), cost: float = 0.0):
        """Give back the call's slots, add `tokens` (real minus reserved) to its minute, and
        turn its budget holds into its `cost`."""
        def work(connection):
            for hold in holds:
                connection.execute("DELETE FROM budget_hold WHERE subject = ? AND ticket = ?",
                                   (hold.subject, ticket))
                if cost:
                    connection.execute("UPDATE budget SET spend = spend + ?, expires = ? WHERE "
                                       "subject = ?", (cost, time.time() + BUDGET_KEEP,
                                                       hold.subject))
            for check in checks:
                if check.parallel is not None:
                    connection.execute("DELETE FROM slot WHERE subject = ? AND ticket = ?",
                                       (check.subject, ticket))
                if tokens and check.tpm is not None:
                    connection.execute(
                        "UPDATE minute SET tokens = max(0, tokens + ?) WHERE subject = ? "
                        "AND window = ?", (tokens, check.subject, window))

        self._transaction(work)


# One script carries everything a trip to Redis brings. KEYS: none (the minute's keys are named
# from Redis's own clock, so instances whose clocks differ still share one window). ARGV: slot
# ms, budget keep seconds; the number of token corrections, then three each: subject, window,
# tokens to add; the number of budget settlements, then three each: budget, ticket, cost; then
# operations, each "a" (an admission: ticket, number of checks, number of holds, the amount to
# hold, then five per check: subject, rpm, parallel, tpm, estimate, -1 for not limited, then
# three per hold: budget, max_budget, the database's spend) or "r" (a release of a call's
# slots: ticket, number of subjects, the subjects). Returns {window, seconds left in the
# minute}, then for each admission in order {refused check or hold (1-based) or 0, limit, a
# refusing budget's spend and holds, or ''}.
TRIP = """
local t = redis.call('TIME')
local seconds = tonumber(t[1])
local now = seconds * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = math.floor(seconds / 60)
local left = 60 - seconds % 60
local slot_ms = tonumber(ARGV[1])
local keep = tonumber(ARGV[2])
local i = 4
for _ = 1, tonumber(ARGV[3]) do
  local minute = 'teamgate:minute:' .. ARGV[i] .. ':' .. ARGV[i + 1]
  if redis.call('EXISTS', minute) == 1 then
    redis.call('HINCRBY', minute, 'tokens', tonumber(ARGV[i + 2]))
  end
  i = i + 3
end
local settlements = tonumber(ARGV[i])
i = i + 1
for _ = 1, settlements do
  local budget = 'teamgate:budget:' .. ARGV[i]
  redis.call('ZREM', budget .. ':holds', ARGV[i + 1])
  redis.call('HDEL', budget .. ':amounts', ARGV[i + 1])
  if ARGV[i + 2] ~= '0' and redis.call('EXISTS', budget) == 1 then
    redis.call('INCRBYFLOAT', budget, ARGV[i + 2])
    redis.call('EXPIRE', budget, keep)
  end
  i = i + 3
end
local out = {window, left}
while i <= #ARGV do
  local op, ticket, n = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  i = i + 3
  if op == 'r' then
    for k = i, i + n - 1 do redis.call('ZREM', 'teamgate:slots:' .. ARGV[k], ticket) end
    i = i + n
  else
    local holds, amount = tonumber(ARGV[i]), ARGV[i + 1]
    i = i + 2
    local first_hold = i + n * 5
    local refused, limit, spent = 0, '', ''
    for k = 0, n - 1 do
      local b = i + k * 5
      local subject = ARGV[b]
      local rpm, par, tpm = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
      if rpm >= 0 or tpm >= 0 then
        local counts = redis.call('HMGET', 'teamgate:minute:' .. subject .. ':' .. window,
                                  'requests', 'tokens')
        if rpm >= 0 and tonumber(counts[1] or 0) >= rpm then
          refused, limit = k + 1, 'rpm'
        elseif tpm >= 0 and tonumber(counts[2] or 0) + tonumber(ARGV[b + 4]) > tpm then
          refused, limit = k + 1, 'tpm'
        end
      end
      if refused == 0 and par >= 0 then
        local slots = 'teamgate:slots:' .. subject
        redis.call('ZREMRANGEBYSCORE', slots, '-inf', now)
        if redis.call('ZCARD', slots) >= par then refused, limit = k + 1, 'parallel' end
      end
      if refused ~= 0 then break end
    end
    for h = 0, (refused == 0 and holds or 0) - 1 do
      local b = first_hold + h * 3
      local budget = 'teamgate:budget:' .. ARGV[b]
      local counted = redis.call('GET', budget)
      if not counted then
        counted = ARGV[b + 2]
        redis.call('SET', budget, counted, 'EX', keep)
      end
      local expired = redis.call('ZRANGEBYSCORE', budget .. ':holds', '-inf', now)
      for _, gone in ipairs(expired) do redis.call('HDEL', budget .. ':amounts', gone) end
      redis.call('ZREMRANGEBYSCORE', budget .. ':holds', '-inf', now)
      local total = tonumber(counted)
      for _, held in ipairs(redis.call('HVALS', budget .. ':amounts')) do
        total = total + tonumber(held)
      end
      if total >= tonumber(ARGV[b + 1]) then
        refused, limit, spent = h + 1, 'budget', tostring(total)
        break
      end
    end
    if refused == 0 then
      for k = 0, n - 1 do
        local b = i + k * 5
        local subject = ARGV[b]
        if tonumber(ARGV[b + 1]) >= 0 or tonumber(ARGV[b + 3]) >= 0 then
          local minute = 'teamgate:minute:' .. subject .. ':' .. window
          redis.call('HINCRBY', minute, 'requests', 1)
          redis.call('HINCRBY', minute, 'tokens', tonumber(ARGV[b + 4]))
          redis.call('EXPIRE', minute, 120)
        end
        if tonumber(ARGV[b + 2]) >= 0 then
          local slots = 'teamgate:slots:' .. subject
          redis.call('ZADD', slots, now + slot_ms, ticket)
          redis.call('PEXPIRE', slots, slot_ms)
        end
      end
      for h = 0, holds - 1 do
        local budget = 'teamgate:budget:' .. ARGV[first_hold + h * 3]
        redis.call('ZADD', budget .. ':holds', now + slot_ms, ticket)
        redis.call('HSET', budget .. ':amounts', ticket, amount)
        redis.call('PEXPIRE', budget .. ':holds', slot_ms)
        redis.call('PEXPIRE', budget .. ':amounts', slot_ms)
      end
    end
    out[#out + 1] = refused
    out[#out + 1] = limit
    out[#out + 1] = spent
    i = first_hold + holds * 3
  end
end
return out
"""
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
