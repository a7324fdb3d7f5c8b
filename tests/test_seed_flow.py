"""The documented team-model flow (seed page), end to end through a live Teamgate."""
import re

import openai
import pytest

from tests.conftest import ADMIN, bearer

SEED_BODY = {
    "model_name": "my-team-model",
    "litellm_params": {
        "model": "openai/gpt-4o", "custom_llm_provider": "openai",
        "api_key": "sk-provider-team-a-secret-1234",
        "api_base": None, "api_version": "2023-12-01-preview",
    },
    "model_info": {"team_id": None},
}


def register_seed_model(client, key, team_id, api_base):
    body = {**SEED_BODY, "litellm_params": {**SEED_BODY["litellm_params"], "api_base": api_base},
            "model_info": {"team_id": team_id}}
    return client.post("/model/new", json=body, headers=bearer(key))


def test_seed_flow_routes_to_the_teams_azure_deployment(client, live, upstream, seed):
    team_id = seed.team("Team A")
    team_key = seed.key(team_id)
    response = register_seed_model(client, team_key, team_id, upstream.url)
    assert response.status_code == 200
    stored = response.json
    assert re.fullmatch(rf"model_name_{team_id}_[0-9a-f-]{{36}}", stored["model_name"])
    assert stored["litellm_params"]["api_key"] == "sk-...1234"
    assert stored["model_info"]["team_public_model_name"] == "my-team-model"

    chat = openai.OpenAI(api_key=team_key, base_url=live.url + "/v1").chat.completions.create(
        model="my-team-model",
        messages=[{"role": "user", "content": "What's the weather like in Boston today?"}])
    assert chat.choices[0].message.content == "Sunny, 22 degrees."

    call = upstream.received[-1]
    assert call.path == ("/openai/deployments/gpt-4o/chat/completions"
                         "?api-version=2023-12-01-preview")
    assert call.headers["api-key"] == "sk-provider-team-a-secret-1234"
    assert "Authorization" not in call.headers
    assert call.body["messages"][0]["content"] == "What's the weather like in Boston today?"

    info = client.get(f"/team/info?team_id={team_id}", headers=bearer(team_key))
    assert info.status_code == 200
    table = info.json["team_info"]["litellm_model_table"]
    assert table["model_aliases"] == {"my-team-model": stored["model_name"]}
    assert table["created_by"] and table["updated_by"]
    assert table["created_by"].startswith("key:sk-...")


def test_master_key_changes_are_recorded_as_default_user_id(client, upstream, seed):
    team_id = seed.team()
    response = register_seed_model(client, "sk-master-canary-7f3a9c1e5b2d4680aa", team_id,
                                   upstream.url)
    assert response.json["created_by"] == "default_user_id"
    info = client.get(f"/team/info?team_id={team_id}", headers=ADMIN).json
    assert info["team_info"]["litellm_model_table"]["created_by"] == "default_user_id"


def test_model_add_is_the_same_route(client, upstream, seed):
    team_id = seed.team()
    key = seed.key(team_id)
    body = {**SEED_BODY, "litellm_params": {**SEED_BODY["litellm_params"],
                                            "api_base": upstream.url},
            "model_info": {"team_id": team_id}}
    assert client.post("/model/add", json=body, headers=bearer(key)).status_code == 200


def test_three_models_stay_callable_and_listed(client, live, upstream, seed):
    team_id = seed.team()
    key = seed.key(team_id)
    for name in ("alpha", "beta", "gamma"):
        seed.model(key, team_id, upstream.url, name=name)
    aliases = client.get(f"/team/info?team_id={team_id}", headers=bearer(key)).json[
        "team_info"]["litellm_model_table"]["model_aliases"]
    assert sorted(aliases) == ["alpha", "beta", "gamma"]
    api = openai.OpenAI(api_key=key, base_url=live.url + "/v1")
    assert sorted(m.id for m in api.models.list()) == ["alpha", "beta", "gamma"]
    for name in ("alpha", "beta", "gamma"):
        assert api.chat.completions.create(
            model=name, messages=[{"role": "user", "content": "hi"}]).choices
    assert len(upstream.received) == 3


def test_two_deployments_under_one_name_share_traffic(client, upstream, upstream_b, seed):
    team_id = seed.team()
    key = seed.key(team_id)
    first = seed.model(key, team_id, upstream.url)
    second = seed.model(key, team_id, upstream_b.url)
    assert first["model_name"] == second["model_name"]
    for _ in range(10):
        response = client.post("/v1/chat/completions", headers=bearer(key), json={
            "model": "my-team-model", "messages": [{"role": "user", "content": "hi"}]})
        assert response.status_code == 200
    assert len(upstream.received) == 5 and len(upstream_b.received) == 5


def test_openai_provider_without_api_version_posts_to_chat_completions(client, upstream, seed):
    team_id = seed.team()
    key = seed.key(team_id)
    body = {"model_name": "vllm", "litellm_params": {
        "model": "hosted_vllm/meta-llama/Llama-3-8B", "api_base": upstream.url + "/v1",
        "api_key": "sk-vllm-provider-key-5678"}, "model_info": {"team_id": team_id}}
    assert client.post("/model/new", json=body, headers=bearer(key)).status_code == 200
    response = client.post("/chat/completions", headers=bearer(key), json={
        "model": "vllm", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200
    call = upstream.received[-1]
    assert call.path == "/v1/chat/completions"
    assert call.headers["Authorization"] == "Bearer sk-vllm-provider-key-5678"
    assert call.body["model"] == "meta-llama/Llama-3-8B"
    assert response.headers["x-teamgate-model-id"]
    assert float(response.headers["x-teamgate-overhead-ms"]) >= 0


def test_embeddings_are_forwarded(client, upstream, seed):
    team_id = seed.team()
    key = seed.key(team_id)
    seed.model(key, team_id, upstream.url, name="embedder")
    upstream.default.body = {"object": "list", "data": [
        {"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
        "usage": {"prompt_tokens": 2, "total_tokens": 2}}
    response = client.post("/v1/embeddings", headers=bearer(key),
                           json={"model": "embedder", "input": "hello"})
    assert response.status_code == 200
    assert response.json["data"][0]["embedding"] == [0.1, 0.2]
    assert upstream.received[-1].path.startswith("/openai/deployments/gpt-4o/embeddings")


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/chat/completions"])
def test_unknown_model_names_the_way_to_debug(client, seed, path):
    team_id = seed.team()
    key = seed.key(team_id)
    response = client.post(path, headers=bearer(key), json={
        "model": "nope", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 400
    error = response.json["error"]
    assert error["param"] == "model" and error["type"] == "invalid_request_error"
    assert f"GET /team/info?team_id={team_id}" in error["message"]
    assert "model=nope" in error["message"]


def test_unknown_embedding_model_names_its_route(client, seed):
    team_id = seed.team()
    key = seed.key(team_id)
    response = client.post("/v1/embeddings", headers=bearer(key),
                           json={"model": "nope", "input": "hi"})
    assert response.status_code == 400
    assert response.json["error"]["message"].startswith(
        "/embeddings: Invalid model name passed in model=nope.")
