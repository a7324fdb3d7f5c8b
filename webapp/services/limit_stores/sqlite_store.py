"""The embedded counter store: one SQLite file every worker of one machine shares."""
import os
import sqlite3
import time

from webapp.services.limit_stores.base import BUDGET_KEEP, Refusal, Unavailable
from webapp.services.limit_stores.trips import TripStore

LOCK_RETRY = 0.0002  # seconds between attempts while another worker holds the file's write lock
LOCK_PATIENCE = 5.0  # seconds before a locked file counts as unavailable


class SQLiteStore(TripStore):
    """Counters in one SQLite file (WAL, no fsync: they matter for a minute, not across a power
    cut). A process holds one connection and makes one transaction per trip (see TripStore);
    BEGIN IMMEDIATE makes each trip's checks and counts one step across processes. Parallel
    slots and budget holds carry an expiry, so a killed worker's slots and holds stop
    counting."""

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
        super().__init__()
        self.path, self.slot_seconds = path, slot_seconds
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
        """work(connection) inside BEGIN IMMEDIATE ... COMMIT. SQLite's own busy handler sleeps
        at least 1 ms and holds up every greenlet of a gevent worker meanwhile; here a locked
        file is tried again after a short sleep."""
        deadline = time.monotonic() + LOCK_PATIENCE
        connection = self._connect()  # one trip at a time per process: nobody else uses it now
        while True:
            try:
                connection.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise Unavailable(str(error)) from None
                time.sleep(LOCK_RETRY)
                continue
            try:
                result = work(connection)
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            return result

    def _send(self, operations: list, corrections: dict, settlements: list) -> list:
        now = time.time()
        window = int(now // 60)

        def work(connection):
            for (subject, minute), tokens in corrections.items():
                connection.execute("UPDATE minute SET tokens = max(0, tokens + ?) WHERE "
                                   "subject = ? AND window = ?", (tokens, subject, minute))
            for budget, ticket, _, cost in settlements:
                connection.execute("DELETE FROM budget_hold WHERE subject = ? AND ticket = ?",
                                   (budget, ticket))
                if cost:
                    connection.execute("UPDATE budget SET spend = spend + ?, expires = ? WHERE "
                                       "subject = ?", (cost, now + BUDGET_KEEP, budget))
            results = []
            for operation in operations:
                if operation[0] == "r":
                    _, ticket, slots = operation
                    connection.executemany("DELETE FROM slot WHERE subject = ? AND ticket = ?",
                                           [(subject, ticket) for subject in slots])
                    results.append(None)
                    continue
                _, ticket, checks, holds, amount = operation
                refusal = (self._refusal(connection, checks, window, now)
                           or self._budget_refusal(connection, holds, now))
                if refusal is None:
                    self._count(connection, checks, window, ticket, now)
                    for hold in holds:
                        connection.execute("INSERT OR REPLACE INTO budget_hold VALUES "
                                           "(?, ?, ?, ?)", (hold.subject, ticket, amount,
                                                            now + self.slot_seconds))
                results.append((window, refusal))
            if window != self._swept:
                self._swept = window
                connection.execute("DELETE FROM minute WHERE window < ?", (window - 1,))
                connection.execute("DELETE FROM slot WHERE expires < ?", (now,))
                connection.execute("DELETE FROM budget_hold WHERE expires < ?", (now,))
                connection.execute("DELETE FROM budget WHERE expires < ?", (now,))
            return results

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
                return Refusal(index, "budget", 0, spent, held)
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
