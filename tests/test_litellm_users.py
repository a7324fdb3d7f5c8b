"""LiteLLM's /user/* routes over Teamgate's dashboard users, with LiteLLM's request bodies."""
from tests.conftest import ADMIN, bearer
from tests.dashboard_support import DashClient


def test_user_new_returns_a_key_that_carries_the_user(client, seed):
    # LiteLLM's docs: "Create a user with a key"
    response = client.post("/user/new", headers=ADMIN, json={
        "user_email": "krrish@berri.ai", "user_role": "internal_user", "max_budget": 10,
        "models": ["gpt-4o"], "metadata": {"dept": "ml"}})
    assert response.status_code == 200, response.json
    created = response.json
    assert created["key"].startswith("sk-") and created["user_email"] == "krrish@berri.ai"
    assert created["user_role"] == "internal_user" and created["max_budget"] == 10
    assert created["models"] == ["gpt-4o"]
    own = client.get("/key/info", headers=bearer(created["key"])).json["info"]
    assert own["user_id"] == created["user_id"] and own["models"] == ["gpt-4o"]
    info = client.get("/user/info", headers=bearer(created["key"])).json  # its own user
    assert info["user_id"] == created["user_id"] and len(info["keys"]) == 1
    assert info["user_info"]["metadata"] == {"dept": "ml"}
    other = client.post("/user/new", headers=ADMIN, json={"user_email": "o@example.com"}).json
    assert client.get(f"/user/info?user_id={other['user_id']}",
                      headers=bearer(created["key"])).status_code == 404


def test_user_new_without_a_key_and_with_teams(client, seed):
    team_id = seed.team()
    response = client.post("/user/new", headers=ADMIN, json={
        "user_id": "ishaan-jaff", "user_email": "ishaan@berri.ai", "auto_create_key": False,
        "teams": [{"team_id": team_id, "max_budget_in_team": 2.0, "user_role": "admin"}],
        "models": ["gpt-4o"]})
    assert response.status_code == 200, response.json
    assert response.json["key"] is None and response.json["teams"] == [team_id]
    assert response.headers["x-teamgate-ignored-fields"] == "models"  # no key to carry them
    members = client.get(f"/team/info?team_id={team_id}", headers=ADMIN).json
    assert members["team_info"]["members_with_roles"][0]["role"] == "admin"
    assert members["team_memberships"][0]["litellm_budget_table"]["max_budget"] == 2.0
    again = client.post("/user/new", headers=ADMIN, json={"user_id": "ishaan-jaff"})
    assert again.status_code == 400 and again.json["error"]["param"] == "user_id"


def test_user_update_list_and_roles(client):
    user_id = client.post("/user/new", headers=ADMIN, json={
        "user_email": "a@example.com", "auto_create_key": False}).json["user_id"]
    updated = client.post("/user/update", headers=ADMIN, json={
        "user_id": user_id, "user_role": "proxy_admin", "user_alias": "Ana", "max_budget": 5})
    assert updated.status_code == 200, updated.json
    assert updated.json["data"]["user_role"] == "proxy_admin"
    assert updated.json["data"]["user_alias"] == "Ana" and updated.json["data"]["max_budget"] == 5
    by_email = client.post("/user/update", headers=ADMIN, json={
        "user_email": "a@example.com", "user_role": "internal_user_viewer"})
    assert by_email.json["data"]["user_role"] == "internal_user_viewer"
    listed = client.get("/user/list?role=internal_user_viewer", headers=ADMIN).json
    assert [u["user_id"] for u in listed["users"]] == [user_id] and listed["total"] == 1
    wrong = client.post("/user/update", headers=ADMIN,
                        json={"user_id": user_id, "user_role": "superuser"})
    assert wrong.status_code == 400 and wrong.json["error"]["param"] == "user_role"
    missing = client.post("/user/update", headers=ADMIN, json={"user_id": "nobody"})
    assert missing.status_code == 404


def test_a_user_made_by_api_logs_in_once_given_a_password_and_changes_it(app, client):
    client.post("/user/new", headers=ADMIN, json={
        "user_email": "new@example.com", "password": "first-passphrase", "auto_create_key": False})
    dash = DashClient(app)
    assert dash.login("new@example.com", "first-passphrase").headers["Location"].endswith(
        "/ui/password")  # the one-time password flow: it must choose its own


def test_user_delete_ends_its_keys_and_sessions(app, client):
    created = client.post("/user/new", headers=ADMIN, json={
        "user_email": "gone@example.com", "password": "first-passphrase"}).json
    dash = DashClient(app)
    dash.login("gone@example.com", "first-passphrase")
    assert dash.get("/ui/password").status_code == 200
    response = client.post("/user/delete", headers=ADMIN, json={"user_ids": [created["user_id"]]})
    assert response.status_code == 200 and response.json == {"deleted_users": [created["user_id"]]}
    assert client.get("/key/info", headers=bearer(created["key"])).status_code == 401
    assert dash.get("/ui/password").status_code == 302  # the session ended
    assert client.get(f"/user/info?user_id={created['user_id']}", headers=ADMIN).status_code == 404


def test_user_routes_are_the_proxy_admins(client, seed):
    key = seed.key(seed.team())
    assert client.post("/user/new", headers=bearer(key), json={}).status_code == 403
    assert client.get("/user/list", headers=bearer(key)).status_code == 403


def test_a_page_past_what_the_database_can_count_is_a_400(client):
    # found by schemathesis: page=11312174935690268672 overflowed the query's offset (a 500)
    response = client.get("/user/list?page=11312174935690268672", headers=ADMIN)
    assert response.status_code == 400
    assert response.json["error"]["param"] == "page"
    assert client.get("/user/list?page=1000000", headers=ADMIN).status_code == 200
