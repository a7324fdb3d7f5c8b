"""Responses Teamgate can find again by id, for RESPONSES_TTL seconds: which deployment made each
one and, for deployments reached through chat completions, the conversation (input and output
items) and the response itself. In the database (every instance on it finds them; expired rows
are pruned now and then), or in Redis when REDIS_URL is set (Redis expires them).

Keeping a response costs the call nothing: the process that made it remembers it at once (a
bounded map, each entry for RESPONSES_TTL) and a background writer writes the waiting rows in
batches, at the request log's pace (webapp/services/request_log.py), the database's in native
threads as the request log's are. A lookup that misses both the map and the store looks again
once after a batch, since the row may still wait in another process; at a graceful stop the
waiting rows are written (bench/responses.py: one upsert, or one Redis SET, per call cost the
call 0.3 to 0.5 ms).

A response belongs to its owner (the team, or the key when it has no team): another owner's id
is not found, exactly like an id that never existed."""
import atexit
import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from webapp.models.base import utcnow
from webapp.services.request_log import INTERVAL, in_native_thread, plain_reason
from webapp.services.response_store_rows import Redis, Table

log = logging.getLogger(__name__)
# what one process remembers of the responses it made: entries, and bytes of conversations
RECENT_ENTRIES = 10_000
RECENT_BYTES = 64 * 1024 * 1024
WAITING_ROWS = 10_000  # rows waiting for a store that refuses writes, before the oldest go
# another process's row is in the store one batch interval, and that batch's write, after its
# call answered
LOOK_AGAIN_AFTER = INTERVAL + 0.05


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


class Store:
    """The responses this process made, remembered at once, and a writer that takes their rows
    to `rows` (Table or Redis) in batches."""

    def __init__(self, rows, interval: float = INTERVAL):
        self.rows = rows
        self.interval = interval
        self._recent: OrderedDict = OrderedDict()  # key -> (monotonic expiry, found, size)
        self._recent_bytes = 0
        self._waiting: dict = {}  # key -> row, oldest first
        self._memory = threading.Lock()  # the map and the waiting rows (held for microseconds)
        self._writing = threading.Lock()  # one batch at a time; a removal waits for it
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._refused = False
        atexit.register(self.stop)

    def put(self, owner: str, stored: Stored, conversation: str | None, ttl: int):
        """Remembered here at once, its row written by the next batch."""
        key = (owner, stored.response_id)
        row = {"owner": owner, "response_id": stored.response_id,
               "deployment_id": stored.deployment_id, "public_model": stored.public_model,
               "kept": stored.kept, "conversation": conversation,
               "expires_at": utcnow() + timedelta(seconds=ttl)}
        found = (stored.deployment_id, stored.public_model, stored.kept, conversation)
        size = len(conversation or "")
        with self._memory:
            self._forget_recent(key)
            self._recent[key] = (time.monotonic() + ttl, found, size)
            self._recent_bytes += size
            while self._recent and (len(self._recent) > RECENT_ENTRIES
                                    or self._recent_bytes > RECENT_BYTES):
                self._recent_bytes -= self._recent.popitem(last=False)[1][2]
            self._waiting.pop(key, None)
            self._waiting[key] = row
            self._trim_waiting()
        if self._thread is None:
            self._start()

    def get(self, owner: str, response_id: str) -> tuple | None:
        found = self._remembered(owner, response_id) or self.rows.read(owner, response_id)
        if found is None:  # its row may still wait in the process that made it
            time.sleep(LOOK_AGAIN_AFTER)
            found = self._remembered(owner, response_id) or self.rows.read(owner, response_id)
        return found

    def remove(self, owner: str, response_id: str):
        with self._writing:  # a batch being written now is in before the row is deleted
            with self._memory:
                self._forget_recent((owner, response_id))
                self._waiting.pop((owner, response_id), None)
            self.rows.delete(owner, response_id)

    def flush(self) -> int:
        """Write the waiting rows now in one batch, unless the store refuses them (they wait
        for the next); returns how many were written."""
        with self._writing:
            with self._memory:
                batch, self._waiting = self._waiting, {}
            if not batch:
                return 0
            try:
                if self.rows.native:
                    in_native_thread(self.rows.write, list(batch.values()))
                else:
                    self.rows.write(list(batch.values()))
            except self.rows.errors as exc:
                with self._memory:  # rows kept since then are newer
                    self._waiting = {**batch, **self._waiting}
                    self._trim_waiting()
                if not self._refused:
                    reason = (plain_reason(exc) if isinstance(exc, SQLAlchemyError)
                              else "Redis did not answer")
                    log.warning("response store: %s (%s); %d rows wait until it takes them",
                                reason, getattr(exc, "orig", exc).__class__.__name__,
                                len(self._waiting))
                self._refused = True
                return 0
            if self._refused:
                log.warning("response store: rows are written again")
                self._refused = False
            return len(batch)

    def stop(self):
        """Write the waiting rows (a worker's graceful stop; atexit too)."""
        self._stopped.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)  # its batch, if one is under way, goes first
        self.flush()
        if self._waiting:
            log.error("response store: %d responses are lost at shutdown: the store does "
                      "not take them", len(self._waiting))
        self.rows.close()

    def _start(self):
        with self._memory:
            if self._thread is not None or self._stopped.is_set():
                return
            self._thread = threading.Thread(target=self._run, name="response-store",
                                            daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stopped.wait(self.interval):
            try:
                self.flush()
            except Exception:  # the writer must outlive any one failure
                log.exception("response store: the writer failed; it goes on")

    def _remembered(self, owner: str, response_id: str) -> tuple | None:
        entry = self._recent.get((owner, response_id))
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def _forget_recent(self, key):
        entry = self._recent.pop(key, None)
        if entry is not None:
            self._recent_bytes -= entry[2]

    def _trim_waiting(self):
        dropped = 0
        while len(self._waiting) > WAITING_ROWS:
            del self._waiting[next(iter(self._waiting))]
            dropped += 1
        if dropped:
            log.error("response store: %d responses dropped: more than %d wait for the "
                      "store", dropped, WAITING_ROWS)


def init_app(app):
    config = app.config
    rows = (Redis(config["REDIS_URL"], config["LIMITS_REDIS_TIMEOUT"]) if config["REDIS_URL"]
            else Table(app))
    app.extensions["teamgate.responses"] = Store(rows)


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
