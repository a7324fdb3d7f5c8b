"""Vertex AI and Gemini API deployments: OpenAI chat and embeddings translated to
generateContent, streamGenerateContent and the embeddings methods and back, on recorded wire
shapes; and end to end against a loopback Google whose token endpoint checks the service
account's signed assertion, through Teamgate's transport."""
import json
import logging
import threading
import time
from pathlib import Path

import pytest

from tests.fake_vertex import FakeGoogle, Reply, new_key, service_account
from webapp.errors import APIError
from webapp.config import Defaults
from webapp.upstream import failures, masking, transport
from webapp.proxy.forwarding import new_client
from webapp.providers.gemini_chat import schema
from webapp.providers.google_auth import TeamgateRequest, TokenSource
from webapp.providers.base import Target
from webapp.providers.openai_shape import StreamOutcome
from webapp.upstream.sse import SSEEvents
from webapp.providers.vertex import (GEMINI_FIELDS, VERTEX_FIELDS, GeminiProvider,
                                           VertexAIProvider)

FIXTURES = Path(__file__).parent / "fixtures" / "providers"
EMAIL = "teamgate@teamgate-test.iam.gserviceaccount.com"
GEMINI_KEY = "sk-provider-gemini-AIzaSyD-test-key-0042"
ALLOW = "127.0.0.1/32"
GEMINI = GeminiProvider()
CHAT = {"model": "gemini", "max_tokens": 64,
        "messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "Weather in Paris?"}]}


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def target(provider, model="gemini-1.5-pro", api_base=None, secrets=None, **params):
    return Target(
        deployment_id="dep-1", public_name="gemini", team_id="team-a", provider=provider,
        upstream_model=model, api_base=api_base, api_version=None, api_key=None,
        organization=None, timeout=None, stream_timeout=None, max_retries=None,
        params=params, secrets=secrets or {})


class FixedTokens:
    def token(self, credentials: str) -> str:
        return "ya29.fixed"


VERTEX = VertexAIProvider(FixedTokens)


def vertex_target(credentials='{"project_id": "teamgate-test"}', **kwargs):
    return target(VERTEX, secrets={"vertex_credentials": credentials}, **kwargs)


def gemini_target(**kwargs):
    return target(GEMINI, secrets={"api_key": GEMINI_KEY}, **kwargs)


def without_generated(answer: dict) -> dict:
    """The answer without its id and time, generated call ids shown as <generated>."""
    answer = {k: v for k, v in answer.items() if k not in ("id", "created")}
    text = json.dumps(answer)
    for call in answer["choices"][0]["message"].get("tool_calls") or ():
        text = text.replace(call["id"].split("__thought__")[0], "<generated>")
    return json.loads(text)


def sse_payloads(events: list[bytes]) -> list:
    out = []
    for item in events:
        assert item.startswith(b"data: ") and item.endswith(b"\n\n")
        text = item[6:-2]
        out.append(text.decode() if text == b"[DONE]" else json.loads(text))
    return out


def sse_bytes(events: list[dict]) -> bytes:
    return b"".join(b"data: " + json.dumps(e).encode() + b"\r\n\r\n" for e in events)


def translate(chunks: list[bytes], include_usage=False):
    outcome = StreamOutcome()
    events = GEMINI.translate_stream(iter(chunks), "gemini-2.0-flash", outcome, include_usage)
    return sse_payloads(list(events)), outcome


# translation on recorded shapes, no server

@pytest.mark.parametrize("provider", [VERTEX, GEMINI], ids=["vertex", "gemini"])
def test_chat_body_becomes_the_generate_content_body(provider):
    recorded = fixture("gemini_request.json")
    deployment = vertex_target() if provider is VERTEX else gemini_target()
    assert provider.prepare(deployment, "chat", recorded["openai"]).body == recorded["google"]


def test_schemas_lose_the_keywords_google_refuses_and_keep_property_names():
    assert schema({"type": "object", "additionalProperties": False, "strict": True,
                   "properties": {"format": {"type": ["integer", "null"]},
                                  "items": {"type": "array", "items": {"type": "string"}}}}) \
        == {"type": "object", "properties": {
            "format": {"type": "integer", "nullable": True},
            "items": {"type": "array", "items": {"type": "string"}}}}
    with pytest.raises(APIError):
        schema({"$ref": "#/$defs/City"})


@pytest.mark.parametrize("choice, config", [
    ("auto", {"mode": "AUTO"}), ("required", {"mode": "ANY"}), ("none", {"mode": "NONE"}),
    ({"type": "function", "function": {"name": "now"}},
     {"mode": "ANY", "allowedFunctionNames": ["now"]})])
def test_tool_choice_maps_to_function_calling_config(choice, config):
    body = {**fixture("gemini_request.json")["openai"], "tool_choice": choice}
    sent = GEMINI.prepare(gemini_target(), "chat", body).body
    assert sent["toolConfig"] == {"functionCallingConfig": config}


def test_an_image_url_is_refused_not_fetched():
    body = {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://169.254.169.254/latest/x.png"}}]}]}
    with pytest.raises(APIError) as refused:
        GEMINI.prepare(gemini_target(), "chat", body)
    assert refused.value.status == 400 and "does not fetch" in refused.value.message


def test_answer_with_text_and_function_calls_becomes_an_openai_message():
    recorded = fixture("gemini_answer.json")
    answer = GEMINI.translate_response("chat", recorded["google"], "gemini")
    assert without_generated(answer) == recorded["openai"]


def test_a_thought_signature_goes_back_with_its_function_call():
    answer = GEMINI.translate_response("chat", fixture("gemini_answer.json")["google"])
    message = answer["choices"][0]["message"]
    follow_up = {"messages": [
        {"role": "user", "content": "Weather?"}, message,
        *({"role": "tool", "tool_call_id": c["id"], "content": "ok"}
          for c in message["tool_calls"])]}
    sent = GEMINI.prepare(gemini_target(), "chat", follow_up).body
    parts = sent["contents"][1]["parts"]
    assert parts[0] == {"text": "I will check both cities."}
    assert [p.get("thoughtSignature") for p in parts[1:]] == [None, "CiQBcsjafQz3Y0a4"]
    assert [p["functionResponse"]["name"] for p in sent["contents"][2]["parts"]] == [
        "get_weather", "get_weather"]


@pytest.mark.parametrize("reason, finish", [
    ("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"),
    ("RECITATION", "content_filter"), ("OTHER", "stop")])
def test_finish_reasons_map(reason, finish):
    answer = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]}
    assert GEMINI.translate_response("chat", answer)["choices"][0]["finish_reason"] == finish


