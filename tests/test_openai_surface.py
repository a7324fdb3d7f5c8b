"""OpenAI's surface beyond chat, through the official openai client against loopback upstreams:
legacy completions, model lookup, images, speech, transcriptions, moderations, and the same
deployments reached the way Azure OpenAI's clients call them."""
import threading

import openai
import pytest
from sqlalchemy import select

from tests.conftest import ADMIN, bearer
from tests.fake_upstream import Reply
from webapp.extensions import db
from webapp.models import RequestLogEntry

PROVIDER_KEY = "sk-provider-surface-secret-9876"


def register(client, key: str, team_id: str | None, upstream, name: str, model: str,
             mode: str | None = None, **params) -> dict:
    """A deployment as a user registers one: `openai/...` (no api_version) is OpenAI's API at
    api_base/v1, `azure/...` an Azure deployment."""
    azure = model.startswith("azure/")
    litellm = {"model": model, "api_key": PROVIDER_KEY,
               "api_base": upstream.url if azure else upstream.url + "/v1", **params}
    if azure:
        litellm.setdefault("api_version", "2024-10-21")
    info = {"team_id": team_id} if team_id else {}
    if mode:
        info["mode"] = mode
    response = client.post("/model/new", headers=bearer(key) if team_id else ADMIN,
                           json={"model_name": name, "litellm_params": litellm,
                                 "model_info": info})
    assert response.status_code == 200, response.json
    return response.json


@pytest.fixture
def team(seed):
    team_id = seed.team()
    return team_id, seed.key(team_id)


def sdk(live, key: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=live.url + "/v1", max_retries=0)


def logged(app, team_id: str) -> list[RequestLogEntry]:
    app.extensions["teamgate.request_log"].flush()
    with app.app_context():
        return list(db.session.scalars(select(RequestLogEntry).where(
            RequestLogEntry.team_id == team_id).order_by(RequestLogEntry.id)))


