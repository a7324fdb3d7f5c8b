"""Virtual keys: generate, look up (cached), list, update, delete. A key's restrictions and
identity are changed only by those who manage it: the proxy admin or an admin of its team."""
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from webapp.crypto import hash_key, mask, new_virtual_key
from webapp.errors import APIError
from webapp.extensions import db
from webapp.models import Membership, SpendCounter, Team, VirtualKey
from webapp.models.base import isoformat, utcnow
from webapp.services import audit, dialect, limits
from webapp.services.cache import routing_cache, routing_changed

# LiteLLM's units; a month (mo) is 30 days and a year (y) 365
DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
DAYS_PER_UNIT = {"mo": 30, "y": 365}
# what a key may change of itself; everything else restricts it or names it
SELF_SERVICE = ("key", "metadata")


@dataclass(frozen=True)
class KeyRecord:
    """What authentication needs of a key, safe to keep in the process cache."""
    token: str
    key_name: str
    key_alias: str | None
    team_id: str | None
    user_id: str | None
    models: tuple
    expires: datetime | None
    limits: dict


def lookup(key: str) -> KeyRecord | None:
    """The valid key behind a presented secret, or None (unknown, blocked, expired)."""
    token = hash_key(key)
    record = routing_cache().get(("key", token), lambda: _load(token))
    if record is None or (record.expires and record.expires <= utcnow()):
        return None
    return record


def _load(token: str) -> KeyRecord | None:
    row = db.session.get(VirtualKey, token)
    if row is None or row.blocked:
        return None
    if row.team_id:
        team = db.session.get(Team, row.team_id)
        if team is None or team.blocked:
            return None
    return KeyRecord(row.token, row.key_name, row.key_alias, row.team_id, row.user_id,
                     tuple(row.models or ()), row.expires, dict(row.limits or {}))


def parse_duration(duration: str | None) -> datetime | None:
    if not duration:
        return None
    amount, unit = re.fullmatch(r"(\d+)(mo|[smhdwy])", duration).groups()
    amount = int(amount) * DAYS_PER_UNIT.get(unit, 1)
    try:
        return utcnow() + timedelta(**{DURATION_UNITS.get(unit, "days"): amount})
    except OverflowError:
        raise APIError(400, "duration is too long.", param="duration") from None


def serialize(row: VirtualKey) -> dict:
    return {
        **(row.extra or {}),
        "token": row.token, "token_id": row.token, "key_name": row.key_name,
        "key_alias": row.key_alias,
        "team_id": row.team_id, "user_id": row.user_id, "models": row.models or [],
        "metadata": row.meta or {}, "blocked": row.blocked, "expires": isoformat(row.expires),
        "created_at": isoformat(row.created_at), "created_by": row.created_by,
        "updated_at": isoformat(row.updated_at or row.created_at),
        "last_used_at": isoformat(row.last_used_at), **(row.limits or {}),
    }



def _check_alias_free(alias: str | None, team_id: str | None, token: str | None = None):
    """A key alias is unique within its team (personal keys: among themselves), so another
    team's aliases can neither be confirmed nor block a name."""
    if not alias:
        return
    same_team = VirtualKey.team_id == team_id if team_id else VirtualKey.team_id.is_(None)
    existing = db.session.scalar(select(VirtualKey).where(VirtualKey.key_alias == alias,
                                                          same_team))
    if existing is not None and existing.token != token:
        raise APIError(400, f"A key with key_alias={alias} already exists.", param="key_alias")


def manages(principal, row: VirtualKey) -> bool:
    """May this caller change the key's restrictions: the proxy admin or an admin of its team."""
    return principal.is_admin or bool(row.team_id and principal.team_role(row.team_id) == "admin")


def _check_user_id(principal, team_id: str | None, user_id: str | None):
    """A caller names only identities it may give: any for the proxy admin, a team admin its
    team's members; anyone else none at all."""
    if user_id is None or principal.is_admin:
        return
    member = team_id is not None and principal.team_role(team_id) == "admin" and \
        db.session.scalar(select(Membership).where(Membership.team_id == team_id,
                                                   Membership.user_id == user_id)) is not None
    if not member:
        raise APIError(403, f"user_id={user_id} is not a member of this team; only the proxy "
                            "admin may give a key another user's identity.", param="user_id")


def generate(principal, body: dict, route: str = "key_generate") -> dict:
    team_id = body.get("team_id")
    # permission first: another team's id and a missing one get the same answer
    if not principal.is_admin and principal.team_role(team_id or "") != "admin":
        raise APIError(403, "Only the proxy admin or an admin of the team may generate its keys.")
    if team_id is not None and db.session.get(Team, team_id) is None:
        raise APIError(400, f"Team id={team_id} does not exist.", param="team_id")
    _check_user_id(principal, team_id, body.get("user_id"))
    _check_alias_free(body.get("key_alias"), team_id)
    secret = new_virtual_key()
    row = VirtualKey(
        token=hash_key(secret), key_name=mask(secret), key_alias=body.get("key_alias") or None,
        team_id=team_id, user_id=body.get("user_id"), models=body.get("models") or [],
        meta=body.get("metadata") or {}, blocked=bool(body.get("blocked", False)),
        expires=parse_duration(body.get("duration")), created_by=principal.actor,
        limits=limits.from_body(body), extra=dialect.kept(route, body),
    )
    db.session.add(row)
    db.session.flush()
    audit.record(principal, "key.generate", "key", row.key_name, team_id, after=serialize(row))
    return {"key": secret, **serialize(row)}


def _may_see(principal, row: VirtualKey) -> bool:
    return principal.is_admin or principal.key_token == row.token or manages(principal, row)


