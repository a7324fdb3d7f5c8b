"""Where the limit counters live: a SQLite file every worker of one machine shares (the embedded
default), or Redis (or Valkey) that every instance shares. Both check all of a call's subjects
and count them in one atomic step, so no two workers can both take the last place.

Budgets are held there too: each budget a call falls under (a Hold: the subject and its budget
period) has a spend counter, started from the database's spend the first time the store sees
it, and the holds of the calls in flight (their estimated cost). A call is admitted while the
counter plus the holds stays below max_budget, in the same atomic step as the rate limits, and
its hold becomes its real cost when it ends. A counter left alone for BUDGET_KEEP seconds is
dropped and started again from the database."""
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
    spent: float = 0.0  # a budget's spend when it refused


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
                return Refusal(index, "budget", 0, spent)
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


# KEYS: none (the minute's keys are named from Redis's own clock, so instances whose clocks
# differ still share one window). ARGV: ticket, slot ms, number of checks, the amount to hold,
# budget keep seconds, then five per check: subject, rpm, parallel, tpm, estimate (-1: not
# limited), then three per hold: subject, max_budget, the database's spend. Returns {refused
# check or hold (1-based) or 0, limit, window, seconds left in the minute, a budget's spend}.
ADMIT = """
local t = redis.call('TIME')
local seconds = tonumber(t[1])
local now = seconds * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = math.floor(seconds / 60)
local left = 60 - seconds % 60
local n = tonumber(ARGV[3])
local first_hold = 6 + n * 5
for i = 0, n - 1 do
  local b = 6 + i * 5
  local subject = ARGV[b]
  local rpm, par, tpm = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  if rpm >= 0 or tpm >= 0 then
    local counts = redis.call('HMGET', 'teamgate:minute:' .. subject .. ':' .. window,
                              'requests', 'tokens')
    if rpm >= 0 and tonumber(counts[1] or 0) >= rpm then return {i + 1, 'rpm', window, left} end
    if tpm >= 0 and tonumber(counts[2] or 0) + tonumber(ARGV[b + 4]) > tpm then
      return {i + 1, 'tpm', window, left}
    end
  end
  if par >= 0 then
    local slots = 'teamgate:slots:' .. subject
    redis.call('ZREMRANGEBYSCORE', slots, '-inf', now)
    if redis.call('ZCARD', slots) >= par then return {i + 1, 'parallel', window, 1} end
  end
end
for b = first_hold, #ARGV, 3 do
  local counter = 'teamgate:budget:' .. ARGV[b]
  local spent = redis.call('GET', counter)
  if not spent then
    spent = ARGV[b + 2]
    redis.call('SET', counter, spent, 'EX', tonumber(ARGV[5]))
  end
  local holds = counter .. ':holds'
  for _, gone in ipairs(redis.call('ZRANGEBYSCORE', holds, '-inf', now)) do
    redis.call('HDEL', holds .. ':amounts', gone)
  end
  redis.call('ZREMRANGEBYSCORE', holds, '-inf', now)
  local total = tonumber(spent)
  for _, amount in ipairs(redis.call('HVALS', holds .. ':amounts')) do
    total = total + tonumber(amount)
  end
  if total >= tonumber(ARGV[b + 1]) then
    return {(b - first_hold) / 3 + 1, 'budget', window, 0, spent}
  end
end
for i = 0, n - 1 do
  local b = 6 + i * 5
  local subject = ARGV[b]
  if tonumber(ARGV[b + 1]) >= 0 or tonumber(ARGV[b + 3]) >= 0 then
    local minute = 'teamgate:minute:' .. subject .. ':' .. window
    redis.call('HINCRBY', minute, 'requests', 1)
    redis.call('HINCRBY', minute, 'tokens', tonumber(ARGV[b + 4]))
    redis.call('EXPIRE', minute, 120)
  end
  if tonumber(ARGV[b + 2]) >= 0 then
    local slots = 'teamgate:slots:' .. subject
    redis.call('ZADD', slots, now + tonumber(ARGV[2]), ARGV[1])
    redis.call('PEXPIRE', slots, tonumber(ARGV[2]))
  end
end
for b = first_hold, #ARGV, 3 do
  local holds = 'teamgate:budget:' .. ARGV[b] .. ':holds'
  redis.call('ZADD', holds, now + tonumber(ARGV[2]), ARGV[1])
  redis.call('HSET', holds .. ':amounts', ARGV[1], ARGV[4])
  redis.call('PEXPIRE', holds, tonumber(ARGV[2]))
  redis.call('PEXPIRE', holds .. ':amounts', tonumber(ARGV[2]))
end
return {0, '', window, left}
"""
# ARGV: ticket, window, tokens to add, number of checks, cost, budget keep seconds, then two
# per check: subject, flags ("p": parallel slot, "t": tokens counted), then each hold's subject
RELEASE = """
local delta = tonumber(ARGV[3])
local last_check = 6 + tonumber(ARGV[4]) * 2
for b = 7, last_check, 2 do
  local flags = ARGV[b + 1]
  if string.find(flags, 'p') then redis.call('ZREM', 'teamgate:slots:' .. ARGV[b], ARGV[1]) end
  if delta ~= 0 and string.find(flags, 't') then
    local minute = 'teamgate:minute:' .. ARGV[b] .. ':' .. ARGV[2]
    if redis.call('EXISTS', minute) == 1 then redis.call('HINCRBY', minute, 'tokens', delta) end
  end
end
for b = last_check + 1, #ARGV do
  local counter = 'teamgate:budget:' .. ARGV[b]
  redis.call('ZREM', counter .. ':holds', ARGV[1])
  redis.call('HDEL', counter .. ':holds:amounts', ARGV[1])
  if ARGV[5] ~= '0' and redis.call('EXISTS', counter) == 1 then
    redis.call('INCRBYFLOAT', counter, ARGV[5])
    redis.call('EXPIRE', counter, tonumber(ARGV[6]))
  end
end
return 0
"""


