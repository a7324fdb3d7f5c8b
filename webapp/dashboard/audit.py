"""The audit trail: a team admin sees the team's, the site admin everything. Snapshots are
stored already masked by the services."""
from flask import g, render_template, request
from sqlalchemy import select

from webapp.dashboard import bp
from webapp.auth.dashboard_access import SITE_ADMIN, TEAM_ADMIN, access
from webapp.extensions import db
from webapp.models import AuditEntry

PAGE = 100


def _entries(team_id: str | None) -> list[AuditEntry]:
    query = select(AuditEntry).order_by(AuditEntry.id.desc())
    if team_id is not None:
        query = query.where(AuditEntry.team_id == team_id)
    before = request.args.get("before", type=int)
    if before:
        query = query.where(AuditEntry.id < before)
    return list(db.session.scalars(query.limit(PAGE)))


@bp.get("/teams/<team_id>/audit")
@access(TEAM_ADMIN)
def audit_team(team_id):
    return render_template("dashboard/audit/index.html", team=g.team, entries=_entries(team_id),
                           page=PAGE)


@bp.get("/admin/audit")
@access(SITE_ADMIN)
def audit_all():
    return render_template("dashboard/audit/index.html", team=None, entries=_entries(None),
                           page=PAGE)
