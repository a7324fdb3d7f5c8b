"""Bad input gets a 400 naming the problem and writes nothing; bad keys get 401."""
import time

import pytest
from sqlalchemy import func, select

from tests.conftest import ADMIN, bearer
from webapp.extensions import db
from webapp.models import AuditEntry, Deployment, TeamModelAlias

SEED_PAGE_BODY = """{
  "model_name": "my-team-model", # 👈 Call LiteLLM with this model name
  "litellm_params": {
    "model": "openai/gpt-4o",
    "custom_llm_provider": "openai",
    "api_key": "******ccb07",
    "api_base": "https://my-endpoint-sweden-berri992.openai.azure.com",
    "api_version": "2023-12-01-preview"
  },
  "model_info": {
    "team_id": "e59e2671-a064-436a-a0fa-16ae96e5a0a1" # 👈 Specify the team ID it belongs to
  }
}"""


def stored_counts(app):
    with app.app_context():
        return tuple(db.session.scalar(select(func.count()).select_from(model))
                     for model in (Deployment, TeamModelAlias, AuditEntry))


@pytest.fixture
def team(seed):
    team_id = seed.team()
    return team_id, seed.key(team_id)


def body(team_id, api_base="http://127.0.0.1:9/v1", **params):
    litellm_params = {"model": "openai/gpt-4o", "api_key": "sk-provider-xyz-1234",
                      "api_base": api_base, **params}
    return {"model_name": "m", "litellm_params": litellm_params, "model_info": {"team_id": team_id}}


