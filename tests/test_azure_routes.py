"""Azure OpenAI's routes, /openai/deployments/{name}/...?api-version=, with the team key in
api-key: openai.AzureOpenAI pointed at Teamgate reaches the team's model {name}, through the same
resolution, limits and request log as the /v1 routes."""
import openai
import pytest
import requests

from tests.fake_upstream import Reply, chunk
from tests.test_openai_surface import PROVIDER_KEY, logged, register
from tests.test_openai_surface import text_completion

API_VERSION = "2024-10-21"


@pytest.fixture
def team(seed):
    team_id = seed.team()
    return team_id, seed.key(team_id)


def azure(live, key: str) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(azure_endpoint=live.url, api_key=key, api_version=API_VERSION,
                              max_retries=0)


def test_azure_client_chat_streamed_chat_and_embeddings(app, live, client, team, upstream):
    team_id, key = team
    register(client, key, team_id, upstream, "my-team-model", "openai/gpt-4o")
    register(client, key, team_id, upstream, "embedder", "azure/text-embedding-3-small")
    gpt = azure(live, key)
    answer = gpt.chat.completions.create(model="my-team-model",
                                         messages=[{"role": "user", "content": "weather?"}])
    assert answer.choices[0].message.content == "Sunny, 22 degrees."
    call = upstream.received[-1]
    assert call.path == "/v1/chat/completions"
    assert call.body["model"] == "gpt-4o"
    assert call.headers["Authorization"] == f"Bearer {PROVIDER_KEY}"
    upstream.reply(Reply(chunks=[chunk("Sun"), chunk("ny"), chunk(None, "stop"), b"[DONE]"]))
    stream = gpt.chat.completions.create(model="my-team-model", stream=True,
                                         messages=[{"role": "user", "content": "weather?"}])
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Sunny"
    upstream.reply(Reply(body={"object": "list", "model": "text-embedding-3-small", "data": [
        {"object": "embedding", "index": 0, "embedding": [0.5, 0.25]}],
        "usage": {"prompt_tokens": 2, "total_tokens": 2}}))
    vectors = gpt.embeddings.create(model="embedder", input="hello")
    assert vectors.data[0].embedding == [0.5, 0.25]
    assert upstream.received[-1].path == (
        "/openai/deployments/text-embedding-3-small/embeddings?api-version=2024-10-21")
    assert upstream.received[-1].headers["api-key"] == PROVIDER_KEY
    rows = logged(app, team_id)
    assert [(r.route, r.status, r.stream, r.public_model) for r in rows] == [
        ("/chat/completions", 200, False, "my-team-model"),
        ("/chat/completions", 200, True, "my-team-model"),
        ("/embeddings", 200, False, "embedder")]


def test_azure_client_completions_images_and_speech(live, client, team, upstream):
    team_id, key = team
    register(client, key, team_id, upstream, "instruct", "openai/gpt-3.5-turbo-instruct")
    register(client, key, team_id, upstream, "painter", "openai/dall-e-3",
             mode="image_generation")
    register(client, key, team_id, upstream, "voice", "openai/tts-1", mode="audio_speech")
    upstream.reply(Reply(body=text_completion()),
                   Reply(body={"created": 1, "data": [{"url": "https://img.example/1.png"}]}),
                   Reply(body=b"mp3", headers={"Content-Type": "audio/mpeg"}))
    gpt = azure(live, key)
    assert gpt.completions.create(model="instruct", prompt="Once").choices[0].text
    assert upstream.received[-1].path == "/v1/completions"
    image = gpt.images.generate(model="painter", prompt="a lighthouse")
    assert image.data[0].url == "https://img.example/1.png"
    assert upstream.received[-1].body["model"] == "dall-e-3"
    assert gpt.audio.speech.create(model="voice", voice="alloy", input="Hi").content == b"mp3"


def test_the_paths_name_is_the_model_whatever_the_body_says(live, client, team, upstream):
    team_id, key = team
    register(client, key, team_id, upstream, "my-team-model", "openai/gpt-4o")
    response = requests.post(
        f"{live.url}/openai/deployments/my-team-model/chat/completions",
        params={"api-version": API_VERSION}, headers={"api-key": key},
        json={"model": "some-other-model", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200, response.json()
    assert upstream.received[-1].body["model"] == "gpt-4o"
    without_model = requests.post(
        f"{live.url}/openai/deployments/my-team-model/chat/completions",
        params={"api-version": API_VERSION}, headers={"api-key": key},
        json={"messages": [{"role": "user", "content": "hi"}]})
    assert without_model.status_code == 200


def test_azure_routes_answer_errors_in_the_contracts_format(live, client, team, upstream):
    team_id, key = team
    register(client, key, team_id, upstream, "my-team-model", "openai/gpt-4o")
    with pytest.raises(openai.BadRequestError) as missing:
        azure(live, key).chat.completions.create(
            model="no-such-deployment", messages=[{"role": "user", "content": "hi"}])
    error = missing.value.response.json()["error"]
    assert (error["type"], error["param"], error["code"]) == (
        "invalid_request_error", "model", "400")
    assert "model=no-such-deployment" in error["message"]
    with pytest.raises(openai.AuthenticationError) as anonymous:
        azure(live, "sk-not-a-teamgate-key").chat.completions.create(
            model="my-team-model", messages=[{"role": "user", "content": "hi"}])
    assert anonymous.value.response.json()["error"]["type"] == "authentication_error"
    assert upstream.received == []


def test_azure_routes_count_against_the_keys_limits(live, client, seed, upstream):
    team_id = seed.team()
    key = seed.key(team_id, rpm_limit=1)
    register(client, key, team_id, upstream, "my-team-model", "openai/gpt-4o")
    gpt = azure(live, key)
    gpt.chat.completions.create(model="my-team-model",
                                messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.RateLimitError):
        gpt.chat.completions.create(model="my-team-model",
                                    messages=[{"role": "user", "content": "hi"}])
    assert len(upstream.received) == 1
