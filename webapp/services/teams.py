"""Teams, their members and the team information LiteLLM's /team/info returns."""
from sqlalchemy import select

from webapp.errors import APIError
from webapp.extensions import db
from webapp.models import (DeletedTeam, Deployment, Membership, ProviderCredential,
                           SpendCounter, Team, TeamModelAlias, User, VirtualKey)
from webapp.models.base import isoformat
from webapp.services import audit, dialect, limits, spend, users
from webapp.services.cache import routing_changed

ROLE_FROM_LITELLM = {"admin": "admin", "user": "member"}
ROLE_TO_LITELLM = {"admin": "admin", "member": "user"}


def get_team_or_404(principal, team_id: str, role: str | None = None) -> Team:
    """A team the caller belongs to (with at least `role`). Any other id gets one answer,
    whether a team has it or not, so other teams' ids cannot be confirmed: 403 for a team key
    (its own team is the only one it may name), 404 for everyone else."""
    caller_role = principal.team_role(team_id)
    team = db.session.get(Team, team_id) if caller_role is not None else None
    if team is None:
        if principal.kind == "team_key":
            raise APIError(403, "This key belongs to another team.", param="team_id")
        raise APIError(404, f"Team id={team_id} not found.", param="team_id")
    if role == "admin" and caller_role != "admin":
        raise APIError(403, "Only an admin of this team may do this.", param="team_id")
    return team


def members(team: Team) -> list[dict]:
    rows = db.session.execute(select(User, Membership).join(Membership)
                              .where(Membership.team_id == team.id).order_by(User.email))
    return [{"user_id": user.id, "user_email": users.email_of(user),
             "role": ROLE_TO_LITELLM[m.role]} for user, m in rows]


def model_table(team: Team) -> dict:
    aliases = sorted(team.aliases, key=lambda a: a.created_at)
    return {
        "model_aliases": {**(team.model_aliases or {}),
                          **{a.public_name: a.internal_name for a in team.aliases}},
        "created_by": aliases[0].created_by if aliases else None,
        "updated_by": max(aliases, key=lambda a: a.updated_at).updated_by if aliases else None,
    }


def serialize(team: Team) -> dict:
    return {
        **(team.extra or {}),
        "team_id": team.id, "team_alias": team.alias, "models": team.models or [],
        "members_with_roles": members(team), "metadata": team.meta or {},
        "blocked": team.blocked, **(team.limits or {}),
        "created_at": isoformat(team.created_at), "updated_at": isoformat(team.updated_at),
    }


def info_models(team: Team) -> list[str]:
    """team_info.models as LiteLLM shows it: the global models the team may call (all of them:
    all-proxy-models) and its own models' public names."""
    own = sorted(a.public_name for a in team.aliases)
    allowed = list(team.models or [])
    if not own:
        return allowed
    return (allowed or ["all-proxy-models"]) + [n for n in own if n not in allowed]


def stored_models(team: Team | None, models: list | None) -> list:
    """What a team's `models` keeps: the global models it may call, [] for all of them. The
    team's own models need no entry (it can always call them), so those read back from
    team_info.models are dropped rather than restricting the team to them."""
    models = list(models or [])
    if "all-proxy-models" in models or "*" in models:
        return []
    own = {a.public_name for a in team.aliases} if team is not None else set()
    return [m for m in models if m not in own]


def info(team: Team) -> dict:
    keys = db.session.scalars(select(VirtualKey).where(VirtualKey.team_id == team.id)
                              .order_by(VirtualKey.created_at))
    return {
        "team_id": team.id,
        "team_info": {**serialize(team), "models": info_models(team),
                      "litellm_model_table": model_table(team)},
        "keys": [{"key_name": k.key_name, "key_alias": k.key_alias, "team_id": k.team_id,
                  "user_id": k.user_id, "created_at": isoformat(k.created_at),
                  "expires": isoformat(k.expires)} for k in keys],
    }


def create(principal, body: dict) -> Team:
    team_id = body.get("team_id")
    if team_id and db.session.get(Team, team_id) is not None:
        raise APIError(400, f"Team id={team_id} already exists.", param="team_id")
    if team_id and db.session.get(DeletedTeam, team_id) is not None:
        raise APIError(400, f"Team id={team_id} belonged to a deleted team; choose another id "
                            "(a team id is never reused, so that no team inherits another's "
                            "usage and audit trail).", param="team_id")
    team = Team(id=team_id or None, alias=body.get("team_alias"),
                models=stored_models(None, body.get("models")),
                meta=body.get("metadata") or {}, blocked=bool(body.get("blocked", False)),
                limits=limits.from_body(body), extra=dialect.kept("team_new", body),
                created_by=principal.actor)
    db.session.add(team)
    db.session.flush()
    merge_model_aliases(team, body.get("model_aliases") or {})
    for member in body.get("members_with_roles") or []:
        _add_member(principal, team, member)
    audit.record(principal, "team.create", "team", team.id, team.id, after=serialize(team))
    return team


def update(principal, body: dict) -> Team:
    team = get_team_or_404(principal, body["team_id"], role="admin")
    before = serialize(team)
    for field, attr in (("team_alias", "alias"), ("metadata", "meta"), ("blocked", "blocked")):
        if field in body:
            setattr(team, attr, body[field])
    if "models" in body:
        team.models = stored_models(team, body["models"])
    merge_model_aliases(team, body.get("model_aliases") or {})
    team.limits = limits.merged(team.limits, body)
    team.extra = dialect.kept("team_update", body, team.extra)
    audit.record(principal, "team.update", "team", team.id, team.id,
                 before=before, after=serialize(team))
    routing_changed()
    return team


