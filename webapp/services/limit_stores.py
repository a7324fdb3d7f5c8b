"""Where the limit counters live: a SQLite file every worker of one machine shares (the embedded
default), or Redis (or Valkey) that every instance shares. Both check all of a call's subjects
and count them in one atomic step, so no two workers can both take the last place."""
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)
LOCK_RETRY = 0.0002  # seconds between attempts while another worker holds the file's write lock
LOCK_PATIENCE = 5.0  # seconds before a locked file counts as unavailable


@dataclass(frozen=True)
class Check:
    """One subject's limits for one call (None: not limited) and its token reservation."""
    subject: str  # "key:<sha256>" or "team:<id>"
    rpm: int | None
    parallel: int | None
    tpm: int | None
    estimate: int = 0


@dataclass(frozen=True)
class Refusal:
    index: int  # which check refused
    limit: str  # "rpm", "tpm" or "parallel"
    retry_after: int


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

    def admit(self, checks: list[Check], ticket: str) -> tuple[int, Refusal | None]:
        """Count the call for every check, or for none: (window, None) or (window, refusal)."""
        now = time.time()
        window = int(now // 60)

        def work(connection):
            refusal = self._refusal(connection, checks, window, now)
            if refusal is None:
                self._count(connection, checks, window, ticket, now)
            if window != self._swept:
                self._swept = window
                connection.execute("DELETE FROM minute WHERE window < ?", (window - 1,))
                connection.execute("DELETE FROM slot WHERE expires < ?", (now,))
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

    def release(self, checks: list[Check], ticket: str, window: int, tokens: int):
        """Give back the call's slots and add `tokens` (real minus reserved) to its minute."""
        def work(connection):
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
# differ still share one window). ARGV: ticket, slot ms, then five per check: subject, rpm,
# parallel, tpm, estimate (-1: not limited). Returns {refused check (1-based) or 0, limit,
# window, seconds left in the minute}.
ADMIT = """
local t = redis.call('TIME')
local seconds = tonumber(t[1])
local now = seconds * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = math.floor(seconds / 60)
local left = 60 - seconds % 60
local n = (#ARGV - 2) / 5
for i = 0, n - 1 do
  local b = 3 + i * 5
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
for i = 0, n - 1 do
  local b = 3 + i * 5
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
return {0, '', window, left}
"""
# ARGV: ticket, window, tokens to add, then two per check: subject, flags ("p": parallel slot,
# "t": tokens counted)
RELEASE = """
local delta = tonumber(ARGV[3])
for b = 4, #ARGV, 2 do
  local flags = ARGV[b + 1]
  if string.find(flags, 'p') then redis.call('ZREM', 'teamgate:slots:' .. ARGV[b], ARGV[1]) end
  if delta ~= 0 and string.find(flags, 't') then
    local minute = 'teamgate:minute:' .. ARGV[b] .. ':' .. ARGV[2]
    if redis.call('EXISTS', minute) == 1 then redis.call('HINCRBY', minute, 'tokens', delta) end
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

    def admit(self, checks: list[Check], ticket: str) -> tuple[int, Refusal | None]:
        args = [ticket, self.slot_ms]
        for check in checks:
            args += [check.subject, _limit(check.rpm), _limit(check.parallel), _limit(check.tpm),
                     check.estimate]
        try:
            index, limit, window, left = self._admit(args=args)
        except self._errors as error:
            raise Unavailable(type(error).__name__) from None
        if not index:
            return int(window), None
        return int(window), Refusal(int(index) - 1, limit.decode(), max(1, int(left)))

    def release(self, checks: list[Check], ticket: str, window: int, tokens: int):
        args = [ticket, window, tokens]
        for check in checks:
            args += [check.subject, ("p" if check.parallel is not None else "")
                     + ("t" if check.tpm is not None else "")]
        try:
            self._release(args=args)
        except self._errors as error:
            raise Unavailable(type(error).__name__) from None