def text_completion(text="Once upon a time", model="gpt-3.5-turbo-instruct") -> dict:
    return {"id": "cmpl-fake", "object": "text_completion", "created": 1700000000,
            "model": model, "choices": [{"text": text, "index": 0, "logprobs": None,
                                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 4, "completion_tokens": 6, "total_tokens": 10}}


def completion_chunk(text: str, usage: dict | None = None) -> dict:
    chunk = {"id": "cmpl-fake", "object": "text_completion", "created": 1700000000,
             "model": "gpt-3.5-turbo-instruct",
             "choices": [] if usage else [{"text": text, "index": 0, "logprobs": None,
                                           "finish_reason": None}]}
    if usage:
        chunk["usage"] = usage
    return chunk


# legacy completions -------------------------------------------------------------------------

def test_completions_plain_and_streamed_with_usage_logged(app, live, client, team, upstream):
    team_id, key = team
    register(client, key, team_id, upstream, "instruct", "openai/gpt-3.5-turbo-instruct")
    upstream.reply(Reply(body=text_completion()), Reply(chunks=[
        completion_chunk("Once"), completion_chunk(" upon"),
        completion_chunk("", usage={"prompt_tokens": 3, "completion_tokens": 2,
                                    "total_tokens": 5}), b"[DONE]"]))
    gpt = sdk(live, key)
    answer = gpt.completions.create(model="instruct", prompt="Tell a story", max_tokens=8)
    assert answer.choices[0].text == "Once upon a time"
    plain = upstream.received[-1]
    assert plain.path == "/v1/completions"
    assert plain.headers["Authorization"] == f"Bearer {PROVIDER_KEY}"
    assert plain.body == {"model": "gpt-3.5-turbo-instruct", "prompt": "Tell a story",
                          "max_tokens": 8}
    stream = gpt.completions.create(model="instruct", prompt="Tell a story", stream=True,
                                    stream_options={"include_usage": True})
    texts = [c.choices[0].text for c in stream if c.choices]
    assert texts == ["Once", " upon"]
    assert upstream.received[-1].body["stream"] is True
    rows = logged(app, team_id)
    assert [(r.route, r.status, r.stream, r.prompt_tokens, r.completion_tokens)
            for r in rows] == [("/completions", 200, False, 4, 6),
                               ("/completions", 200, True, 3, 2)]


def test_completions_on_azure_and_openai_compatible_deployments(live, client, team, upstream):
    team_id, key = team
    register(client, key, team_id, upstream, "azure-instruct", "azure/instruct-deployment")
    register(client, key, team_id, upstream, "llama-base", "hosted_vllm/meta-llama/Llama-3-8B")
    upstream.default = Reply(body=text_completion())
    gpt = sdk(live, key)
    gpt.completions.create(model="azure-instruct", prompt="Hi")
    azure = upstream.received[-1]
    assert azure.path == "/openai/deployments/instruct-deployment/completions" \
                         "?api-version=2024-10-21"
    assert azure.headers["api-key"] == PROVIDER_KEY
    gpt.completions.create(model="llama-base", prompt="Hi")
    assert upstream.received[-1].path == "/v1/completions"
    assert upstream.received[-1].body["model"] == "meta-llama/Llama-3-8B"


def test_completions_need_a_prompt(client, team, upstream):
    team_id, key = team
    register(client, key, team_id, upstream, "instruct", "openai/gpt-3.5-turbo-instruct")
    response = client.post("/v1/completions", headers=bearer(key), json={"model": "instruct"})
    assert response.status_code == 400
    assert response.json["error"]["param"] == "prompt"
    assert upstream.received == []


# GET /v1/models/{id} ------------------------------------------------------------------------

def test_models_retrieve_answers_for_callable_names_and_404_for_all_others(
        live, client, seed, upstream):
    a, b = seed.team("Team A"), seed.team("Team B")
    key_a, key_b = seed.key(a), seed.key(b)
    register(client, key_a, a, upstream, "alpha-model", "openai/gpt-4o")
    internal_b = register(client, key_b, b, upstream, "beta-model", "openai/gpt-4o")
    register(client, ADMIN, None, upstream, "openai/gpt-4o-mini", "openai/gpt-4o-mini")
    gpt = sdk(live, key_a)
    own = gpt.models.retrieve("alpha-model")
    assert (own.id, own.object, own.owned_by) == ("alpha-model", "model", "teamgate")
    assert gpt.models.retrieve("openai/gpt-4o-mini").id == "openai/gpt-4o-mini"
    answers = {}
    for name in ("beta-model", internal_b["model_name"], "no-such-model"):
        with pytest.raises(openai.NotFoundError) as refused:
            gpt.models.retrieve(name)
        assert refused.value.status_code == 404
        answers[name] = refused.value.response.json()
        assert answers[name]["error"]["type"] == "not_found_error"
        assert answers[name]["error"]["code"] == "404"
        assert answers[name]["error"]["param"] == "model"
    # another team's names answer exactly like a name that does not exist
    shapes = {name: str(body).replace(name, "<name>") for name, body in answers.items()}
    assert len(set(shapes.values())) == 1
    # the same lookup from team B sees its own model, not team A's
    assert sdk(live, key_b).models.retrieve("beta-model").id == "beta-model"
    assert client.get("/v1/models/alpha-model", headers=bearer(key_b)).status_code == 404


def test_models_retrieve_respects_the_teams_allowed_global_models(client, seed, upstream):
    register(client, ADMIN, None, upstream, "gpt-4o-mini", "openai/gpt-4o-mini")
    register(client, ADMIN, None, upstream, "gpt-4o", "openai/gpt-4o")
    limited = seed.team("Limited", models=["gpt-4o-mini"])
    key = seed.key(limited)
    assert client.get("/v1/models/gpt-4o-mini", headers=bearer(key)).status_code == 200
    assert client.get("/models/gpt-4o", headers=bearer(key)).status_code == 404


# images -------------------------------------------------------------------------------------

IMAGE = {"created": 1700000000, "data": [{"b64_json": "aW1hZ2U="}],
         "usage": {"input_tokens": 11, "output_tokens": 4160, "total_tokens": 4171,
                   "input_tokens_details": {"text_tokens": 11, "image_tokens": 0}}}


def test_images_generate_on_openai_and_azure_image_deployments(app, live, client, team,
                                                               upstream):
    team_id, key = team
    register(client, key, team_id, upstream, "painter", "openai/gpt-image-1",
             mode="image_generation")
    register(client, key, team_id, upstream, "azure-painter", "azure/dalle3",
             mode="image_generation")
    upstream.default = Reply(body=IMAGE)
    gpt = sdk(live, key)
    image = gpt.images.generate(model="painter", prompt="a lighthouse at dawn", size="1024x1024")
    assert image.data[0].b64_json == "aW1hZ2U="
    assert upstream.received[-1].path == "/v1/images/generations"
    assert upstream.received[-1].body == {"model": "gpt-image-1", "size": "1024x1024",
                                          "prompt": "a lighthouse at dawn"}
    gpt.images.generate(model="azure-painter", prompt="a lighthouse")
    assert upstream.received[-1].path.startswith("/openai/deployments/dalle3/images/generations")
    rows = logged(app, team_id)
    assert [(r.route, r.status, r.prompt_tokens, r.completion_tokens) for r in rows] == [
        ("/images/generations", 200, 11, 4160), ("/images/generations", 200, 11, 4160)]


def test_a_deployment_whose_mode_does_not_serve_the_route_gets_a_clear_400(
        app, live, client, team, upstream):
    team_id, key = team
    register(client, key, team_id, upstream, "chatty", "openai/gpt-4o")
    register(client, key, team_id, upstream, "painter", "openai/dall-e-3",
             mode="image_generation")
    gpt = sdk(live, key)
    with pytest.raises(openai.BadRequestError) as refused:
        gpt.images.generate(model="chatty", prompt="a cat")
    error = refused.value.response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == "model"
    assert error["code"] == "400"
    assert "/images/generations" in error["message"] and "image_generation" in error["message"]
    with pytest.raises(openai.BadRequestError) as refused:
        gpt.chat.completions.create(model="painter", messages=[{"role": "user", "content": "x"}])
    assert "image_generation" in refused.value.response.json()["error"]["message"]
    with pytest.raises(openai.BadRequestError):
        gpt.moderations.create(model="painter", input="hello")
    assert upstream.received == []
    assert [(r.route, r.status) for r in logged(app, team_id)] == [
        ("/images/generations", 400), ("/chat/completions", 400), ("/moderations", 400)]


# moderations --------------------------------------------------------------------------------

MODERATION = {"id": "modr-1", "model": "omni-moderation-latest", "results": [
    {"flagged": False, "categories": {"violence": False},
     "category_scores": {"violence": 0.0001}}]}


def test_moderations_on_a_moderation_deployment_and_none_on_azure(app, live, client, team,
                                                                  upstream):
    team_id, key = team
    register(client, key, team_id, upstream, "guard", "openai/omni-moderation-latest",
             mode="moderation")
    register(client, key, team_id, upstream, "azure-guard", "azure/guard", mode="moderation")
    upstream.default = Reply(body=MODERATION)
    gpt = sdk(live, key)
    result = gpt.moderations.create(model="guard", input="I like turtles")
    assert result.results[0].flagged is False
    assert upstream.received[-1].path == "/v1/moderations"
    assert upstream.received[-1].body == {"model": "omni-moderation-latest",
                                          "input": "I like turtles"}
    with pytest.raises(openai.BadRequestError) as refused:
        gpt.moderations.create(model="azure-guard", input="I like turtles")
    assert "does not serve /moderations" in refused.value.response.json()["error"]["message"]
    assert len(upstream.received) == 1
    assert [(r.route, r.status) for r in logged(app, team_id)] == [
        ("/moderations", 200), ("/moderations", 400)]


# speech -------------------------------------------------------------------------------------

def test_speech_audio_is_relayed_as_it_arrives(app, live, client, team, upstream):
    team_id, key = team
    register(client, key, team_id, upstream, "voice", "openai/gpt-4o-mini-tts",
             mode="audio_speech")
    gate = threading.Event()
    audio = [b"ID3\x04" + bytes(range(256)) * 64, b"\xff\xfb" * 5000, b"\x00end"]
    upstream.reply(Reply(chunks=audio, raw_events=True, gate=gate,
                         headers={"Content-Type": "audio/mpeg"}))
    gpt = sdk(live, key)
    with gpt.audio.speech.with_streaming_response.create(
            model="voice", voice="alloy", input="Hello there") as response:
        assert response.headers["content-type"] == "audio/mpeg"
        pieces = response.iter_bytes(1024)
        first = next(pieces)  # arrives while the upstream still holds the rest back
        assert audio[0].startswith(first)
        gate.set()
        received = first + b"".join(pieces)
    assert received == b"".join(audio)
    call = upstream.received[-1]
    assert call.path == "/v1/audio/speech"
    assert call.body == {"model": "gpt-4o-mini-tts", "voice": "alloy", "input": "Hello there"}
    upstream.reply(Reply(body=b"RIFF-whole-file", headers={"Content-Type": "audio/wav"}))
    whole = gpt.audio.speech.create(model="voice", voice="alloy", input="Hi",
                                    response_format="wav")
    assert whole.content == b"RIFF-whole-file"
    assert [(r.route, r.status) for r in logged(app, team_id)] == [
        ("/audio/speech", 200), ("/audio/speech", 200)]


def test_speech_on_an_azure_deployment(live, client, team, upstream):
    team_id, key = team
    register(client, key, team_id, upstream, "azure-voice", "azure/tts", mode="audio_speech")
    upstream.reply(Reply(body=b"mp3-bytes", headers={"Content-Type": "audio/mpeg"}))
    speech = sdk(live, key).audio.speech.create(model="azure-voice", voice="nova", input="Hi")
    assert speech.content == b"mp3-bytes"
    assert upstream.received[-1].path.startswith("/openai/deployments/tts/audio/speech?")
    assert upstream.received[-1].headers["api-key"] == PROVIDER_KEY


def test_streamed_images_and_speech_events_are_relayed_with_their_usage(app, live, client,
                                                                        team, upstream):
    team_id, key = team
    register(client, key, team_id, upstream, "painter", "openai/gpt-image-1",
             mode="image_generation")
    register(client, key, team_id, upstream, "voice", "openai/gpt-4o-mini-tts",
             mode="audio_speech")
    usage = {"input_tokens": 7, "output_tokens": 300, "total_tokens": 307,
             "input_tokens_details": {"text_tokens": 7, "image_tokens": 0}}
    upstream.reply(
        Reply(chunks=[{"type": "image_generation.partial_image", "b64_json": "cGFy",
                       "partial_image_index": 0},
                      {"type": "image_generation.completed", "b64_json": "ZnVsbA==",
                       "usage": usage}]),
        Reply(chunks=[{"type": "speech.audio.delta", "audio": "AAAA"},
                      {"type": "speech.audio.done", "usage": {
                          "input_tokens": 5, "output_tokens": 40, "total_tokens": 45}}]))
    gpt = sdk(live, key)
    events = [event.type for event in gpt.images.generate(
        model="painter", prompt="a lighthouse", stream=True, partial_images=1)]
    assert events == ["image_generation.partial_image", "image_generation.completed"]
    with gpt.audio.speech.with_streaming_response.create(
            model="voice", voice="alloy", input="Hi", stream_format="sse") as speech:
        assert speech.headers["content-type"].startswith("text/event-stream")
        text = speech.read()
    assert b"speech.audio.done" in text and b"[DONE]" not in text
    rows = logged(app, team_id)
    assert [(r.route, r.stream, r.prompt_tokens, r.completion_tokens) for r in rows] == [
        ("/images/generations", True, 7, 300), ("/audio/speech", True, 5, 40)]


def test_the_new_routes_count_against_the_keys_limits(live, client, seed, upstream):
    team_id = seed.team()
    key = seed.key(team_id, tpm_limit=1000)
    register(client, key, team_id, upstream, "instruct", "openai/gpt-3.5-turbo-instruct")
    register(client, key, team_id, upstream, "painter", "openai/dall-e-3",
             mode="image_generation")
    gpt = sdk(live, key)
    with pytest.raises(openai.RateLimitError) as refused:
        gpt.completions.create(model="instruct", prompt="word " * 2000)
    assert "about 2500 tokens" in refused.value.response.json()["error"]["message"]
    with pytest.raises(openai.RateLimitError):
        gpt.images.generate(model="painter", prompt="a lighthouse " * 400)
    assert upstream.received == []
    other = seed.key(team_id, rpm_limit=1)
    upstream.default = Reply(body=IMAGE)
    sdk(live, other).images.generate(model="painter", prompt="a lighthouse")
    with pytest.raises(openai.RateLimitError):
        sdk(live, other).images.generate(model="painter", prompt="a lighthouse")
    assert len(upstream.received) == 1
