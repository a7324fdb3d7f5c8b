"""Bedrock, Vertex AI and the Gemini API as a team uses them: registered through /model/new
with their own secrets, called with the team's key through /v1/chat/completions (JSON and
streamed), against loopback servers that speak their wire formats."""
import json

import pytest

from tests.conftest import bearer
from tests.fake_bedrock import FakeBedrock
from tests.test_bedrock import ACCESS_KEY, CLAUDE, SECRET_KEY

CHAT = {"messages": [{"role": "user", "content": "Weather in Paris?"}], "max_tokens": 64}


@pytest.fixture
def bedrock():
    server = FakeBedrock(ACCESS_KEY, SECRET_KEY)
    yield server
    server.close()


def test_a_team_calls_its_bedrock_model_through_teamgate(app, client, seed, bedrock):
    team_id = seed.team()
    key = seed.key(team_id)
    created = client.post("/model/new", headers=bearer(key), json={
        "model_name": "team-claude",
        "litellm_params": {"model": f"bedrock/{CLAUDE}", "api_base": bedrock.url,
                           "aws_access_key_id": ACCESS_KEY,
                           "aws_secret_access_key": SECRET_KEY,
                           "aws_region_name": "us-east-1"},
        "model_info": {"team_id": team_id}})
    assert created.status_code == 200, created.json
    assert SECRET_KEY not in json.dumps(created.json)

    answer = client.post("/v1/chat/completions", headers=bearer(key),
                         json={"model": "team-claude", **CHAT})
    assert answer.status_code == 200, answer.json
    assert answer.json["choices"][0]["message"]["content"] == "Sunny, 22 degrees."
    assert bedrock.received[-1].path.endswith("/converse")  # signed: the fake checked it

    streamed = client.post("/v1/chat/completions", headers=bearer(key),
                           json={"model": "team-claude", "stream": True, **CHAT})
    assert streamed.status_code == 200
    text = streamed.get_data(as_text=True)
    assert '"content": "Hi"' in text.replace('":"', '": "') and text.rstrip().endswith(
        "data: [DONE]")
    assert SECRET_KEY not in text


def test_a_call_may_not_carry_a_providers_fields(client, seed, upstream):
    _, key = seed.team_with_model(upstream.url)
    refused = client.post("/v1/chat/completions", headers=bearer(key), json={
        "model": "my-team-model", "aws_region_name": "us-west-2", **CHAT})
    assert refused.status_code == 400
    assert refused.json["error"]["param"] == "aws_region_name"
