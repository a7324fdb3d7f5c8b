"""The site admin's pages: teams, users with one-time passwords, global models."""
from sqlalchemy import select

from webapp.extensions import db
from webapp.models import Deployment, Membership, Team, User


def test_admin_creates_renames_and_deletes_a_team(app, world, as_user):
    admin = as_user("admin")
    assert admin.post("/ui/admin/teams", {"team_alias": "Team C"}).status_code == 302
    with app.app_context():
        team = db.session.scalar(select(Team).where(Team.alias == "Team C"))
        team_id = team.id
    assert admin.post(f"/ui/admin/teams/{team_id}/rename", {"team_alias": "Team Sea"}
                      ).status_code == 302
    assert "Team Sea" in admin.get("/ui/admin/teams").get_data(as_text=True)
    assert "Are you sure" in admin.get(f"/ui/admin/teams/{team_id}/delete").get_data(
        as_text=True)
    assert admin.post(f"/ui/admin/teams/{team_id}/delete").status_code == 302
    with app.app_context():
        assert db.session.get(Team, team_id) is None


def test_admin_creates_a_user_and_adds_them_to_a_team(app, world, as_user):
    admin = as_user("admin")
    page = admin.post("/ui/admin/users", {"email": "newbie@example.com"}).get_data(as_text=True)
    assert 'id="otp"' in page
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "newbie@example.com"))
        user_id = user.id
        assert user.must_change_password
    assert admin.post(f"/ui/admin/users/{user_id}/teams",
                      {"team_id": world.team_a, "role": "admin"}).status_code == 302
    with app.app_context():
        membership = db.session.scalar(select(Membership).where(Membership.user_id == user_id))
        assert (membership.team_id, membership.role) == (world.team_a, "admin")
    trail = admin.get("/ui/admin/audit").get_data(as_text=True)
    assert "user.create" in trail and "member.add" in trail
    duplicate = admin.post("/ui/admin/users", {"email": "newbie@example.com"})
    assert duplicate.status_code == 400 and "already exists" in duplicate.get_data(as_text=True)


def test_admin_registers_and_deletes_a_global_model(app, world, as_user, upstream):
    admin = as_user("admin")
    response = admin.post("/ui/admin/models", {
        "model_name": "shared-mini", "provider": "openai", "model": "gpt-4o-mini",
        "api_base": upstream.url, "api_key": "sk-shared-key-00001111", "credential": ""})
    assert response.status_code == 302, response.get_data(as_text=True)
    page = admin.get("/ui/admin/models").get_data(as_text=True)
    assert "shared-mini" in page and "sk-...1111" in page and "sk-shared-key-00001111" not in page
    assert "my-team-model" not in page  # team models are on their team's page
    with app.app_context():
        model_id = db.session.scalar(select(Deployment.id).where(
            Deployment.public_name == "shared-mini"))
    assert admin.post(f"/ui/admin/models/{model_id}/delete").status_code == 302
    assert "shared-mini" not in admin.get("/ui/admin/models").get_data(as_text=True)


def test_admin_sees_every_team_and_others_see_only_theirs(world, as_user):
    assert "Team B" in as_user("admin").get("/ui/").get_data(as_text=True)
    home = as_user("other").get("/ui/").get_data(as_text=True)
    assert "Team B" in home and "Team A" not in home and world.team_a not in home
