"""LiteLLM's request fields on the management routes: every field LiteLLM declares is accepted;
those Teamgate does not act on are stored, returned and named in x-teamgate-ignored-fields; a
field neither knows is a 400 naming the closest known one; null means unset."""
from tests.conftest import ADMIN, bearer

IGNORED = "x-teamgate-ignored-fields"


def test_key_generate_takes_litellms_fields_and_names_those_it_only_stores(client, seed):
    team_id = seed.team()
    # the body of LiteLLM's /key/generate documentation, with its optional fields
    response = client.post("/key/generate", headers=ADMIN, json={
        "team_id": team_id, "key_alias": "ci", "models": ["gpt-4o"], "duration": "20m",
        "metadata": {"user": "ishaan@berri.ai"}, "max_budget": 10, "soft_budget": 5,
        "tpm_limit": 1000, "rpm_limit": 10, "max_parallel_requests": 2,
        "aliases": {"mistral-7b": "gpt-3.5-turbo"}, "tags": ["prod"], "key_type": "llm_api",
        "permissions": {"pii_masking": True}, "guardrails": ["aporia"], "config": {},
        "allowed_cache_controls": ["no-cache"], "model_max_budget": {}, "spend": 0})
    assert response.status_code == 200, response.json
    named = response.headers[IGNORED].split(", ")
    assert named == sorted(["aliases", "tags", "key_type", "permissions", "guardrails",
                            "config", "allowed_cache_controls", "model_max_budget", "spend"])
    body = response.json
    assert body["tags"] == ["prod"] and body["key_type"] == "llm_api"
    assert body["soft_budget"] == 5 and body["rpm_limit"] == 10
    assert body["token_id"] == body["token"] and body["updated_at"]
    info = client.get("/key/info", headers=bearer(body["key"])).json["info"]
    assert info["aliases"] == {"mistral-7b": "gpt-3.5-turbo"} and info["tags"] == ["prod"]
    assert IGNORED not in client.post("/key/generate", headers=ADMIN,
                                      json={"team_id": team_id}).headers


def test_an_unknown_field_is_a_400_naming_the_closest_known_one(client, seed):
    team_id = seed.team()
    response = client.post("/key/generate", headers=ADMIN,
                           json={"team_id": team_id, "key_allias": "ci"})
    assert response.status_code == 400
    error = response.json["error"]
    assert error["param"] == "key_allias"
    assert "key_allias" in error["message"] and "Did you mean key_alias?" in error["message"]
    team = client.post("/team/new", headers=ADMIN, json={"team_alias": "x", "max_budjet": 1})
    assert team.status_code == 400 and "max_budget" in team.json["error"]["message"]


def test_a_caller_chosen_key_is_refused_with_the_reason(client, seed):
    response = client.post("/key/generate", headers=ADMIN,
                           json={"team_id": seed.team(), "key": "sk-1234"})
    assert response.status_code == 400 and response.json["error"]["param"] == "key"
    assert "generates every key" in response.json["error"]["message"]


def test_team_fields_are_stored_returned_and_named(client):
    response = client.post("/team/new", headers=ADMIN, json={
        "team_alias": "Sweden", "tags": ["eu"], "guardrails": ["pii"],
        "team_member_key_duration": "30d", "organization_id": None, "metadata": None, "models": None})
    assert response.status_code == 200, response.json
    assert response.headers[IGNORED] == "guardrails, organization_id, tags, team_member_key_duration"
    team = response.json
    assert team["tags"] == ["eu"] and team["metadata"] == {} and team["models"] == []
    assert "organization_id" not in team  # null: not set
    updated = client.post("/team/update", headers=ADMIN,
                          json={"team_id": team["team_id"], "tags": None, "guardrails": ["x"]})
    assert updated.status_code == 200
    assert "tags" not in updated.json["data"] and updated.json["data"]["guardrails"] == ["x"]
    info = client.get(f"/team/info?team_id={team['team_id']}", headers=ADMIN).json
    assert info["team_info"]["guardrails"] == ["x"]


def test_null_metadata_and_models_on_update_mean_unset(client, seed):
    team_id = seed.team()
    key = seed.key(team_id, models=["a"], metadata={"x": 1})
    response = client.post("/key/update", headers=ADMIN,
                           json={"key": key, "models": None, "metadata": None, "blocked": None})
    assert response.status_code == 200, response.json
    assert response.json["models"] == [] and response.json["metadata"] == {}
    assert response.json["blocked"] is False
    assert IGNORED not in response.headers