def test_a_blocked_prompt_is_a_content_filter_answer():
    answer = GEMINI.translate_response("chat", {"promptFeedback": {"blockReason": "SAFETY"},
                                                "usageMetadata": {"promptTokenCount": 7}})
    assert answer["choices"][0]["finish_reason"] == "content_filter"
    assert answer["usage"]["prompt_tokens"] == 7


def test_stream_translation_does_not_depend_on_where_chunks_are_cut():
    recorded = fixture("gemini_stream.json")
    data = sse_bytes(recorded["events"])
    for chunks in [[data[:k], data[k:]] for k in range(1, len(data))] + [
            [data[i:i + 1] for i in range(len(data))]]:
        events, outcome = translate(chunks)
        shapes = [{k: c["choices"][0][k] for k in ("delta", "finish_reason")}
                  for c in events[:-1]]
        generated = shapes[2]["delta"]["tool_calls"][0]["id"]
        assert generated.startswith("call_")
        shapes[2]["delta"]["tool_calls"][0]["id"] = "<generated>"
        assert shapes == recorded["openai"]
        assert events[-1] == "[DONE]"
        assert (outcome.prompt_tokens, outcome.completion_tokens) == (40, 17)


def test_usage_chunk_is_sent_when_asked_for():
    recorded = fixture("gemini_stream.json")
    events, _ = translate([sse_bytes(recorded["events"])], include_usage=True)
    assert events[-2] | {"id": None, "created": None} == {
        "id": None, "created": None, "object": "chat.completion.chunk",
        "model": "gemini-2.0-flash", "choices": [], "usage": recorded["usage"]}


def test_an_error_event_in_the_stream_becomes_one_error_event():
    data = sse_bytes([fixture("gemini_stream.json")["events"][0], {"error": {
        "code": 429, "status": "RESOURCE_EXHAUSTED", "message": "Quota exceeded"}}])
    events, outcome = translate([data])
    assert events[0]["choices"][0]["delta"]["content"] == "Checking"
    assert events[-1]["error"]["type"] == "rate_limit_error"
    assert "Quota exceeded" in events[-1]["error"]["message"]
    assert "[DONE]" not in events and outcome.error.status == 429


def test_a_stream_that_ends_without_a_finish_reason_is_an_error_event():
    events, _ = translate([sse_bytes(fixture("gemini_stream.json")["events"][:2])])
    assert events[-1]["error"]["message"] == ("The upstream's stream ended before the answer "
                                              "was complete.")


