"""Budgets checked before each call: max_budget (with budget_duration, reset on schedule) of
the key, its team, its user and the user as a member of the team (max_budget_in_team), with
LiteLLM's answer (400, budget_exceeded); soft_budget raises one alert per budget period (an
audit row, and a POST to TEAMGATE_ALERT_WEBHOOK through the egress rules when set).

A process reuses a subject's spend for BUDGET_CHECK_INTERVAL, so this check is a dictionary
look-up on most calls; spend reaches the table with the request log's next batch (0.2 s). What
makes a budget exact is the hold each call then takes on it in the limits' store (services/
limits, limit_stores): the table's spend starts the store's counter, the calls in flight hold
their estimated cost there, and a call is admitted while the counter and the holds stay below
max_budget, on every worker and instance at once."""
import json
import logging
import functools
import re
import threading
import time
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from webapp.errors import APIError
from webapp.extensions import db
from webapp.models import AuditEntry, SpendCounter, Team
from webapp.models.base import utcnow
from webapp.services import spend
from webapp.services.cache import routing_cache
from webapp.services.limit_stores import Hold
from webapp.upstream.egress import check_api_base

log = logging.getLogger(__name__)
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_cache_lock = threading.Lock()


def _cache() -> dict:
    """(kind, id) -> (monotonic expiry, the counter as a dict or None), per app."""
    return current_app.extensions.setdefault("teamgate.budget_cache", {})


@functools.lru_cache(maxsize=256)
def period(duration: str | None) -> timedelta | None:
    """A budget_duration ("30s", "15m", "1h", "30d", "1w", "1mo" = 30 days), None if none."""
    match = re.fullmatch(r"(\d+)(mo|[smhdw])", (duration or "").strip())
    if not match:
        return None
    amount, unit = int(match.group(1)), match.group(2)
    if unit == "mo":
        return timedelta(days=30 * amount)
    return timedelta(**{UNITS[unit]: amount})


def next_reset(duration: str | None, now: datetime) -> datetime | None:
    """When a budget period of this duration started now ends."""
    span = period(duration)
    return None if span is None else now + span


def team_limits(team_id: str) -> dict:
    """A team's limits and budget fields, cached with the routing table (the rate limits read
    them too)."""
    def load():
        team = db.session.get(Team, team_id)
        return dict(team.limits or {}) if team is not None else {}

    return routing_cache().get(("team_limits", team_id), load)


def _subjects(principal) -> list[tuple[str, str, dict | None]]:
    """(kind, id, limits) to check; limits None: the budget is held on the counter."""
    out = []
    if principal.key_token:
        out.append(("key", principal.key_token, principal.key_limits or {}))
    if principal.team_id:
        out.append(("team", principal.team_id, team_limits(principal.team_id)))
    if principal.user_id and principal.key_token:
        out.append(("user", principal.user_id, None))
        if principal.team_id:
            out.append(("member", spend.member_id(principal.team_id, principal.user_id), None))
    return [s for s in out if s[2] is None or any(
        s[2].get(f) is not None for f in ("max_budget", "soft_budget"))]


def _snapshot(row: SpendCounter | None) -> dict | None:
    if row is None:
        return None
    return {"spend": row.spend, "budget_reset_at": row.budget_reset_at,
            "soft_alerted_at": row.soft_alerted_at, "max_budget": row.max_budget,
            "budget_duration": row.budget_duration}


def _counters(keys: list[tuple[str, str]]) -> dict:
    """Each subject's counter, read from the table at most once per interval per process."""
    now, cache = time.monotonic(), _cache()
    with _cache_lock:
        fresh = {k: cache[k][1] for k in keys if k in cache and cache[k][0] > now}
    missing = [k for k in keys if k not in fresh]
    if missing:
        rows = spend.counters(missing)
        expiry = now + current_app.config["BUDGET_CHECK_INTERVAL"]
        with _cache_lock:
            for key in missing:
                fresh[key] = _snapshot(rows.get(key))
                cache[key] = (expiry, fresh[key])
    return fresh


def forget(kind: str, subject_id: str):
    with _cache_lock:
        _cache().pop((kind, subject_id), None)


def _start_period(kind: str, subject_id: str, counter: dict | None, duration: str) -> dict:
    """Begin the budget period of a subject whose period ended (or never began): spend 0."""
    now = utcnow()
    reset_at = next_reset(duration, now)
    if counter is None:
        db.session.add(SpendCounter(kind=kind, subject_id=subject_id, spend=0.0,
                                    budget_reset_at=reset_at, updated_at=now))
    else:
        db.session.execute(update(SpendCounter).where(
            SpendCounter.kind == kind, SpendCounter.subject_id == subject_id).values(
            spend=0.0, budget_reset_at=reset_at, soft_alerted_at=None, updated_at=now))
    try:
        db.session.commit()
    except IntegrityError:  # the writer added the subject's first spend meanwhile: next call
        db.session.rollback()
    forget(kind, subject_id)
    return {**(counter or {}), "spend": 0.0, "budget_reset_at": reset_at,
            "soft_alerted_at": None}


