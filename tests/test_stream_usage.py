"""Usage on every chat stream: Teamgate asks upstreams that take stream_options for the usage
chunk, logs its counts, and gives the caller the stream it would have had without Teamgate (no
usage chunk, no "usage": null, unless it asked); upstreams that refuse stream_options never get
it; a stream cut short is still logged with what it used."""
import json
import socket
import time

import openai
import pytest
import requests
from sqlalchemy import select

from tests.conftest import bearer
from tests.fake_upstream import FakeUpstream, Reply, chunk
from webapp.extensions import db
from webapp.models import RequestLogEntry

WORDS = ["Sunny", ", ", "22", " degrees", "."]
PROMPT, COMPLETION = 9, len(WORDS)
QUESTION = [{"role": "user", "content": "What is the weather like in Paris today?"}]


class OpenAIStreams(FakeUpstream):
    """Streams as OpenAI writes them: with stream_options.include_usage, `"usage":null` in every
    chunk and a usage-only chunk before [DONE]; without it, neither. As Mistral with
    `mistral=True`: usage in the last chunk always, stream_options refused with a 422."""

    def __init__(self, mistral=False, cut_after=None, chunk_delay=0.0):
        super().__init__("streams")
        self.mistral, self.cut_after, self.chunk_delay = mistral, cut_after, chunk_delay

    def _serve(self, handler, reply, body):
        if not (body or {}).get("stream"):
            return super()._serve(handler, reply, body)
        if self.mistral and "stream_options" in body:
            return super()._serve(handler, Reply(status=422, body={
                "object": "error", "type": "invalid_request_error", "message": {"detail": [{
                    "type": "extra_forbidden", "loc": ["body", "stream_options"]}]}}), body)
        usage = {"prompt_tokens": PROMPT, "completion_tokens": COMPLETION,
                 "total_tokens": PROMPT + COMPLETION}
        asked = (body.get("stream_options") or {}).get("include_usage") is True
        events = [chunk(w) for w in WORDS] + [chunk(None, "stop")]
        if self.mistral:
            events[-1]["usage"] = usage
        elif asked:
            for event in events:
                event["usage"] = None
            events.append({**chunk(None), "choices": [], "usage": usage})
        # compact, as OpenAI writes its events
        data = [json.dumps(e, separators=(",", ":")).encode() for e in events] + [b"[DONE]"]
        return self._stream(handler, Reply(chunks=data, drop_after=self.cut_after,
                                           chunk_delay=self.chunk_delay))


@pytest.fixture
def streams():
    made = []

    def make(**options):
        made.append(OpenAIStreams(**options))
        return made[-1]
    yield make
    for server in made:
        server.close()


def deployment(seed, api_base, model="openai/gpt-4o", **params) -> str:
    """A team key whose `my-team-model` is `model` at api_base (no api_version: OpenAI)."""
    team_id = seed.team()
    key = seed.key(team_id)
    body = {"model_name": "my-team-model", "model_info": {"team_id": team_id},
            "litellm_params": {"model": model, "api_key": "sk-provider-usage-test-5678",
                               "api_base": api_base, **params}}
    response = seed.client.post("/model/new", json=body, headers=bearer(key))
    assert response.status_code == 200, response.json
    return key


def logged(app) -> RequestLogEntry:
    deadline = time.monotonic() + 5
    while True:
        with app.app_context():
            app.extensions["teamgate.request_log"].flush()
            row = db.session.scalars(select(RequestLogEntry).order_by(
                RequestLogEntry.id.desc())).first()
        if row is not None or time.monotonic() > deadline:
            return row
        time.sleep(0.05)


def raw_stream(live, key, **fields) -> str:
    response = requests.post(live.url + "/v1/chat/completions", headers=bearer(key), json={
        "model": "my-team-model", "stream": True, "messages": QUESTION, **fields})
    assert response.status_code == 200
    return response.text


def test_a_caller_that_did_not_ask_gets_no_usage_and_the_log_has_the_counts(
        app, live, seed, streams):
    upstream = streams()
    key = deployment(seed, upstream.url)
    client = openai.OpenAI(api_key=key, base_url=live.url + "/v1")
    chunks = list(client.chat.completions.create(model="my-team-model", messages=QUESTION,
                                                 stream=True))
    assert upstream.received[-1].body["stream_options"] == {"include_usage": True}
    assert [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content] == WORDS
    assert all(c.choices and c.usage is None for c in chunks)  # no usage-only chunk
    row = logged(app)
    assert (row.status, row.stream, row.prompt_tokens, row.completion_tokens) == (
        200, True, PROMPT, COMPLETION)
    # byte for byte what OpenAI sends a caller that did not ask: not even "usage":null
    text = raw_stream(live, key)
    assert '"usage"' not in text
    assert text.rstrip().endswith("data: [DONE]")
    assert text.count("data: ") == len(WORDS) + 2


