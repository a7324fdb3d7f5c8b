"""Dashboard sessions: the Flask-Login user loader, the principal of a logged-in user, and the
login rate limit. A session names the user's session_token, so rotating it logs every copy out."""
import hmac
import threading
import time

from flask import current_app
from flask.sessions import SecureCookieSessionInterface
from flask_login import current_user

from webapp.auth.principal import Principal
from webapp.extensions import db, login_manager
from webapp.models import User

MAX_FAILURES = 5
WINDOW_SECONDS = 300


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
        if not request.path.startswith("/ui"):
            return None
        return super().open_session(app, request)


class LoginThrottle:
    """Failed logins per (client address, email) within a sliding window."""

    def __init__(self):
        self._failures: dict[tuple, list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple, now: float) -> list[float]:
        kept = [t for t in self._failures.get(key, []) if now - t < WINDOW_SECONDS]
        self._failures[key] = kept
        return kept

    def blocked(self, key: tuple) -> bool:
        with self._lock:
            return len(self._recent(key, time.monotonic())) >= MAX_FAILURES

    def failed(self, key: tuple):
        with self._lock:
            self._recent(key, time.monotonic()).append(time.monotonic())

    def succeeded(self, key: tuple):
        with self._lock:
            self._failures.pop(key, None)


def throttle() -> LoginThrottle:
    return current_app.extensions["teamgate.login_throttle"]


def init_app(app):
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    app.session_interface = DashboardSessions()
    app.extensions["teamgate.login_throttle"] = LoginThrottle()
