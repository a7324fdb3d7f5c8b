"""LiteLLM's team member routes: member_add creates unknown users, member_update changes the
role and the member's budget, deleting a non-member is the caller's mistake."""
from tests.conftest import ADMIN


def test_member_add_creates_unknown_users_by_id_or_email(client, seed):
    team_id = seed.team()
    # LiteLLM's docs: add a member by user_id, with a budget in the team
    response = client.post("/team/member_add", headers=ADMIN, json={
        "team_id": team_id, "member": {"role": "user", "user_id": "krrish247652@berri.ai"},
        "max_budget_in_team": 100.0})
    assert response.status_code == 200, response.json
    assert response.json["updated_users"] == [{
        "user_id": "krrish247652@berri.ai", "user_email": "krrish247652@berri.ai",
        "role": "user"}]
    assert response.json["updated_team_memberships"][0]["litellm_budget_table"][
        "max_budget"] == 100.0
    by_id = client.post("/team/member_add", headers=ADMIN, json={
        "team_id": team_id, "member": [{"role": "admin", "user_id": "svc-bot"},
                                       {"role": "user", "user_email": "ana@example.com"}]})
    assert by_id.status_code == 200, by_id.json
    members = {m["user_id"]: m for m in by_id.json["members_with_roles"]}
    assert members["svc-bot"] == {"user_id": "svc-bot", "user_email": None, "role": "admin"}
    assert any(m["user_email"] == "ana@example.com" for m in members.values())
    info = client.get("/user/info?user_id=svc-bot", headers=ADMIN).json
    assert info["user_info"]["teams"] == [team_id]


def test_member_update_changes_role_and_budget(client, seed):
    team_id = seed.team()
    client.post("/team/member_add", headers=ADMIN, json={
        "team_id": team_id, "member": {"role": "user", "user_email": "ana@example.com"}})
    response = client.post("/team/member_update", headers=ADMIN, json={
        "team_id": team_id, "user_email": "ana@example.com", "role": "admin",
        "max_budget_in_team": 3.5, "rpm_limit": 10})
    assert response.status_code == 200, response.json
    assert response.json["role"] == "admin" and response.json["max_budget_in_team"] == 3.5
    assert response.json["rpm_limit"] == 10
    assert response.headers["x-teamgate-ignored-fields"] == "rpm_limit"
    team = client.get(f"/team/info?team_id={team_id}", headers=ADMIN).json
    assert team["team_info"]["members_with_roles"][0]["role"] == "admin"
    assert team["team_memberships"][0]["litellm_budget_table"]["max_budget"] == 3.5
    stranger = client.post("/team/member_update", headers=ADMIN, json={
        "team_id": team_id, "user_email": "nobody@example.com", "role": "admin"})
    assert stranger.status_code == 400


def test_deleting_a_non_member_is_400(client, seed):
    team_id = seed.team()
    client.post("/user/new", headers=ADMIN, json={"user_email": "x@example.com",
                                                  "auto_create_key": False})
    response = client.post("/team/member_delete", headers=ADMIN, json={
        "team_id": team_id, "user_email": "x@example.com"})
    assert response.status_code == 400 and "not a member" in response.json["error"]["message"]
