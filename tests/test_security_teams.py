"""A deleted team's id is never given to a new team, which would otherwise show the old team's
usage (request-log rows by team id) and audit trail as its own."""
import json
import uuid

from flask_migrate import upgrade
from sqlalchemy import text

from tests.conftest import ADMIN, bearer, migrated_to
from tests.dashboard_support import DashClient, make_user
from webapp.extensions import db
from webapp.models import DeletedTeam


def test_a_deleted_teams_id_is_refused_for_a_new_team(app, client, seed, upstream):
    team_id = str(uuid.uuid4())
    seed.team("Old team", team_id=team_id)
    key = seed.key(team_id)
    seed.model(key, team_id, upstream.url)
    assert client.post("/v1/chat/completions", headers=bearer(key), json={
        "model": "my-team-model", "messages": [{"role": "user", "content": "old secret talk"}]}
    ).status_code == 200
    app.extensions["teamgate.request_log"].flush()
    assert client.post("/team/delete", headers=ADMIN, json={"team_ids": [team_id]}
                       ).status_code == 200
    reused = client.post("/team/new", headers=ADMIN, json={"team_alias": "New team",
                                                           "team_id": team_id})
    assert reused.status_code == 400, reused.json
    assert reused.json["error"]["param"] == "team_id"
    assert "deleted team" in reused.json["error"]["message"]
    assert client.get(f"/team/info?team_id={team_id}", headers=ADMIN).status_code == 404
    with app.app_context():
        tombstone = db.session.get(DeletedTeam, team_id)
        assert tombstone.deleted_by == "default_user_id"
        make_user("new-admin@example.com", is_admin=True)
        db.session.commit()
    dashboard = DashClient(app)
    dashboard.login("new-admin@example.com")
    assert dashboard.get(f"/ui/teams/{team_id}/usage").status_code == 404


def test_the_upgrade_tombstones_teams_deleted_before_it(empty_database):
    with migrated_to(empty_database, "b7c4e2f19a30"):
        db.session.execute(text(
            "INSERT INTO teams (id, models, metadata, limits, blocked, created_at, updated_at)"
            " VALUES ('alive', '[]', '{}', '{}', false, '2026-01-01', '2026-01-01')"))
        for team_id, table in (("gone-1", "request_log"), ("gone-2", "audit_log"),
                               ("alive", "request_log")):
            if table == "request_log":
                db.session.execute(text(
                    "INSERT INTO request_log (request_id, created_at, team_id, route, status,"
                    " latency_ms, stream) VALUES (:r, '2026-01-01', :t, '/chat/completions',"
                    " 200, 1.0, false)"), {"r": str(uuid.uuid4()), "t": team_id})
            else:
                db.session.execute(text(
                    "INSERT INTO audit_log (created_at, actor, action, object_type, object_id,"
                    " team_id, before) VALUES ('2026-01-01', 'admin', 'team.delete', 'team',"
                    " :t, :t, :b)"), {"t": team_id, "b": json.dumps({"team_id": team_id})})
        db.session.commit()
        upgrade()
        tombstones = db.session.scalars(text("SELECT team_id FROM deleted_teams")).all()
        assert sorted(tombstones) == ["gone-1", "gone-2"]