def _split_seconds(chunks: list[bytes]) -> tuple[float, list]:
    splitter, started = SSEEvents(1 << 30), time.perf_counter()
    events = [data for chunk in chunks for data in splitter.feed(chunk)]
    return time.perf_counter() - started, events


def test_sse_splitting_is_linear_however_the_bytes_are_chunked():
    # appending each chunk to what is pending would re-copy a long line on every chunk
    small = b"data: " + b"x" * 500 + b"\n\n"
    apart, small_events = _split_seconds([small] * 4000)
    together, joined_events = _split_seconds([small * 4000])
    line = b"data: " + b"y" * 2_000_000 + b"\n\n"
    cut, long_events = _split_seconds([line[i:i + 512] for i in range(0, len(line), 512)])
    assert len(small_events) == len(joined_events) == 4000
    assert [len(e) for e in long_events] == [2_000_000]
    assert together < apart * 4 and cut < apart * 4


@pytest.mark.parametrize("deployment, url", [
    (dict(vertex_location="europe-west4"),
     "https://europe-west4-aiplatform.googleapis.com/v1/projects/teamgate-test/locations/"
     "europe-west4/publishers/google/models/gemini-1.5-pro:generateContent"),
    (dict(vertex_location="global", vertex_project="other-project"),
     "https://aiplatform.googleapis.com/v1/projects/other-project/locations/global/"
     "publishers/google/models/gemini-1.5-pro:generateContent"),
    (dict(api_base="https://gateway.example/v1/projects/p/locations/l/publishers/google/"
                   "models/gemini-1.5-pro"),
     "https://gateway.example/v1/projects/p/locations/l/publishers/google/models/"
     "gemini-1.5-pro:generateContent"),
    (dict(api_base="https://vertex-proxy.example/"),
     "https://vertex-proxy.example/v1/projects/teamgate-test/locations/us-central1/"
     "publishers/google/models/gemini-1.5-pro:generateContent"),
])
def test_vertex_urls(deployment, url):
    assert VERTEX.upstream_url(vertex_target(**deployment), "chat") == url


def test_stream_and_embedding_urls_and_the_gemini_key_stays_out_of_them():
    assert VERTEX.upstream_url(vertex_target(), "chat", stream=True).endswith(
        "/models/gemini-1.5-pro:streamGenerateContent?alt=sse")
    assert VERTEX.upstream_url(vertex_target(model="text-embedding-005"),
                               "embeddings").endswith("/models/text-embedding-005:predict")
    assert GEMINI.upstream_url(gemini_target(), "chat", stream=True) == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-1.5-pro:"
        "streamGenerateContent?alt=sse")
    call = GEMINI.prepare(gemini_target(model="text-embedding-004"), "embeddings",
                          {"input": "x"})
    assert call.url.endswith("/v1beta/models/text-embedding-004:batchEmbedContents")
    assert GEMINI_KEY not in call.url and call.headers["x-goog-api-key"] == GEMINI_KEY


@pytest.mark.parametrize("params", [{"vertex_location": "us-central1.evil.example/x#"},
                                    {"vertex_project": "../../other"}])
def test_location_and_project_cannot_steer_the_url(params):
    with pytest.raises(APIError) as refused:
        VERTEX.upstream_url(vertex_target(**params), "chat")
    assert refused.value.param.startswith("litellm_params.vertex_")


def test_secret_fields_are_declared_secret():
    assert [f.name for f in VERTEX_FIELDS + GEMINI_FIELDS if f.secret] == [
        "vertex_credentials", "api_key"]


@pytest.mark.parametrize("provider_name", ["vertex", "gemini"])
def test_embedding_bodies_and_answers(provider_name):
    recorded = fixture("google_embeddings.json")[provider_name]
    deployment = (vertex_target if provider_name == "vertex" else gemini_target)(
        model=recorded["model"])
    provider = VERTEX if provider_name == "vertex" else GEMINI
    assert provider.prepare(deployment, "embeddings", recorded["openai"]).body == \
        recorded["request"]
    assert provider.translate_response("embeddings", recorded["response"],
                                       recorded["model"]) == recorded["result"]


# end to end: a loopback Google, through Teamgate's transport

@pytest.fixture(scope="module")
def keys():
    """The team's service-account key, and a key Google does not know."""
    return new_key(), new_key()


@pytest.fixture
def google(keys):
    server = FakeGoogle(api_key=GEMINI_KEY)
    server.trust(EMAIL, keys[0])
    yield server
    server.close()