def merge_model_aliases(team: Team, given: dict):
    """LiteLLM's model_aliases, merged into what the team has: entries sent add or replace,
    others stay. A team model's public name is never replaced (LiteLLM replaced the whole map,
    and with it the entries of the team's own models)."""
    if not given:
        return
    own = {a.public_name for a in team.aliases}
    taken = sorted(own & set(given))
    if taken:
        raise APIError(400, f"{taken[0]} is the name of one of this team's models; a model "
                            "alias cannot replace it. Choose another alias.",
                       param="model_aliases")
    team.model_aliases = {**(team.model_aliases or {}), **given}


def delete(principal, team_ids: list[str]) -> list[str]:
    teams = [get_team_or_404(principal, team_id, role="admin") for team_id in team_ids]
    if not principal.is_admin:
        raise APIError(403, "Only the proxy admin may delete teams.")
    for team in teams:
        audit.record(principal, "team.delete", "team", team.id, team.id, before=serialize(team))
        # ORM-level deletes so SQLite without cascading constraints loses nothing half-way
        for model in (VirtualKey, Membership, TeamModelAlias):
            for row in db.session.scalars(select(model).where(model.team_id == team.id)):
                db.session.delete(row)
        for model in (Deployment, ProviderCredential):
            for row in db.session.scalars(select(model).where(model.team_id == team.id)):
                db.session.delete(row)
            db.session.flush()
        db.session.delete(team)
        db.session.add(DeletedTeam(team_id=team.id, deleted_by=principal.actor))
    routing_changed()
    return team_ids


def _add_member(principal, team: Team, member: dict) -> Membership:
    user = users.find_or_create(principal, member.get("user_id"), member.get("user_email"))
    role = ROLE_FROM_LITELLM[member.get("role", "user")]
    membership = db.session.scalar(select(Membership).where(
        Membership.team_id == team.id, Membership.user_id == user.id))
    if membership is None:
        membership = Membership(team_id=team.id, user_id=user.id, role=role)
        db.session.add(membership)
    membership.role = role
    db.session.flush()
    return membership


def add_members(principal, team_id: str, members_: list[dict],
                max_budget_in_team: float | None = None) -> Team:
    """Add (or re-role) members; an unknown user_id or user_email becomes a new user."""
    team = get_team_or_404(principal, team_id, role="admin")
    for member in members_:
        if not member.get("user_id") and not member.get("user_email"):
            raise APIError(400, "Give the member's user_id or user_email.",
                           param="member.user_id")
        membership = _add_member(principal, team, member)
        if max_budget_in_team is not None:
            spend.set_budget("member", spend.member_id(team.id, membership.user_id),
                             max_budget_in_team)
        audit.record(principal, "member.add", "member", membership.user.email, team.id,
                     after={"user_id": membership.user_id, "role": membership.role,
                            "max_budget_in_team": max_budget_in_team})
    return team


def _membership(team: Team, user_id: str | None, email: str | None) -> Membership:
    """The membership named; a user who is not a member is the caller's mistake (400)."""
    if not user_id and not email:
        raise APIError(400, "Give the member's user_id or user_email.", param="user_id")
    user = users.find(user_id, email)
    membership = user and db.session.scalar(select(Membership).where(
        Membership.team_id == team.id, Membership.user_id == user.id))
    if not membership:
        raise APIError(400, f"User {user_id or email} is not a member of team {team.id}.",
                       param="user_id" if user_id else "user_email")
    return membership


def update_member(principal, body: dict) -> dict:
    """/team/member_update: the member's role and max_budget_in_team; its tpm_limit and
    rpm_limit are kept on the user and returned, not enforced."""
    team = get_team_or_404(principal, body["team_id"], role="admin")
    membership = _membership(team, body.get("user_id"), body.get("user_email"))
    user, subject = membership.user, spend.member_id(team.id, membership.user_id)
    before = {"role": membership.role}
    if body.get("role"):
        membership.role = ROLE_FROM_LITELLM[body["role"]]
    if "max_budget_in_team" in body:
        spend.set_budget("member", subject, body["max_budget_in_team"])
    limits_ = {k: body[k] for k in ("tpm_limit", "rpm_limit") if k in body}
    if limits_:
        kept = dict((user.extra or {}).get("team_member_limits", {}))
        kept[team.id] = {k: v for k, v in {**kept.get(team.id, {}), **limits_}.items()
                         if v is not None}
        user.extra = {**(user.extra or {}), "team_member_limits": kept}
    audit.record(principal, "member.update", "member", user.email, team.id, before=before,
                 after={"role": membership.role, **limits_})
    db.session.flush()
    counter = db.session.get(SpendCounter, ("member", subject))
    member_limits = (user.extra or {}).get("team_member_limits", {}).get(team.id, {})
    return {"team_id": team.id, "user_id": user.id, "user_email": users.email_of(user),
            "role": ROLE_TO_LITELLM[membership.role],
            "max_budget_in_team": counter.max_budget if counter else None,
            "tpm_limit": member_limits.get("tpm_limit"),
            "rpm_limit": member_limits.get("rpm_limit")}


def remove_member(principal, team_id: str, user_id: str | None, email: str | None) -> Team:
    team = get_team_or_404(principal, team_id, role="admin")
    membership = _membership(team, user_id, email)
    user = membership.user
    audit.record(principal, "member.delete", "member", user.email, team.id,
                 before={"user_id": user.id, "role": membership.role})
    db.session.delete(membership)
    return team


def visible(principal) -> list[Team]:
    query = select(Team).order_by(Team.created_at)
    if not principal.is_admin:
        mine = [principal.team_id] if principal.team_id else list(principal.roles)
        query = query.where(Team.id.in_(mine))
    return list(db.session.scalars(query))
