"""Where the responses Teamgate can find again by id are kept (webapp/services/response_store.py
batches their rows here): the stored_responses table, or Redis when REDIS_URL is set. Both take
batches of rows, read one row back and delete one."""
import json
import time

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from webapp.errors import APIError
from webapp.extensions import db
from webapp.models import StoredResponse
from webapp.models.base import utcnow
from webapp.services.request_log_table import limit_lock_wait, writer_engine

PRUNE_INTERVAL = 60.0  # seconds between one process's deletions of expired rows
TABLE = StoredResponse.__table__
KEY = ("owner", "response_id")
FOUND = (TABLE.c.deployment_id, TABLE.c.public_model, TABLE.c.kept, TABLE.c.conversation)


class Table:
    """The stored_responses table: batches upserted in a native thread, on an engine of the
    writer's own; lookups and removals on the app's."""
    native = True  # its driver blocks: written in gevent's native threads
    errors = (SQLAlchemyError,)

    def __init__(self, app):
        self.app = app
        self.lock_wait = app.config["REQUEST_LOG_LOCK_WAIT"]
        self.engine = None
        self.upsert = None
        self.pruned = 0.0

    def write(self, rows: list[dict]):
        """One transaction: the rows upserted, expired ones now and then deleted."""
        if self.engine is None:
            self.engine = writer_engine(self.app, self.lock_wait)
            dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
            statement = dialect.insert(TABLE)
            self.upsert = statement.on_conflict_do_update(
                index_elements=list(KEY), set_={c.name: statement.excluded[c.name]
                                                for c in TABLE.columns if c.name not in KEY})
        with self.engine.begin() as connection:
            limit_lock_wait(connection, self.lock_wait)
            connection.execute(self.upsert, rows)
            if time.monotonic() - self.pruned > PRUNE_INTERVAL:
                self.pruned = time.monotonic()
                connection.execute(delete(TABLE).where(TABLE.c.expires_at < utcnow()))

    def read(self, owner: str, response_id: str) -> tuple | None:
        with db.engine.connect() as connection:  # its own transaction: it sees new rows
            row = connection.execute(select(*FOUND, TABLE.c.expires_at).where(
                TABLE.c.owner == owner, TABLE.c.response_id == response_id)).first()
        if row is None or row.expires_at < utcnow():
            return None
        return tuple(row)[:4]

    def delete(self, owner: str, response_id: str):
        with db.engine.begin() as connection:
            connection.execute(delete(TABLE).where(TABLE.c.owner == owner,
                                                   TABLE.c.response_id == response_id))

    def close(self):
        if self.engine is not None:
            self.engine.dispose()
            self.engine = None


class Redis:
    """One key per response, expiring with it; a batch is one pipeline."""
    native = False  # its sockets are gevent's: written in the event loop

    def __init__(self, url: str, timeout: float):
        import redis  # only deployments that set REDIS_URL need the client loaded

        self.client = redis.Redis.from_url(url, socket_timeout=timeout,
                                           socket_connect_timeout=timeout)
        self.errors = (redis.RedisError, OSError)

    @staticmethod
    def _key(owner: str, response_id: str) -> str:
        return f"teamgate:response:{owner}:{response_id}"

    def write(self, rows: list[dict]):
        moment = utcnow()
        pipeline = self.client.pipeline(transaction=False)
        for row in rows:
            seconds = int((row["expires_at"] - moment).total_seconds())
            if seconds > 0:
                pipeline.set(self._key(row["owner"], row["response_id"]), json.dumps(
                    [row["deployment_id"], row["public_model"], row["kept"],
                     row["conversation"]]), ex=seconds)
        pipeline.execute()

    def read(self, owner: str, response_id: str) -> tuple | None:
        try:
            value = self.client.get(self._key(owner, response_id))
        except self.errors:
            raise APIError(503, "Teamgate's response store (Redis) did not answer; try "
                                "again.") from None
        return tuple(json.loads(value)) if value else None

    def delete(self, owner: str, response_id: str):
        try:
            self.client.delete(self._key(owner, response_id))
        except self.errors:
            raise APIError(503, "Teamgate's response store (Redis) did not answer; try "
                                "again.") from None

    def close(self):
        self.client.close()