class Wire:
    """Teamgate's client without a pool, so each answer's connection closes with it; `send`
    posts a prepared call as forwarding does, and every answer is closed at the end."""

    def __init__(self):
        self.client, self.answers = new_client({**vars(Defaults), "UPSTREAM_POOL_SIZE": 0}), []

    def send(self, call) -> transport.Answer:
        body = call.body if isinstance(call.body, bytes) else json.dumps(call.body).encode()
        self.answers.append(self.client.post(call.url, call.headers, body, 2.0, 5.0, ALLOW))
        return self.answers[-1]

    def close(self):
        for answer in self.answers:
            answer.close()


@pytest.fixture
def http():
    wire = Wire()
    yield wire
    wire.close()


def on_google(google, http, key=None, token_uri=None):
    """A Vertex AI provider with its own token cache, and a deployment of it on the fake."""
    tokens = TokenSource(TeamgateRequest(http.client, ALLOW, 2.0))
    credentials = service_account(key, token_uri or google.url + "/token")
    return VertexAIProvider(lambda: tokens), credentials


def test_vertex_call_fetches_a_token_with_a_signed_assertion_and_uses_it(google, http, keys,
                                                                        caplog):
    caplog.set_level(logging.DEBUG)
    provider, credentials = on_google(google, http, keys[0])
    deployment = vertex_target(credentials, api_base=google.url)
    answer = http.send(provider.prepare(deployment, "chat", CHAT))
    assert answer.status == 200
    token_call, model_call = google.received
    assert token_call.path == "/token"
    assert model_call.path == ("/v1/projects/teamgate-test/locations/us-central1/publishers/"
                               "google/models/gemini-1.5-pro:generateContent")
    assert model_call.headers["authorization"] == "Bearer " + next(iter(google.issued))
    assert model_call.json() == {
        "contents": [{"role": "user", "parts": [{"text": "Weather in Paris?"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {"maxOutputTokens": 64}}
    result = provider.translate_response("chat", answer.json(), "gemini-1.5-pro")
    assert result["choices"][0]["message"]["content"] == "Sunny, 22 degrees."
    assert result["usage"] == {"prompt_tokens": 8, "completion_tokens": 5, "total_tokens": 13}
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert next(iter(google.issued)) not in logged and "PRIVATE KEY" not in logged


def test_a_token_is_reused_until_near_expiry_and_fetched_once_under_concurrency(keys, http):
    google = FakeGoogle(token_delay=0.05)
    google.trust(EMAIL, keys[0])
    try:
        provider, credentials = on_google(google, http, keys[0])
        deployment = vertex_target(credentials, api_base=google.url)
        calls = []
        threads = [threading.Thread(target=lambda: calls.append(
            provider.prepare(deployment, "chat", CHAT))) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        provider.prepare(deployment, "chat", CHAT)
        assert google.token_requests == 1
        assert len({c.headers["Authorization"] for c in calls}) == 1
        assert http.send(calls[0]).status == 200
    finally:
        google.close()


def test_a_token_close_to_expiry_is_replaced_before_use(keys, http):
    google = FakeGoogle(token_lifetime=120)  # inside the refresh margin from the start
    google.trust(EMAIL, keys[0])
    try:
        provider, credentials = on_google(google, http, keys[0])
        deployment = vertex_target(credentials, api_base=google.url)
        first = provider.prepare(deployment, "chat", CHAT).headers["Authorization"]
        second = provider.prepare(deployment, "chat", CHAT).headers["Authorization"]
        assert google.token_requests == 2 and first != second
    finally:
        google.close()


def test_a_key_google_does_not_know_is_a_401_that_shows_no_key(google, http, keys):
    provider, credentials = on_google(google, http, keys[1])
    with pytest.raises(APIError) as refused:
        provider.prepare(vertex_target(credentials, api_base=google.url), "chat", CHAT)
    assert (refused.value.status, refused.value.error_type) == (401, "authentication_error")
    assert "invalid_grant: Invalid JWT Signature." in refused.value.message
    assert "PRIVATE KEY" not in refused.value.message
    assert [r.path for r in google.received] == ["/token"]


@pytest.mark.parametrize("token_uri", ["http://169.254.169.254/computeMetadata/v1/token",
                                       "http://127.0.0.2:9/token"])
def test_the_token_endpoint_obeys_the_egress_rules(google, http, keys, token_uri):
    provider, credentials = on_google(google, http, keys[0], token_uri=token_uri)
    with pytest.raises(APIError) as refused:
        provider.prepare(vertex_target(credentials, api_base=google.url), "chat", CHAT)
    assert refused.value.status == 400
    assert refused.value.param == "litellm_params.vertex_credentials"
    assert "token_uri" in refused.value.message
    assert "TEAMGATE_UPSTREAM_ALLOW" in refused.value.message
    assert google.received == []


@pytest.mark.parametrize("credentials, says", [
    ("/etc/gcloud/key.json", "not its path"),
    ('{"type": "authorized_user", "refresh_token": "x"}', "service-account key"),
    ('{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\nAAAA"}',
     "lacks client_email"),
])
def test_unusable_credentials_are_a_400_that_quotes_none_of_them(http, credentials, says):
    provider = VertexAIProvider(lambda: TokenSource(TeamgateRequest(http.client, ALLOW, 2.0)))
    with pytest.raises(APIError) as refused:
        provider.prepare(vertex_target(credentials, vertex_project="p-1"), "chat", CHAT)
    assert refused.value.status == 400 and says in refused.value.message
    assert credentials not in refused.value.message and "AAAA" not in refused.value.message


def test_a_vertex_stream_in_small_pieces_becomes_openai_chunks(google, http, keys):
    provider, credentials = on_google(google, http, keys[0])
    google.reply(Reply(events=fixture("gemini_stream.json")["events"], piece_size=7))
    call = provider.prepare(vertex_target(credentials, api_base=google.url), "chat",
                            {**CHAT, "stream": True})
    answer = http.send(call)
    assert google.received[-1].path.endswith(":streamGenerateContent?alt=sse")
    outcome = StreamOutcome()
    events = sse_payloads(list(provider.translate_stream(answer.chunks(), "gemini", outcome)))
    deltas = [e["choices"][0]["delta"] for e in events[:-1]]
    assert "".join(d.get("content", "") for d in deltas) == "Checking Paris."
    assert deltas[2]["tool_calls"][0]["function"] == {"name": "get_weather",
                                                      "arguments": '{"city": "Paris"}'}
    assert events[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert events[-1] == "[DONE]"
    assert (outcome.prompt_tokens, outcome.completion_tokens) == (40, 17)


def test_gemini_key_travels_in_a_header_and_a_wrong_key_is_refused(google, http):
    answer = http.send(GEMINI.prepare(gemini_target(api_base=google.url + "/v1beta"), "chat",
                                      CHAT))
    assert answer.status == 200
    received = google.received[-1]
    assert received.path == "/v1beta/models/gemini-1.5-pro:generateContent"
    assert received.headers["x-goog-api-key"] == GEMINI_KEY
    wrong = "sk-provider-gemini-wrong-key-0000"
    deployment = target(GEMINI, api_base=google.url + "/v1beta", secrets={"api_key": wrong})
    refused = http.send(GEMINI.prepare(deployment, "chat", CHAT))
    error = failures.from_status(refused, masking.Secret.of(deployment))
    assert refused.status == 400 and error.message.startswith("API key not valid")


def test_gemini_stream_and_embeddings_over_the_wire(google, http):
    base = google.url + "/v1beta"
    google.reply(Reply(events=[
        {"candidates": [{"content": {"parts": [{"text": "Hel"}]}}]},
        {"candidates": [{"content": {"parts": [{"text": "lo"}]}, "finishReason": "MAX_TOKENS"}],
         "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2}}], piece_size=4))
    answer = http.send(GEMINI.prepare(gemini_target(api_base=base), "chat",
                                      {**CHAT, "stream": True}))
    events = sse_payloads(list(GEMINI.translate_stream(answer.chunks(), "gemini")))
    assert [e["choices"][0]["delta"].get("content") for e in events[:2]] == ["Hel", "lo"]
    assert events[2]["choices"][0]["finish_reason"] == "length"
    recorded = fixture("google_embeddings.json")["gemini"]
    google.reply(Reply(body=recorded["response"]))
    deployment = gemini_target(model=recorded["model"], api_base=base)
    answer = http.send(GEMINI.prepare(deployment, "embeddings", recorded["openai"]))
    assert google.received[-1].json() == recorded["request"]
    assert GEMINI.translate_response("embeddings", answer.json(),
                                     recorded["model"]) == recorded["result"]


def test_vertex_embeddings_over_the_wire(google, http, keys):
    provider, credentials = on_google(google, http, keys[0])
    recorded = fixture("google_embeddings.json")["vertex"]
    google.reply(Reply(body=recorded["response"]))
    deployment = vertex_target(credentials, model=recorded["model"], api_base=google.url)
    answer = http.send(provider.prepare(deployment, "embeddings", recorded["openai"]))
    assert google.received[-1].path.endswith("/models/text-embedding-005:predict")
    assert google.received[-1].json() == recorded["request"]
    assert provider.translate_response("embeddings", answer.json(),
                                       recorded["model"]) == recorded["result"]
