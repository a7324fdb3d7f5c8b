"""The request log's writes to its table: batches through the driver's executemany with the
columns' own bind processors, at under half the ORM bulk insert's cost per row (bench/PROFILE.md
section 7), on an engine of its own; a bounded wait for a locked database; and, when asked, a
look-up that leaves out the rows an earlier attempt or replay has written already. The batch's
spend and its keys' last use (one UPDATE per key per batch, not one per call) go in the same
transaction. Called from a native thread, one write at a time."""
from sqlalchemy import bindparam, create_engine, or_, select, update
from sqlalchemy.pool import StaticPool

from webapp.extensions import db
from webapp.models import RequestLogEntry, VirtualKey
from webapp.services import spend

TABLE = RequestLogEntry.__table__
KEYS = VirtualKey.__table__
# a replayed batch may be older than one already written: last use only moves forward
MARK_USED = update(KEYS).where(
    KEYS.c.token == bindparam("used_token"),
    or_(KEYS.c.last_used_at.is_(None), KEYS.c.last_used_at < bindparam("used_at")),
).values(last_used_at=bindparam("used_at"))
MODEL_NAME_LENGTH = TABLE.c.public_model.type.length
COLUMNS = ("request_id", "created_at", "team_id", "key_token", "key_name", "route",
           "public_model", "deployment_id", "status", "latency_ms", "overhead_ms",
           "prompt_tokens", "completion_tokens", "cache_read_tokens", "cache_creation_tokens",
           "cost", "stream", "error_type")


class _Insert:
    """The INSERT in the driver's own parameter style, and each column's bind processor."""

    def __init__(self, dialect):
        compiled = TABLE.insert().compile(dialect=dialect, column_keys=list(COLUMNS))
        self.sql = compiled.string
        self.order = compiled.positiontup if compiled.positional else None
        self.processors = {name: TABLE.c[name].type.bind_processor(dialect) for name in COLUMNS}

    def parameters(self, batch: list[dict]) -> list:
        rows = []
        for row in batch:
            values = {name: row.get(name) for name in COLUMNS}
            for name, process in self.processors.items():
                if process is not None and values[name] is not None:
                    values[name] = process(values[name])
            rows.append(tuple(values[name] for name in self.order) if self.order else values)
        return rows


def _mark_keys_used(connection, batch: list[dict]):
    latest: dict = {}
    for row in batch:
        token, at = row.get("key_token"), row.get("created_at")
        if token and at is not None and (token not in latest or at > latest[token]):
            latest[token] = at
    if latest:  # in token order, so that two writers never wait for each other's rows
        connection.execute(MARK_USED, [{"used_token": token, "used_at": at}
                                       for token, at in sorted(latest.items())])


def writer_engine(app, lock_wait: float):
    """An engine for a background writer in native threads (this table's, the response
    store's): one connection, used by one write at a time, so no pool's locks are shared
    between the event loop and a native thread."""
    with app.app_context():
        url = db.engine.url
    options = app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {})
    connect_args = dict(options.get("connect_args", {}))
    if url.get_backend_name() == "postgresql":  # a database that is away answers in time
        connect_args.setdefault("connect_timeout", max(1, round(lock_wait)))
    return create_engine(url, poolclass=StaticPool, connect_args=connect_args)


def limit_lock_wait(connection, lock_wait: float):
    """Wait at most lock_wait for a lock, so rows wait for the next attempt (or move to the
    spool) instead of piling up."""
    milliseconds = max(1, int(lock_wait * 1000))
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(f"PRAGMA busy_timeout = {milliseconds}")
    elif connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = {milliseconds}")


class RequestLogTable:
    def __init__(self, app, lock_wait: float):
        self.app = app
        self.lock_wait = lock_wait
        self._engine = None
        self._insert: _Insert | None = None

    def insert(self, batch: list[dict], verify: bool):
        """Insert the rows in one transaction, their cost added to their subjects' spend; with
        verify, only those whose request id the table does not have yet."""
        if self._engine is None:
            self._connect()
        with self._engine.begin() as connection:
            limit_lock_wait(connection, self.lock_wait)
            if verify:  # rows an earlier attempt or replay may have written already
                present = set(connection.execute(select(TABLE.c.request_id).where(
                    TABLE.c.request_id.in_({row["request_id"] for row in batch}))).scalars())
                batch = [row for row in batch if row["request_id"] not in present]
            if batch:
                connection.exec_driver_sql(self._insert.sql, self._insert.parameters(batch))
                spend.add_batch(connection, batch)
                _mark_keys_used(connection, batch)

    def _connect(self):
        self._engine = writer_engine(self.app, self.lock_wait)
        self._insert = _Insert(self._engine.dialect)

    def dispose(self):
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
