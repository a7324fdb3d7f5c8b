"""LiteLLM's users (/user/new, /user/info, /user/update, /user/list, /user/delete) as Teamgate's
dashboard users: the LiteLLM role decides the admin flag, `teams` the memberships, max_budget the
user's budget, and the user's first key is made like /key/generate makes one. A user made here
logs in to the dashboard once a password was given (`password`), which it must change at its
first login, like the one-time password of a user made on the Users page."""
from sqlalchemy import func, select

from webapp.errors import APIError
from webapp.extensions import db
from webapp.models import Membership, SpendCounter, Team, User, VirtualKey
from webapp.models.base import isoformat, new_id
from webapp.services import audit, dialect, keys, spend, teams, users
from webapp.services.cache import routing_changed

ROLES = ("proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer")
# user fields that are data of the user (kept and returned, acted on by nobody in LiteLLM either)
DATA = ("user_alias", "metadata")
# user-level limits: LiteLLM holds them on the user; Teamgate gives them to the user's key
KEY_FIELDS = ("models", "tpm_limit", "rpm_limit", "max_parallel_requests")


def role_of(user: User) -> str:
    return user.role or ("proxy_admin" if user.is_admin else "internal_user")


def serialize(user: User) -> dict:
    extra = user.extra or {}
    counter = db.session.get(SpendCounter, ("user", user.id))
    return {
        **extra, "user_id": user.id, "user_email": users.email_of(user), "user_role": role_of(user),
        "user_alias": extra.get("user_alias"), "metadata": extra.get("metadata") or {},
        "models": extra.get("models") or [], "teams": sorted(m.team_id for m in user.memberships),
        "spend": counter.spend if counter else 0.0,
        "max_budget": counter.max_budget if counter else None,
        "budget_duration": counter.budget_duration if counter else None,
        "created_at": isoformat(user.created_at), "updated_at": isoformat(user.created_at),
    }


def get_user_or_404(user_id: str | None, email: str | None) -> User:
    user = users.find(user_id, email)
    if user is None:
        raise APIError(404, f"User {user_id or email} not found.",
                       param="user_id" if user_id else "user_email")
    return user


def _apply(principal, user: User, body: dict, route: str):
    """The fields /user/new and /user/update share: role, password, budget, kept fields."""
    role = body.get("user_role")
    if role is not None and role != role_of(user):
        if user.is_admin != (role == "proxy_admin"):
            user.session_token = new_id()  # a changed privilege ends the user's sessions
        user.role, user.is_admin = role, role == "proxy_admin"
    if body.get("password"):
        users.set_password(user, body["password"])
        user.must_change_password = True  # the user chooses its own at the first login
    extra = dialect.kept(route, body, user.extra)
    for name in (*DATA, *KEY_FIELDS):
        if name in body:
            if body[name] is None:
                extra.pop(name, None)
            else:
                extra[name] = body[name]
    user.extra = extra
    if "max_budget" in body or "budget_duration" in body:
        current = db.session.get(SpendCounter, ("user", user.id))
        spend.set_budget("user", user.id,
                         body.get("max_budget", current.max_budget if current else None),
                         body.get("budget_duration",
                                  current.budget_duration if current else None))


def _join(principal, user: User, entry):
    entry = {"team_id": entry} if isinstance(entry, str) else entry
    teams.add_members(principal, entry["team_id"], [
        {"user_id": user.id, "role": entry.get("user_role") or "user"}])
    if entry.get("max_budget_in_team") is not None:
        spend.set_budget("member", spend.member_id(entry["team_id"], user.id),
                         entry["max_budget_in_team"])


def create(principal, body: dict) -> tuple[dict, list[str]]:
    """The new user as /user/new answers it, and the fields stored but not acted on."""
    user_id, email = body.get("user_id"), body.get("user_email")
    if user_id and db.session.get(User, user_id) is not None:
        raise APIError(400, f"User id={user_id} already exists.", param="user_id")
    user = users.create(principal, users.address_for(user_id, email), password=None,
                        is_admin=body.get("user_role") == "proxy_admin", user_id=user_id)
    user.role = body.get("user_role") or "internal_user"
    _apply(principal, user, body, "user_new")
    db.session.flush()
    for entry in body.get("teams") or []:
        _join(principal, user, entry)
    ignored = []
    answer = {"key": None}
    if body.get("auto_create_key", True):
        fields = ("key_alias", "duration", "models", "metadata", "tpm_limit", "rpm_limit",
                  "max_parallel_requests", "team_id", "soft_budget")
        answer = keys.generate(principal, {"user_id": user.id, **{
            k: body[k] for k in fields if body.get(k) is not None}})
    else:
        ignored = [k for k in KEY_FIELDS if body.get(k) is not None]
    db.session.refresh(user)
    return {**answer, **serialize(user)}, ignored


def update(principal, body: dict) -> User:
    user = get_user_or_404(body.get("user_id"), None if body.get("user_id")
                           else body.get("user_email"))
    before = serialize(user)
    email = body.get("user_email")
    if body.get("user_id") and email and email.strip().lower() != user.email:
        if users.find(None, email) is not None:
            raise APIError(400, f"A user with email {email} already exists.", param="user_email")
        user.email = email.strip().lower()
    _apply(principal, user, body, "user_update")
    audit.record(principal, "user.update", "user", user.email, None, before=before,
                 after=serialize(user))
    return user


def info(principal, user_id: str | None) -> dict:
    """/user/info: the proxy admin any user; a key the user it belongs to."""
    user_id = user_id or principal.user_id
    if not user_id:
        raise APIError(400, "Missing query parameter user_id.", param="user_id")
    if not principal.is_admin and user_id != principal.user_id:
        raise APIError(404, f"User {user_id} not found.", param="user_id")
    user = get_user_or_404(user_id, None)
    rows = db.session.scalars(select(VirtualKey).where(VirtualKey.user_id == user.id)
                              .order_by(VirtualKey.created_at))
    team_rows = db.session.scalars(select(Team).join(Membership, Membership.team_id == Team.id)
                                   .where(Membership.user_id == user.id).order_by(Team.id))
    return {"user_id": user.id, "user_info": serialize(user),
            "keys": [keys.serialize(k) for k in rows],
            "teams": [teams.serialize(t) for t in team_rows]}


def listed(role: str | None, user_ids: list[str], page: int, page_size: int) -> dict:
    query = select(User)
    if role:
        query = query.where((User.role == role) | (
            User.role.is_(None) & User.is_admin.is_(role == "proxy_admin")))
    if user_ids:
        query = query.where(User.id.in_(user_ids))
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.scalars(query.order_by(User.created_at, User.id)
                              .offset((page - 1) * page_size).limit(page_size))
    return {"users": [serialize(u) for u in rows], "total": total, "page": page,
            "page_size": page_size, "total_pages": max(1, -(-total // page_size))}


def delete(principal, user_ids: list[str]) -> list[str]:
    """Delete users with their keys and memberships; their dashboard sessions end with them."""
    found = [get_user_or_404(user_id, None) for user_id in user_ids]
    for user in found:
        audit.record(principal, "user.delete", "user", user.email, None, before=serialize(user))
        for row in db.session.scalars(select(VirtualKey).where(VirtualKey.user_id == user.id)):
            db.session.delete(row)
        user.session_token = new_id()
        db.session.delete(user)
    routing_changed()
    return [user.id for user in found]
