"""Team and key limits as LiteLLM names them: stored per row; rpm_limit and
max_parallel_requests enforced in each worker process (max_budget, tpm_limit are kept only)."""
import threading
import time

from flask import current_app

from webapp.errors import APIError
from webapp.extensions import db
from webapp.models import Team
from webapp.services import budgets
from webapp.services.cache import routing_cache
from webapp.services.schemas import LIMITS

LIMIT_FIELDS = tuple(LIMITS)


def from_body(body: dict) -> dict:
    """The limits a create request sets."""
    return {k: body[k] for k in LIMIT_FIELDS if body.get(k) is not None}


def merged(current: dict | None, body: dict) -> dict:
    """Stored limits after an update: fields sent replace, null clears, omitted stay."""
    limits = dict(current or {})
    limits.update({k: body[k] for k in LIMIT_FIELDS if k in body})
    return {k: v for k, v in limits.items() if v is not None}


class Gate:
    """Per-process admission for rpm_limit (requests in the current minute) and
    max_parallel_requests (calls in flight, streams until they end), for keys and teams."""

    def __init__(self):
        self._lock = threading.Lock()
        self._in_flight: dict = {}
        self._minute: dict = {}

    def enter(self, subjects: list[tuple[str, str, dict]]) -> "Ticket":
        """Admit a call for every (kind, id, limits) subject, or raise a 429 APIError.
        Returns the ticket to release when the call is over (a stream: when it ends)."""
        now = time.time()
        window = int(now // 60)
        limited = [(kind, subject, limits) for kind, subject, limits in subjects if limits]
        if not limited:  # most callers: nothing to count, no lock to take
            return Ticket(self, [])
        with self._lock:
            for kind, subject, limits in limited:
                rpm = limits.get("rpm_limit")
                if rpm is not None and self._minute.get((kind, subject, window), 0) >= rpm:
                    raise APIError(429, f"Rate limit of this {kind} reached ({rpm} requests per "
                                        "minute).",
                                   headers={"Retry-After": str(max(1, int(60 - now % 60)))})
                parallel = limits.get("max_parallel_requests")
                if parallel is not None and self._in_flight.get((kind, subject), 0) >= parallel:
                    raise APIError(429, f"This {kind} already has {parallel} calls in flight.",
                                   headers={"Retry-After": "1"})
            for stale in [k for k in self._minute if k[2] < window]:
                del self._minute[stale]
            for kind, subject, _ in limited:
                self._minute[(kind, subject, window)] = \
                    self._minute.get((kind, subject, window), 0) + 1
                self._in_flight[(kind, subject)] = self._in_flight.get((kind, subject), 0) + 1
        return Ticket(self, [(kind, subject) for kind, subject, _ in limited])

    def _leave(self, held: list):
        with self._lock:
            for subject in held:
                self._in_flight[subject] -= 1


class Ticket:
    def __init__(self, gate: Gate, held: list):
        self._gate, self._held = gate, held

    def release(self):
        held, self._held = self._held, []
        if held:
            self._gate._leave(held)


def _team_limits(team_id: str) -> dict:
    def load():
        team = db.session.get(Team, team_id)
        return dict(team.limits or {}) if team is not None else {}

    return routing_cache().get(("team_limits", team_id), load)


def admit(principal) -> Ticket:
    """Admit one proxied call of this caller (429 when over a limit); leave() the ticket after."""
    budgets.check(principal)
    subjects = [("key", principal.key_token, principal.key_limits)] if principal.key_token else []
    if principal.team_id:
        subjects.append(("team", principal.team_id, _team_limits(principal.team_id)))
    return current_app.extensions["teamgate.limits"].enter(subjects)


def init_app(app):
    app.extensions["teamgate.limits"] = Gate()