def assert_400(response, param=None, *words):
    assert response.status_code == 400, response.json
    error = response.json["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "400"
    if param is not None:
        assert error["param"] == param
    for word in words:
        assert word in error["message"], error["message"]
    assert "{'" not in error["message"]  # never a Python repr


def test_seed_body_sent_literally_names_line_and_column(app, client, team):
    _, key = team
    before = stored_counts(app)
    response = client.post("/model/new", data=SEED_PAGE_BODY.encode(),
                           headers={**bearer(key), "Content-Type": "application/json"})
    assert_400(response, None, "Malformed JSON", "line 2 column 34")
    assert stored_counts(app) == before


@pytest.mark.parametrize("mutate, param, words", [
    (lambda b: b.pop("model_name"), "model_name", ["Missing required field: model_name"]),
    (lambda b: b["litellm_params"].pop("model"), "litellm_params.model",
     ["Missing required field: litellm_params.model"]),
    (lambda b: b["litellm_params"].update(model="nosuch/thing"),
     "litellm_params.custom_llm_provider", ["Unknown provider 'nosuch'", "azure", "openai"]),
    (lambda b: b["litellm_params"].update(custom_llm_provider="sagemaker"),
     "litellm_params.custom_llm_provider", ["Unknown provider 'sagemaker'"]),
    (lambda b: b["litellm_params"].update(temperature_x=1, foo="bar"), "litellm_params",
     ["Unknown field(s) in litellm_params: foo, temperature_x"]),
    (lambda b: b.update(extra=1), None, ["Unknown field(s): extra"]),
    (lambda b: b["litellm_params"].update(api_base="ftp://example.com"),
     "litellm_params.api_base", ["http://", "https://"]),
    (lambda b: b["litellm_params"].update(api_base="file:///etc/passwd"),
     "litellm_params.api_base", ["http://"]),
    (lambda b: b["litellm_params"].update(model=42), "litellm_params.model",
     ["must be a string"]),
    (lambda b: b["litellm_params"].update(timeout="soon"), "litellm_params.timeout",
     ["must be a number"]),
])
def test_bad_model_bodies_are_refused_and_store_nothing(app, client, team, mutate, param, words):
    team_id, key = team
    payload = body(team_id)
    mutate(payload)
    before = stored_counts(app)
    assert_400(client.post("/model/new", json=payload, headers=bearer(key)), param, *words)
    assert stored_counts(app) == before


def test_a_missing_team_is_named_to_the_proxy_admin_and_stores_nothing(app, client, team):
    # a team key gets the answer it gets for another team's id (tests/test_security_enumeration)
    payload = body("no-such-team")
    before = stored_counts(app)
    assert_400(client.post("/model/new", json=payload, headers=ADMIN), "model_info.team_id",
               "Team id=no-such-team does not exist.")
    assert stored_counts(app) == before


@pytest.mark.parametrize("field", ["api_base", "api_key", "base_url", "extra_headers"])
def test_chat_bodies_cannot_choose_the_upstream(client, team, seed, upstream, field):
    team_id, key = team
    seed.model(key, team_id, upstream.url)
    response = client.post("/v1/chat/completions", headers=bearer(key), json={
        "model": "my-team-model", "messages": [{"role": "user", "content": "hi"}],
        field: "http://evil.example"})
    assert_400(response, field, field)
    assert upstream.received == []


def test_non_json_and_wrong_methods_get_json_errors(client, team):
    _, key = team
    response = client.post("/model/new", data=b"", headers=bearer(key))
    assert_400(response, None, "empty")
    response = client.get("/model/new", headers=bearer(key))
    assert response.status_code == 405 and response.json["error"]["code"] == "405"
    response = client.get("/no/such/route")
    assert response.status_code == 404 and response.json["error"]["type"] == "not_found_error"


def chat(client, key):
    return client.post("/v1/chat/completions", headers=bearer(key),
                       json={"model": "my-team-model", "messages": [{"role": "user",
                                                                     "content": "hi"}]})


def test_wrong_deleted_and_expired_keys_get_401(app, client, seed, upstream):
    team_id = seed.team()
    key = seed.key(team_id)
    seed.model(key, team_id, upstream.url)
    assert chat(client, key).status_code == 200
    for headers in ({}, bearer("sk-wrong"), {"Authorization": "Basic abc"}):
        response = client.post("/v1/chat/completions", headers=headers, json={})
        assert response.status_code == 401
        assert response.json["error"]["type"] == "authentication_error"
    deleted = client.post("/key/delete", headers=ADMIN, json={"keys": [key]})
    assert deleted.status_code == 200 and deleted.json["deleted_keys"] == ["sk-..." + key[-4:]]
    assert chat(client, key).status_code == 401

    short = seed.key(team_id, duration="1s")
    assert chat(client, short).status_code == 200
    time.sleep(1.1)
    assert chat(client, short).status_code == 401


def test_blocked_key_gets_401_at_once(client, seed, upstream):
    _, key = seed.team_with_model(upstream.url)
    assert chat(client, key).status_code == 200
    assert client.post("/key/update", headers=ADMIN,
                       json={"key": key, "blocked": True}).status_code == 200
    assert chat(client, key).status_code == 401


def test_keys_in_the_query_string_are_refused(client, seed):
    team_id = seed.team()
    key = seed.key(team_id)
    response = client.get(f"/v1/models?api_key={key}")
    assert response.status_code == 401
    assert "Authorization header" in response.json["error"]["message"]


def test_team_info_errors(client, seed):
    assert_400(client.get("/team/info", headers=ADMIN), "team_id")
    assert client.get("/team/info?team_id=nope", headers=ADMIN).status_code == 404
    team_id = seed.team(team_id="fixed-id")
    assert team_id == "fixed-id"
    taken = client.post("/team/new", headers=ADMIN, json={"team_id": "fixed-id"})
    assert_400(taken, "team_id", "already exists")


def test_nul_characters_are_refused_before_they_reach_the_database(app, client, team):
    team_id, key = team
    payload = body(team_id)
    payload["model_name"] = "bad\x00name"
    before = stored_counts(app)
    assert_400(client.post("/model/new", json=payload, headers=bearer(key)), "model_name", "NUL")
    assert stored_counts(app) == before
    assert_400(client.post("/team/new", json={"team_alias": "a\x00"}, headers=ADMIN),
               "team_alias", "NUL")


def test_values_the_database_cannot_look_up_are_a_400(client, team):
    _, key = team
    response = client.get("/model/info?litellm_model_id=bad%00id", headers=bearer(key))
    assert response.status_code in (200, 400)  # SQLite finds nothing; PostgreSQL refuses NUL
    if response.status_code == 400:
        assert response.json["error"]["type"] == "invalid_request_error"
    else:
        assert response.json["data"] == []


def test_a_key_in_the_query_string_is_refused_even_beside_a_valid_header(client, seed, upstream):
    _, key = seed.team_with_model(upstream.url)
    body = {"model": "my-team-model", "messages": [{"role": "user", "content": "hi"}]}
    for query, headers in ((f"?key={key}", {}), (f"?api_key={key}", bearer(key))):
        response = client.post("/v1/chat/completions" + query, json=body, headers=headers)
        assert response.status_code == 401
        assert "never in the query string" in response.json["error"]["message"]
    assert upstream.received == []
