"""Who may open a dashboard page. Every view declares its level with @access; the declaration is
also what enforces it. Team pages take `team_id` from the URL: a team the user is not in looks
exactly like a team that does not exist (404)."""
from flask import abort, g, redirect, request, url_for
from flask_login import current_user

from webapp.auth.access import guard
from webapp.auth.sessions import current_principal
from webapp.extensions import db, login_manager
from webapp.models import Team

PUBLIC = "public"
USER = "user"  # any logged-in user
TEAM_MEMBER = "team_member"  # a member (or admin) of the team in the URL, or the site admin
TEAM_ADMIN = "team_admin"  # an admin of the team in the URL, or the site admin
SITE_ADMIN = "site_admin"

LEVELS = (PUBLIC, USER, TEAM_MEMBER, TEAM_ADMIN, SITE_ADMIN)
PASSWORD_ENDPOINTS = ("auth.password", "auth.logout")


def _team_role(team_id: str) -> str:
    team = db.session.get(Team, team_id)
    role = "admin" if current_user.is_admin else current_user.role_in(team_id)
    if team is None or role is None:
        abort(404)
    g.team = team
    return role


def _check(level: str, kwargs: dict):
    if level == PUBLIC:
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if current_user.must_change_password and request.endpoint not in PASSWORD_ENDPOINTS:
        return redirect(url_for("auth.password"))
    if level == SITE_ADMIN and not current_user.is_admin:
        abort(404)
    team_id = kwargs.get("team_id")
    if level in (TEAM_MEMBER, TEAM_ADMIN):
        if _team_role(team_id) != "admin" and level == TEAM_ADMIN:
            abort(403)
    g.principal = current_principal(team_id if level in (TEAM_MEMBER, TEAM_ADMIN) else None)
    return None


def access(level: str):
    """Mark a dashboard view with who may call it, and refuse everyone else."""
    if level not in LEVELS:
        raise ValueError(f"unknown access level {level}")
    return guard(level, _check)
