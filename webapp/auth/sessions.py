"""Dashboard sessions: the Flask-Login user loader, the principal of a logged-in user, and what
admits a password check: the process's budget of checks and the login rate limit. A session
names the user's session_token, so rotating it logs every copy out."""
import hmac
import ipaddress
import math
import time
from contextlib import contextmanager
from datetime import datetime, timedelta

from flask import current_app, request
from flask.sessions import SecureCookieSessionInterface
from flask_login import current_user
from sqlalchemy import case, create_engine, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.pool import NullPool

from webapp.auth.dashboard_paths import is_dashboard_path
from webapp.auth.principal import Principal
from webapp.blocking import Admission, NativeThreads
from webapp.crypto import hash_key
from webapp.extensions import db, login_manager
from webapp.models import LoginCounter, User
from webapp.models.base import utcnow

COUNTERS = LoginCounter.__table__
UPSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
BUSY = "Too many logins at once; try again in a moment."


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    user_id, _, token = session_id.partition(":")
    user = db.session.get(User, user_id)
    if user is None or not token or not hmac.compare_digest(user.session_token, token):
        return None
    return user


def principal_for(user: User, team_id: str | None = None) -> Principal:
    """The caller the services see for a dashboard user (optionally acting inside one team)."""
    return Principal(kind="admin" if user.is_admin else "user", actor=user.email,
                     user_id=user.id, team_id=team_id,
                     roles={m.team_id: m.role for m in user.memberships})


def current_principal(team_id: str | None = None) -> Principal:
    return principal_for(current_user._get_current_object(), team_id)


class DashboardSessions(SecureCookieSessionInterface):
    """The session cookie belongs to the dashboard. The JSON and proxy routes authenticate by
    Bearer key and ignore cookies, so they get Flask's empty null session: no signature check on
    every call, and their answers do not vary by cookie."""

    def open_session(self, app, request):
        if not is_dashboard_path(request.path):
            return None
        return super().open_session(app, request)


class LoginRefused(Exception):
    """A login refused before its password is checked, and the seconds to wait."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


def client_of(address: str | None) -> str:
    """What a client is counted by: its address; an IPv6 client by its /64, which one host or
    one customer usually holds whole."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return address or "unknown"
    if ip.version == 6 and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip.ipv4_mapped if ip.version == 6 else ip)


class LoginThrottle:
    """Failed logins per client and per (client, email), in fixed windows of LOGIN_WINDOW
    seconds, in the login_counters table, so that every worker and instance counts the same
    attempts. An attempt counts before its password is checked (concurrent guesses cannot slip
    past the limit) and is taken back when the password was right. The statements run in two
    native threads of their own, on connections of their own (NullPool): a wait for SQLite's
    write lock never pauses a worker or fills gevent's shared pool, and nothing is shared with
    the connection pool the event loop uses."""

    def __init__(self):
        self._engine = None
        self._pruned_at = 0.0
        self._threads = NativeThreads(2)

    def count(self, address: str | None, email: str) -> tuple[str, str]:
        """Count one attempt; its keys, or LoginRefused when the client is past a limit."""
        config = current_app.config
        client = client_of(address)
        limits = {hash_key(client): config["LOGIN_ADDRESS_FAILURES"],
                  hash_key(f"{client}\n{email}"): config["LOGIN_EMAIL_FAILURES"]}
        now, window = utcnow(), timedelta(seconds=config["LOGIN_WINDOW"])
        prune = time.monotonic() - self._pruned_at >= config["LOGIN_PRUNE_INTERVAL"]
        if prune:
            self._pruned_at = time.monotonic()
        rows = self._threads.run(self._count, self.engine(), sorted(limits), now, now - window,
                                 config["LOGIN_MAX_KEYS"] if prune else None)
        for key, count, started in rows:
            if count > limits[key]:
                raise LoginRefused(*_wait_message(started + window - now))
        return tuple(limits)

    def succeeded(self, keys: tuple[str, str]):
        self._threads.run(self._take_back, self.engine(), *keys)

    def close(self):
        """Close the connections of the throttle's own engine (an app's end, a test's)."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def engine(self):
        if self._engine is None:
            options = current_app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {})
            self._engine = create_engine(db.engine.url, poolclass=NullPool,
                                         connect_args=options.get("connect_args", {}))
        return self._engine

    @staticmethod
    def _count(engine, keys: list[str], now: datetime, expired: datetime,
               max_keys: int | None) -> list:
        upsert = UPSERTS[engine.dialect.name](COUNTERS).values(
            [{"key": key, "window_start": now, "count": 1} for key in keys])
        stale = COUNTERS.c.window_start <= expired
        upsert = upsert.on_conflict_do_update(index_elements=[COUNTERS.c.key], set_={
            "count": case((stale, 1), else_=COUNTERS.c.count + 1),
            "window_start": case((stale, now), else_=COUNTERS.c.window_start),
        }).returning(COUNTERS.c.key, COUNTERS.c.count, COUNTERS.c.window_start)
        with engine.begin() as connection:
            rows = connection.execute(upsert).all()
            if max_keys is not None:
                _prune(connection, expired, max_keys)
        return rows

    @staticmethod
    def _take_back(engine, client_key: str, email_key: str):
        with engine.begin() as connection:
            connection.execute(update(COUNTERS).where(
                COUNTERS.c.key == client_key, COUNTERS.c.count > 0,
            ).values(count=COUNTERS.c.count - 1))
            connection.execute(delete(COUNTERS).where(COUNTERS.c.key == email_key))


def _prune(connection, expired: datetime, max_keys: int):
    """Drop the counts whose window has passed; past max_keys rows, the oldest windows go too
    (their clients start counting afresh: the process's budget still bounds the checks)."""
    connection.execute(delete(COUNTERS).where(COUNTERS.c.window_start <= expired))
    excess = connection.scalar(select(func.count()).select_from(COUNTERS)) - max_keys
    if excess > 0:
        oldest = select(COUNTERS.c.key).order_by(COUNTERS.c.window_start).limit(excess)
        connection.execute(delete(COUNTERS).where(COUNTERS.c.key.in_(oldest)))


def _wait_message(left: timedelta) -> tuple[str, int]:
    seconds = max(1, math.ceil(left.total_seconds()))
    minutes = math.ceil(seconds / 60)
    return (f"Too many failed logins from your address; try again in {minutes} "
            f"minute{'s' if minutes != 1 else ''}.", seconds)


@contextmanager
def password_check(email: str):
    """Admit one password check for this request's client and `email`, or raise LoginRefused:
    when LOGIN_MAX_PENDING checks are already waiting or running in this process (at once,
    without touching the database), or when the client is past its failures. Yields the
    function to call when the password was right, so that the attempt does not count."""
    budget = current_app.extensions["teamgate.login_budget"]
    if not budget.enter(current_app.config["LOGIN_MAX_PENDING"]):
        raise LoginRefused(BUSY, 1)
    try:
        keys = throttle().count(request.remote_addr, email)
        yield lambda: throttle().succeeded(keys)
    finally:
        budget.leave()


def throttle() -> LoginThrottle:
    return current_app.extensions["teamgate.login_throttle"]


def init_app(app):
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    app.session_interface = DashboardSessions()
    app.extensions["teamgate.login_throttle"] = LoginThrottle()
    app.extensions["teamgate.login_budget"] = Admission()
