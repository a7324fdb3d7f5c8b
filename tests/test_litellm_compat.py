"""LiteLLM's response headers on proxied calls, /model_group/info and GET /health."""
import openai

from tests.conftest import ADMIN, bearer
from tests.fake_upstream import Reply


def test_proxied_calls_carry_litellms_headers_beside_teamgates(live, seed, upstream):
    team_id, key = seed.team_with_model(upstream.url)
    api = openai.OpenAI(base_url=live.url + "/v1", api_key=key, max_retries=0)
    raw = api.chat.completions.with_raw_response.create(
        model="my-team-model", messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-litellm-model-id"] == raw.headers["x-teamgate-model-id"]
    assert len(raw.headers["x-litellm-call-id"]) == 36
    streamed = api.chat.completions.with_raw_response.create(
        model="my-team-model", messages=[{"role": "user", "content": "hi"}], stream=True)
    assert streamed.headers["x-litellm-call-id"] != raw.headers["x-litellm-call-id"]


def test_model_group_info_lists_what_the_key_can_call(client, seed, upstream):
    team_id, key = seed.team_with_model(upstream.url, rpm=60)
    seed.model(key, team_id, upstream.url, rpm=40)  # a second deployment of the same name
    other_key = seed.team_with_model(upstream.url, name="beta-model")[1]
    groups = client.get("/model_group/info", headers=bearer(key)).json["data"]
    assert [g["model_group"] for g in groups] == ["my-team-model"]
    assert groups[0]["providers"] == ["azure"] and groups[0]["rpm"] == 100
    assert groups[0]["mode"] == "chat"
    assert [g["model_group"] for g in client.get(
        "/model_group/info", headers=bearer(other_key)).json["data"]] == ["beta-model"]


def test_health_shows_each_deployment_as_its_last_call_went(app, client, seed, upstream):
    team_id, key = seed.team_with_model(upstream.url)
    broken = seed.model(key, team_id, upstream.url, name="broken")
    seed.model(key, team_id, upstream.url, name="never-called")
    call = {"messages": [{"role": "user", "content": "hi"}]}
    client.post("/v1/chat/completions", headers=bearer(key), json={"model": "my-team-model", **call})
    upstream.reply(Reply(status=500, body={"error": {"message": "down"}}))
    client.post("/v1/chat/completions", headers=bearer(key), json={"model": "broken", **call})
    with app.app_context():
        app.extensions["teamgate.request_log"].flush()
    health = client.get("/health", headers=ADMIN).json
    assert [e["model_name"] for e in health["healthy_endpoints"]] == ["my-team-model"]
    assert [e["model_id"] for e in health["unhealthy_endpoints"]] == [broken["model_id"]]
    assert [e["model_name"] for e in health["unknown_endpoints"]] == ["never-called"]
    assert health["healthy_count"] == 1 and health["unhealthy_count"] == 1
    assert "sk-provider" not in client.get("/health", headers=ADMIN).get_data(as_text=True)
    assert client.get("/health", headers=bearer(key)).status_code == 403