def test_a_caller_that_asked_gets_the_usage_chunk_as_the_upstream_sent_it(
        app, live, seed, streams):
    upstream = streams()
    key = deployment(seed, upstream.url)
    client = openai.OpenAI(api_key=key, base_url=live.url + "/v1")
    chunks = list(client.chat.completions.create(
        model="my-team-model", messages=QUESTION, stream=True,
        stream_options={"include_usage": True}))
    assert chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (
        PROMPT, COMPLETION)
    assert all(c.usage is None for c in chunks[:-1])
    row = logged(app)
    assert (row.prompt_tokens, row.completion_tokens) == (PROMPT, COMPLETION)
    assert raw_stream(live, key, stream_options={"include_usage": True}).count(
        '"usage":null') == len(WORDS) + 1


def test_the_callers_other_stream_options_go_upstream_beside_include_usage(
        app, live, seed, streams):
    upstream = streams()
    key = deployment(seed, upstream.url)
    text = raw_stream(live, key, stream_options={"include_usage": False,
                                                 "include_obfuscation": False})
    assert upstream.received[-1].body["stream_options"] == {"include_usage": True,
                                                            "include_obfuscation": False}
    assert '"usage"' not in text
    assert logged(app).completion_tokens == COMPLETION


def test_mistral_never_gets_stream_options_and_its_own_usage_is_logged(
        app, live, seed, streams):
    upstream = streams(mistral=True)
    key = deployment(seed, upstream.url, model="mistral/mistral-large-latest")
    client = openai.OpenAI(api_key=key, base_url=live.url + "/v1")
    for options in (None, {"include_usage": True}):
        extra = {"stream_options": options} if options else {}
        chunks = list(client.chat.completions.create(model="my-team-model", messages=QUESTION,
                                                     stream=True, **extra))
        assert "stream_options" not in upstream.received[-1].body
        assert chunks[-1].usage.completion_tokens == COMPLETION  # Mistral sends it always
        row = logged(app)
        assert (row.status, row.prompt_tokens, row.completion_tokens) == (
            200, PROMPT, COMPLETION)


@pytest.mark.parametrize("api_version, asked", [
    ("2023-12-01-preview", False), ("2024-06-01", False), ("2024-08-01-preview", True),
    ("2024-10-21", True)])
def test_azure_is_asked_for_usage_only_from_the_api_version_that_takes_it(
        app, live, seed, streams, api_version, asked):
    upstream = streams()
    key = deployment(seed, upstream.url, model="azure/gpt-4o", api_version=api_version)
    text = raw_stream(live, key)
    sent = upstream.received[-1]
    assert f"api-version={api_version}" in sent.path
    assert ("stream_options" in sent.body) is asked
    assert '"usage"' not in text
    row = logged(app)
    assert row.completion_tokens == (COMPLETION if asked else None)


def test_a_stream_the_upstream_breaks_off_is_logged_with_what_it_used(
        app, live, seed, streams):
    upstream = streams(cut_after=3)
    key = deployment(seed, upstream.url)
    text = raw_stream(live, key)
    assert '"error"' in text.split("\n\n")[-2]
    row = logged(app)
    assert row.status == 502
    assert row.completion_tokens == 3  # a token for each delta relayed
    assert row.prompt_tokens and row.prompt_tokens > 0  # the prompt as the tpm limit counts it


def test_a_stream_the_client_leaves_is_logged_with_what_it_used(app, live, seed, streams):
    upstream = streams(chunk_delay=0.3)
    key = deployment(seed, upstream.url)
    body = json.dumps({"model": "my-team-model", "stream": True,
                       "messages": QUESTION}).encode()
    host, port = live.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: Bearer " + key.encode() + b"\r\n"
                     b"Content-Type: application/json\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)
        received = b""
        while b"22" not in received:
            received += sock.recv(4096)
    deadline = time.monotonic() + 5
    row = None
    while time.monotonic() < deadline:
        row = logged(app)
        if row is not None and row.status == 499:
            break
        time.sleep(0.1)
    assert row.status == 499
    # the words relayed until the server noticed (a write or two after the close)
    assert 3 <= row.completion_tokens <= COMPLETION
    assert row.prompt_tokens > 0


@pytest.mark.parametrize("model, options", [
    ("openai/gpt-4o", {"include_usage": True}), ("mistral/mistral-large-latest", None)])
def test_a_messages_stream_through_chat_gets_its_usage_where_the_upstream_gives_it(
        app, live, seed, streams, model, options):
    import anthropic
    upstream = streams(mistral=model.startswith("mistral"))
    key = deployment(seed, upstream.url, model=model)
    caller = anthropic.Anthropic(base_url=live.url, api_key=key, max_retries=0)
    with caller.messages.stream(model="my-team-model", max_tokens=50,
                                messages=QUESTION) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert upstream.received[-1].body.get("stream_options") == options
    assert text == "".join(WORDS)
    assert final.usage.output_tokens == COMPLETION
    row = logged(app)
    assert (row.route, row.prompt_tokens, row.completion_tokens) == (
        "/v1/messages", PROMPT, COMPLETION)