def exceeded(current: float, maximum: float, in_flight: float = 0.0) -> APIError:
    """LiteLLM's refusal; in_flight: what calls not yet settled (in flight, or ended a moment
    ago) hold on the budget, which took it to the maximum with the spend."""
    held = f" ({in_flight:.6g} more is held for calls not yet settled)" if in_flight > 0 else ""
    return APIError(400, f"Budget has been exceeded! Current cost: {current}, "
                         f"Max budget: {maximum}{held}", error_type="budget_exceeded")


def check(principal) -> tuple[Hold, ...]:
    """Refuse the call (400 budget_exceeded) when a subject's spend reached its max_budget;
    raise the soft-budget alert once when it reached its soft_budget. Returns the holds the
    call must take on its budgets (one per max_budget, named by the budget period)."""
    subjects = _subjects(principal)
    if not subjects:
        return ()
    holds = []
    counters = _counters([(kind, subject) for kind, subject, _ in subjects])
    now = utcnow()
    for kind, subject, limits in subjects:
        counter = counters.get((kind, subject))
        if limits is None:
            limits = _held_on_counter(kind, counter, principal)
            if limits is None:
                continue
        duration = limits.get("budget_duration")
        if period(duration) is not None and (
                counter is None or counter["budget_reset_at"] is None
                or counter["budget_reset_at"] <= now):
            counter = _start_period(kind, subject, counter, duration)
        current = counter["spend"] if counter else 0.0
        maximum = limits.get("max_budget")
        if maximum is not None and current >= maximum:
            raise exceeded(current, maximum)
        if maximum is not None:
            reset_at = counter["budget_reset_at"] if counter else None
            holds.append(Hold(f"{kind}:{subject}:{reset_at.isoformat() if reset_at else '-'}",
                              float(maximum), float(current)))
        soft = limits.get("soft_budget")
        if soft is not None and current >= soft and counter and not counter["soft_alerted_at"]:
            _soft_alert(principal, kind, subject, current, soft)
    return tuple(holds)


def _held_on_counter(kind: str, counter: dict | None, principal) -> dict | None:
    """The budget of a user or team member: the one set on its counter, else for a member the
    team's team_member_budget (LiteLLM's default for members without max_budget_in_team)."""
    if counter is not None and counter["max_budget"] is not None:
        return {"max_budget": counter["max_budget"],
                "budget_duration": counter["budget_duration"]}
    if kind == "member":
        team = team_limits(principal.team_id)
        if team.get("team_member_budget") is not None:
            return {"max_budget": team["team_member_budget"],
                    "budget_duration": team.get("team_member_budget_duration")}
    return None


def _soft_alert(principal, kind: str, subject: str, current: float, soft: float):
    """One alert per period: the process that marks the counter first writes it."""
    now = utcnow()
    marked = db.session.execute(update(SpendCounter).where(
        SpendCounter.kind == kind, SpendCounter.subject_id == subject,
        SpendCounter.soft_alerted_at.is_(None)).values(soft_alerted_at=now)).rowcount
    forget(kind, subject)
    if not marked:
        db.session.rollback()
        return
    shown = principal.key_name if kind == "key" else subject
    alert = {"event": "soft_budget_crossed", "subject": kind, "id": shown,
             "team_id": principal.team_id, "spend": current, "soft_budget": soft}
    db.session.add(AuditEntry(actor="teamgate", action="budget.soft_exceeded",
                              object_type=kind, object_id=shown, team_id=principal.team_id,
                              after=alert))
    db.session.commit()
    url = current_app.config.get("TEAMGATE_ALERT_WEBHOOK")
    if url:
        threading.Thread(target=_deliver, daemon=True, name="budget-alert", args=(
            current_app._get_current_object(), url, alert)).start()


def _deliver(app, url: str, alert: dict):
    """POST the alert through the egress rules (the address is checked as it is connected)."""
    try:
        with app.app_context():
            check_api_base(url)
            answer = app.extensions["teamgate.http"].post(
                url, {"Content-Type": "application/json"}, json.dumps(alert).encode(),
                app.config["UPSTREAM_CONNECT_TIMEOUT"], 10.0,
                app.config.get("TEAMGATE_UPSTREAM_ALLOW", ""))
            answer.content  # read to the end, so the connection can be reused
            answer.close()
    except Exception as exc:  # an alert that cannot be delivered must not fail anything else
        log.warning("budget alert: the webhook did not take it (%s)", exc.__class__.__name__)
