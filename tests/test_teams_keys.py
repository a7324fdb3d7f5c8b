"""Team and key management routes beyond the seed flow."""
from tests.conftest import ADMIN, bearer


def test_team_update_members_and_limits(client, seed):
    team_id = seed.team("Before", rpm_limit=10)
    response = client.post("/team/update", headers=ADMIN, json={
        "team_id": team_id, "team_alias": "After", "rpm_limit": None, "tpm_limit": 500})
    assert response.status_code == 200
    team = response.json["data"]
    assert team["team_alias"] == "After" and team["tpm_limit"] == 500 and "rpm_limit" not in team
    added = client.post("/team/member_add", headers=ADMIN, json={
        "team_id": team_id, "member": {"user_email": "Ana@Example.com", "role": "admin"}})
    assert added.status_code == 200
    assert added.json["members_with_roles"][0]["user_email"] == "ana@example.com"
    assert added.json["members_with_roles"][0]["role"] == "admin"
    removed = client.post("/team/member_delete", headers=ADMIN, json={
        "team_id": team_id, "user_email": "ana@example.com"})
    assert removed.status_code == 200 and removed.json["members_with_roles"] == []
    again = client.post("/team/member_delete", headers=ADMIN, json={
        "team_id": team_id, "user_email": "ana@example.com"})
    assert again.status_code == 400  # not a member: the caller's mistake, as in LiteLLM


def test_team_delete_takes_its_keys_and_models(client, seed, upstream):
    team_id = seed.team()
    key = seed.key(team_id)
    model = seed.model(key, team_id, upstream.url)
    response = client.post("/team/delete", headers=ADMIN, json={"team_ids": [team_id]})
    assert response.status_code == 200 and response.json == {"deleted_teams": [team_id]}
    assert client.get("/v1/models", headers=bearer(key)).status_code == 401
    info = client.get(f"/model/info?litellm_model_id={model['model_id']}", headers=ADMIN)
    assert info.json["data"] == []
    assert client.get(f"/team/info?team_id={team_id}", headers=ADMIN).status_code == 404


def test_key_info_list_and_update(client, seed):
    team_id = seed.team()
    key = seed.key(team_id, key_alias="ci", models=["my-team-model"], duration="30d")
    own = client.get("/key/info", headers=bearer(key))
    assert own.status_code == 200
    assert own.json["info"]["key_alias"] == "ci" and own.json["info"]["expires"]
    assert own.json["info"]["key_name"] == "sk-..." + key[-4:]
    assert key not in own.get_data(as_text=True)
    listed = client.get("/key/list", headers=ADMIN).json
    assert listed["total_count"] == 1 and listed["data"][0]["key_alias"] == "ci"
    updated = client.post("/key/update", headers=ADMIN, json={"key": key, "key_alias": "ci-2",
                                                              "models": []})
    assert updated.status_code == 200 and updated.json["key_alias"] == "ci-2"
    duplicate = client.post("/key/generate", headers=ADMIN, json={"team_id": team_id,
                                                                  "key_alias": "ci-2"})
    assert duplicate.status_code == 400 and duplicate.json["error"]["param"] == "key_alias"
    deleted = client.post("/key/delete", headers=ADMIN, json={"key_aliases": ["ci-2"]})
    assert deleted.status_code == 200
    assert client.get("/key/info", headers=bearer(key)).status_code == 401


def test_key_restricted_to_models(client, seed, upstream):
    team_id = seed.team()
    admin_key = seed.key(team_id)
    seed.model(admin_key, team_id, upstream.url, name="allowed")
    seed.model(admin_key, team_id, upstream.url, name="other")
    narrow = seed.key(team_id, models=["allowed"])
    names = [m["id"] for m in client.get("/v1/models", headers=bearer(narrow)).json["data"]]
    assert names == ["allowed"]
    response = client.post("/v1/chat/completions", headers=bearer(narrow), json={
        "model": "other", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 401 and response.json["error"]["param"] == "model"


def test_model_update_rename_and_api_base_rule(client, seed, upstream, upstream_b):
    team_id = seed.team()
    key = seed.key(team_id)
    model = seed.model(key, team_id, upstream.url)
    moved = client.post("/model/update", headers=bearer(key), json={
        "model_info": {"id": model["model_id"]}, "litellm_params": {"api_base": upstream_b.url}})
    assert moved.status_code == 400 and moved.json["error"]["param"] == "litellm_params.api_key"
    renamed = client.post("/model/update", headers=bearer(key), json={
        "model_info": {"id": model["model_id"]}, "model_name": "renamed",
        "litellm_params": {"api_base": upstream_b.url, "api_key": "sk-new-provider-key-4321"}})
    assert renamed.status_code == 200
    assert renamed.json["litellm_params"]["api_key"] == "sk-...4321"
    aliases = client.get(f"/team/info?team_id={team_id}", headers=bearer(key)).json[
        "team_info"]["litellm_model_table"]["model_aliases"]
    assert list(aliases) == ["renamed"]
    response = client.post("/v1/chat/completions", headers=bearer(key), json={
        "model": "renamed", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200
    assert upstream_b.received[-1].headers["api-key"] == "sk-new-provider-key-4321"
    assert upstream.received == []


def test_model_delete_removes_the_alias_with_its_last_deployment(client, seed, upstream):
    team_id = seed.team()
    key = seed.key(team_id)
    first = seed.model(key, team_id, upstream.url)
    second = seed.model(key, team_id, upstream.url)
    for model, remaining in ((first, ["my-team-model"]), (second, [])):
        response = client.post("/model/delete", headers=bearer(key), json={"id": model["model_id"]})
        assert response.json == {"message": f"Model: {model['model_id']} deleted successfully"}
        aliases = client.get(f"/team/info?team_id={team_id}", headers=bearer(key)).json[
            "team_info"]["litellm_model_table"]["model_aliases"]
        assert list(aliases) == remaining
    assert client.post("/model/delete", headers=bearer(key),
                       json={"id": first["model_id"]}).status_code == 404
