"""Writes the append-only audit trail; callers pass snapshots that are already masked."""
from webapp.extensions import db
from webapp.models import AuditEntry


def record(principal, action: str, object_type: str, object_id: str, team_id: str | None,
           before: dict | None = None, after: dict | None = None):
    db.session.add(AuditEntry(
        actor=principal.actor, action=action, object_type=object_type, object_id=object_id,
        team_id=team_id, before=before, after=after,
    ))