def _limit(value) -> int:
    return -1 if value is None else int(value)


class RedisStore:
    """Counters on a single Redis or Valkey server, shared by every instance; each admission and
    each release is one Lua script, so it is atomic on the server. Slots expire after
    slot_seconds, so a crashed worker's slots stop counting."""

    def __init__(self, url: str, slot_seconds: float, timeout: float):
        import redis  # only deployments that set REDIS_URL need the client loaded
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self._errors = (redis.RedisError, OSError)
        # one immediate retry replaces a pooled connection Redis closed (a restart); more, with
        # backoff (redis-py's default), would hold every call up while Redis is down
        self._client = redis.Redis.from_url(url, socket_timeout=timeout,
                                            socket_connect_timeout=timeout,
                                            retry=Retry(NoBackoff(), 1))
        self._admit = self._client.register_script(ADMIT)
        self._release = self._client.register_script(RELEASE)
        self.slot_ms = int(slot_seconds * 1000)

    def admit(self, checks: list[Check], ticket: str, holds: tuple = (),
              amount: float = 0.0) -> tuple[int, Refusal | None]:
        args = [ticket, self.slot_ms, len(checks), repr(float(amount)), BUDGET_KEEP]
        for check in checks:
            args += [check.subject, _limit(check.rpm), _limit(check.parallel), _limit(check.tpm),
                     check.estimate]
        for hold in holds:
            args += [hold.subject, repr(float(hold.max_budget)), repr(float(hold.spend))]
        try:
            answer = self._admit(args=args)
        except self._errors as error:
            raise Unavailable(type(error).__name__) from None
        index, limit, window, left = answer[:4]
        if not index:
            return int(window), None
        if limit == b"budget":
            return int(window), Refusal(int(index) - 1, "budget", 0, float(answer[4]))
        return int(window), Refusal(int(index) - 1, limit.decode(), max(1, int(left)))

    def release(self, checks: list[Check], ticket: str, window: int, tokens: int,
                holds: tuple = (), cost: float = 0.0):
        args = [ticket, window, tokens, len(checks), repr(float(cost)) if cost else "0",
                BUDGET_KEEP]
        for check in checks:
            args += [check.subject, ("p" if check.parallel is not None else "")
                     + ("t" if check.tpm is not None else "")]
        args += [hold.subject for hold in holds]
        try:
            self._release(args=args)
        except self._errors as error:
            raise Unavailable(type(error).__name__) from None
