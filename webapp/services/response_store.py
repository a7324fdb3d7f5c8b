"""Responses Teamgate can find again by id, for RESPONSES_TTL seconds: which deployment made each
one and, for deployments reached through chat completions, the conversation (input and output
items) and the response itself. In the database (every instance on it finds them; expired rows
are pruned now and then), or in Redis when REDIS_URL is set (Redis expires them).

A response belongs to its owner (the team, or the key when it has no team): another owner's id
is not found, exactly like an id that never existed."""
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite

from webapp.errors import APIError
from webapp.extensions import db
from webapp.models import StoredResponse

log = logging.getLogger(__name__)
PRUNE_INTERVAL = 60.0  # seconds between one process's deletions of expired rows
TABLE = StoredResponse.__table__
KEY = ("owner", "response_id")


@dataclass
class Stored:
    response_id: str
    deployment_id: str
    public_model: str
    kept: bool = False  # Teamgate keeps the conversation (the deployment speaks chat only)
    response: dict | None = None  # the Response object, when kept
    items: list | None = None  # input and output items of the whole conversation, when kept


def owner_of(principal) -> str:
    if principal.team_id:
        return "team:" + principal.team_id
    return "key:" + (principal.key_token or principal.kind)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class DatabaseStore:
    def __init__(self, app):
        self.app = app  # rows are also written from inside a stream, outside any app context
        self.pruned = 0.0
        self.upsert = None
        self.engine = None

    def put(self, owner: str, stored: Stored, conversation: str | None, ttl: int):
        """One upsert on a connection of its own (no ORM session: this is on the call path)."""
        values = {"owner": owner, "response_id": stored.response_id,
                  "deployment_id": stored.deployment_id, "public_model": stored.public_model,
                  "kept": stored.kept, "conversation": conversation,
                  "expires_at": _now() + timedelta(seconds=ttl)}
        if self.engine is None:
            with self.app.app_context():
                self.engine = db.engine
        with self.engine.begin() as connection:
            connection.execute(self._upsert(connection.dialect.name), values)
            if time.monotonic() - self.pruned > PRUNE_INTERVAL:
                self.pruned = time.monotonic()
                connection.execute(delete(TABLE).where(TABLE.c.expires_at < _now()))

    def _upsert(self, dialect_name: str):
        """The statement, made once (making it costs more than running it)."""
        if self.upsert is None:
            dialect = postgresql if dialect_name == "postgresql" else sqlite
            statement = dialect.insert(TABLE)
            self.upsert = statement.on_conflict_do_update(
                index_elements=list(KEY), set_={c.name: statement.excluded[c.name]
                                                for c in TABLE.columns if c.name not in KEY})
        return self.upsert

    def get(self, owner: str, response_id: str) -> tuple | None:
        row = db.session.get(StoredResponse, (owner, response_id))
        if row is None or row.expires_at < _now():
            return None
        return row.deployment_id, row.public_model, row.kept, row.conversation

    def remove(self, owner: str, response_id: str):
        db.session.execute(delete(StoredResponse).where(
            StoredResponse.owner == owner, StoredResponse.response_id == response_id))
        db.session.commit()


class RedisStore:
    def __init__(self, url: str, timeout: float):
        import redis  # only deployments that set REDIS_URL need the client loaded

        self.client = redis.Redis.from_url(url, socket_timeout=timeout,
                                           socket_connect_timeout=timeout)
        self.errors = (redis.RedisError, OSError)

    @staticmethod
    def _key(owner: str, response_id: str) -> str:
        return f"teamgate:response:{owner}:{response_id}"

    def put(self, owner: str, stored: Stored, conversation: str | None, ttl: int):
        value = json.dumps([stored.deployment_id, stored.public_model, stored.kept,
                            conversation])
        try:
            self.client.set(self._key(owner, stored.response_id), value, ex=ttl)
        except self.errors as error:  # the answer is the caller's all the same
            log.warning("response %s not kept: Redis failed (%s)", stored.response_id,
                        type(error).__name__)

    def get(self, owner: str, response_id: str) -> tuple | None:
        try:
            value = self.client.get(self._key(owner, response_id))
        except self.errors:
            raise APIError(503, "Teamgate's response store (Redis) did not answer; try "
                                "again.") from None
        return tuple(json.loads(value)) if value else None

    def remove(self, owner: str, response_id: str):
        try:
            self.client.delete(self._key(owner, response_id))
        except self.errors:
            raise APIError(503, "Teamgate's response store (Redis) did not answer; try "
                                "again.") from None


def init_app(app):
    config = app.config
    app.extensions["teamgate.responses"] = (
        RedisStore(config["REDIS_URL"], config["LIMITS_REDIS_TIMEOUT"]) if config["REDIS_URL"]
        else DatabaseStore(app))


@dataclass
class Keeper:
    """What a call needs to keep its response once the answer is in (inside a stream, when the
    app context is gone): the store, its owner and the settings."""
    store: object
    owner: str
    ttl: int
    max_bytes: int

    def keep(self, stored: Stored):
        conversation = None
        if stored.kept:
            conversation = json.dumps({"response": stored.response, "items": stored.items})
            if len(conversation) > self.max_bytes:
                log.warning("response %s: conversation of %d bytes not kept (over "
                            "TEAMGATE_RESPONSES_MAX_BYTES)", stored.response_id,
                            len(conversation))
                conversation = None
        self.store.put(self.owner, stored, conversation, self.ttl)


def keeper(principal) -> Keeper:
    config = current_app.config
    return Keeper(current_app.extensions["teamgate.responses"], owner_of(principal),
                  config["RESPONSES_TTL"], config["RESPONSES_MAX_BYTES"])


def find(principal, response_id: str) -> Stored | None:
    """This caller's response with that id, or None (another owner's, expired, never made)."""
    found = current_app.extensions["teamgate.responses"].get(owner_of(principal), response_id)
    if found is None:
        return None
    deployment_id, public_model, kept, conversation = found
    stored = Stored(response_id, deployment_id, public_model, bool(kept))
    if conversation:
        data = json.loads(conversation)
        stored.response, stored.items = data.get("response"), data.get("items")
    return stored


def forget(principal, response_id: str):
    current_app.extensions["teamgate.responses"].remove(owner_of(principal), response_id)