def find(principal, key_or_token: str) -> VirtualKey:
    """A key the caller may manage, by its secret or its hash; 404 otherwise."""
    token = key_or_token if re.fullmatch(r"[0-9a-f]{64}", key_or_token) else hash_key(key_or_token)
    row = db.session.get(VirtualKey, token)
    if row is None or not _may_see(principal, row):
        raise APIError(404, "Key not found.", param="key")
    return row


def visible(principal) -> list[VirtualKey]:
    query = select(VirtualKey).order_by(VirtualKey.created_at)
    if not principal.is_admin:
        admin_teams = [t for t, role in principal.roles.items() if role == "admin"]
        query = query.where((VirtualKey.token == principal.key_token)
                            | VirtualKey.team_id.in_(admin_teams))
    return list(db.session.scalars(query))


def update(principal, body: dict, route: str = "key_update") -> dict:
    row = find(principal, body["key"])
    restricted = sorted(set(body) - set(SELF_SERVICE) - {"team_id"})
    if restricted and not manages(principal, row):
        raise APIError(403, f"Only the proxy admin or an admin of the key's team may change "
                            f"{', '.join(restricted)} of a key.", param=restricted[0])
    if "user_id" in body:
        _check_user_id(principal, row.team_id, body["user_id"])
    before = serialize(row)
    if "team_id" in body and body["team_id"] != row.team_id:
        _move(principal, row, body["team_id"])
    if "key_alias" in body:
        _check_alias_free(body["key_alias"], row.team_id, row.token)
        row.key_alias = body["key_alias"] or None
    for field, attr in (("models", "models"), ("metadata", "meta"), ("user_id", "user_id"),
                        ("blocked", "blocked")):
        if field in body:
            setattr(row, attr, body[field])
    if "duration" in body:
        row.expires = parse_duration(body["duration"])
    row.limits = limits.merged(row.limits, body)
    row.extra = dialect.kept(route, body, row.extra)
    audit.record(principal, "key.update", "key", row.key_name, row.team_id,
                 before=before, after=serialize(row))
    routing_changed()
    return serialize(row)


def _move(principal, row: VirtualKey, team_id: str | None):
    """Give a key to another team (or none): the proxy admin only, as in LiteLLM."""
    if not principal.is_admin:  # 400 as before team_id was accepted here: ownership is not data
        raise APIError(400, "A key's team_id is set by the proxy admin only; a key cannot "
                            "move itself to another team.", param="team_id")
    if team_id is not None and db.session.get(Team, team_id) is None:
        raise APIError(400, f"Team id={team_id} does not exist.", param="team_id")
    _check_alias_free(row.key_alias, team_id, row.token)
    row.team_id = team_id


def delete(principal, rows: list[VirtualKey]) -> list[str]:
    for row in rows:
        audit.record(principal, "key.delete", "key", row.key_name, row.team_id,
                     before=serialize(row))
        db.session.delete(row)
    routing_changed()
    return [row.key_name for row in rows]


def regenerate(principal, body: dict) -> dict:
    """A new secret for a key, with everything else of it kept (its spend too) and the fields
    sent applied as /key/update applies them; the old secret stops working at once on every
    worker and instance (the routing change below)."""
    row = find(principal, body["key"])
    if not manages(principal, row):
        raise APIError(403, "Only the proxy admin or an admin of the key's team may regenerate "
                            "it.", param="key")
    secret = new_virtual_key()
    new = VirtualKey(token=hash_key(secret), key_name=mask(secret), key_alias=row.key_alias,
                     team_id=row.team_id, user_id=row.user_id, models=list(row.models or []),
                     meta=dict(row.meta or {}), limits=dict(row.limits or {}),
                     blocked=row.blocked, extra=dict(row.extra or {}), expires=row.expires,
                     created_at=row.created_at, created_by=row.created_by)
    counter = db.session.get(SpendCounter, ("key", row.token))
    if counter is not None:
        db.session.add(SpendCounter(
            kind="key", subject_id=new.token, spend=counter.spend,
            budget_reset_at=counter.budget_reset_at, soft_alerted_at=counter.soft_alerted_at,
            max_budget=counter.max_budget, budget_duration=counter.budget_duration,
            updated_at=counter.updated_at))
        db.session.delete(counter)
    audit.record(principal, "key.regenerate", "key", row.key_name, row.team_id,
                 before=serialize(row), after={"key_name": new.key_name})
    db.session.delete(row)
    db.session.flush()  # the alias is free again for the new row
    db.session.add(new)
    db.session.flush()
    changes = {k: v for k, v in body.items() if k != "key"}
    if changes:
        update(principal, {**changes, "key": new.token}, route="key_regenerate")
    routing_changed()
    return {"key": secret, **serialize(new)}


def set_blocked(principal, key: str, blocked: bool) -> dict:
    """/key/block and /key/unblock: a blocked key answers 401 at once everywhere."""
    return update(principal, {"key": key, "blocked": blocked})


def find_by_alias(principal, alias: str) -> VirtualKey:
    """The one key with this alias among those the caller may manage; another team's alias
    answers exactly like one nobody has."""
    rows = [row for row in db.session.scalars(select(VirtualKey).where(
        VirtualKey.key_alias == alias)) if _may_see(principal, row)]
    if not rows:
        raise APIError(404, f"Key with key_alias={alias} not found.", param="key_aliases")
    if len(rows) > 1:  # only the proxy admin sees keys of several teams
        raise APIError(400, f"Keys of several teams have key_alias={alias}; delete them by key.",
                       param="key_aliases")
    return rows[0]
