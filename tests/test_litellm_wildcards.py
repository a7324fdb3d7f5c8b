"""LiteLLM's wildcards: deployments named `*` or `<provider>/*` serve any matching model name
with the model asked for; key models `*`, all-proxy-models and all-team-models; /v1/models never
lists a pattern."""
import openai

from tests.conftest import ADMIN, bearer


def register(client, headers, name, model, api_base, team_id=None):
    body = {"model_name": name, "litellm_params": {
        "model": model, "api_base": api_base, "api_key": "sk-wildcard-provider-key-77"}}
    if team_id:
        body["model_info"] = {"team_id": team_id}
    response = client.post("/model/new", headers=headers, json=body)
    assert response.status_code == 200, response.json
    return response.json


def test_a_provider_wildcard_sends_the_model_asked_for(client, live, seed, upstream):
    register(client, ADMIN, "openai/*", "openai/*", upstream.url)
    team_id = seed.team()
    api = openai.OpenAI(base_url=live.url + "/v1", api_key=seed.key(team_id), max_retries=0)
    answer = api.chat.completions.create(model="openai/gpt-4o-mini",
                                         messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content
    assert upstream.received[-1].body["model"] == "gpt-4o-mini"
    names = [m.id for m in api.models.list()]
    assert "openai/*" not in names and "*" not in names


def test_a_teams_catch_all_serves_any_name_but_its_own_models_first(client, seed, upstream,
                                                                    upstream_b):
    team_id, key = seed.team_with_model(upstream.url)
    register(client, bearer(key), "*", "openai/*", upstream_b.url, team_id)
    call = {"messages": [{"role": "user", "content": "hi"}]}
    assert client.post("/v1/chat/completions", headers=bearer(key),
                       json={"model": "gpt-4.1", **call}).status_code == 200
    assert upstream_b.received[-1].body["model"] == "gpt-4.1"
    assert client.post("/v1/chat/completions", headers=bearer(key),
                       json={"model": "my-team-model", **call}).status_code == 200
    assert len(upstream.received) == 1
    other = seed.key(seed.team("B"))  # another team's catch-all is not this team's
    refused = client.post("/v1/chat/completions", headers=bearer(other),
                          json={"model": "gpt-4.1", **call})
    assert refused.status_code == 400 and len(upstream_b.received) == 1
    listed = [m["id"] for m in client.get("/v1/models", headers=bearer(key)).json["data"]]
    assert listed == ["my-team-model"]


def test_key_models_that_mean_every_model(client, seed, upstream):
    team_id, _ = seed.team_with_model(upstream.url)
    for models in (["*"], ["all-team-models"], ["all-proxy-models"]):
        key = seed.key(team_id, models=models)
        response = client.post("/v1/chat/completions", headers=bearer(key), json={
            "model": "my-team-model", "messages": [{"role": "user", "content": "hi"}]})
        assert response.status_code == 200, (models, response.json)
        listed = [m["id"] for m in client.get("/v1/models", headers=bearer(key)).json["data"]]
        assert listed == ["my-team-model"], models
    narrow = seed.key(team_id, models=["openai/*"])
    refused = client.post("/v1/chat/completions", headers=bearer(narrow), json={
        "model": "my-team-model", "messages": [{"role": "user", "content": "hi"}]})
    assert refused.status_code == 401
