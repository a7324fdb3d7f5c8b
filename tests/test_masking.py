"""A deployment's secrets never reach the caller, whatever the upstream does with them: echoed in
a 200 answer or an error, split across two pieces of a stream, or hidden behind JSON's \\u
escapes. Its provider key, and every other field its provider declares secret (Bedrock's secret
key and session token, a Vertex AI service-account key). The caller gets the masked form
(`sk-...` + last 4) in its place."""
import itertools
import json
import socket
import threading
import time

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import bearer
from tests.fake_upstream import Reply, completion

PROVIDER_KEY = "sk-provider-team-a-secret-1234"  # Seed.model's default
MASKED = "sk-...1234"
CALL = {"model": "my-team-model", "messages": [{"role": "user", "content": "my key?"}]}


def escaped(text: str, every=1) -> str:
    """text with every `every`-th character written as a JSON \\u escape."""
    return "".join(f"\\u{ord(c):04x}" if i % every == 0 else c for i, c in enumerate(text))


def chat(live, key, **extra):
    return requests.post(live.url + "/v1/chat/completions", headers=bearer(key),
                         json={**CALL, **extra}, timeout=10)


def content_of(response) -> str:
    return response.json()["choices"][0]["message"]["content"]


def test_a_key_echoed_in_a_200_answer_is_masked(live, seed, upstream):
    _, key = seed.team_with_model(upstream.url)
    upstream.reply(Reply(body=completion(content=f"You called me with {PROVIDER_KEY}.")))
    response = chat(live, key)
    assert response.status_code == 200
    assert PROVIDER_KEY not in response.text
    assert content_of(response) == f"You called me with {MASKED}."
    assert response.json()["usage"]["prompt_tokens"] == 12


@pytest.mark.parametrize("every", [1, 3, 29], ids=["all", "every-third", "first-only"])
def test_a_key_behind_json_escapes_in_a_200_answer_is_masked(live, seed, upstream, every):
    _, key = seed.team_with_model(upstream.url)
    body = json.dumps(completion(content="KEY")).replace("KEY", escaped(PROVIDER_KEY, every))
    upstream.reply(Reply(body=body.encode()))
    response = chat(live, key)
    assert response.status_code == 200
    assert PROVIDER_KEY not in json.dumps(response.json())
    assert content_of(response) == MASKED


def test_an_answer_without_the_key_keeps_its_escapes_and_bytes(live, seed, upstream):
    _, key = seed.team_with_model(upstream.url)
    body = json.dumps(completion(content="Gr\u00fc\u00dfe")).encode()  # ensure_ascii: \u00fc
    upstream.reply(Reply(body=body))
    response = chat(live, key)
    assert response.content == body


def test_a_key_in_a_translated_answer_is_masked(live, client, seed, upstream):
    team_id = seed.team()
    key = seed.key(team_id)
    client.post("/model/new", headers=bearer(key), json={
        "model_name": "claude", "model_info": {"team_id": team_id},
        "litellm_params": {"model": "anthropic/claude-sonnet-4", "api_base": upstream.url,
                           "api_key": PROVIDER_KEY}})
    # two text blocks that only make the key once joined
    upstream.reply(Reply(body={"id": "msg_1", "model": "claude-sonnet-4", "content": [
        {"type": "text", "text": PROVIDER_KEY[:10]}, {"type": "text", "text": PROVIDER_KEY[10:]}],
        "stop_reason": "end_turn", "usage": {"input_tokens": 1, "output_tokens": 1}}))
    response = chat(live, key, model="claude")
    assert response.status_code == 200
    assert content_of(response) == MASKED


class RawStream:
    """An upstream that answers one call with an event stream cut into the pieces it is given,
    each its own write, a moment apart: where the cuts fall is up to the test."""

    def __init__(self, pieces: list[bytes]):
        self.pieces = pieces
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self):
        connection, _ = self.sock.accept()
        with connection:
            request = b""
            while b"\r\n\r\n" not in request:
                request += connection.recv(65536)
            head, _, body = request.partition(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            while len(body) < length:
                body += connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                               b"Transfer-Encoding: chunked\r\n\r\n")
            for piece in self.pieces:
                connection.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                time.sleep(0.03)
            connection.sendall(b"0\r\n\r\n")

    def close(self):
        self.sock.close()
        self.thread.join(timeout=2)


def stream_event(content: str) -> bytes:
    return b"data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": "C"},
                                                "finish_reason": None}]}
                                  ).replace('"C"', f'"{content}"').encode() + b"\n\n"


def relayed(live, seed, pieces: list[bytes]) -> str:
    upstream = RawStream(pieces)
    try:
        _, key = seed.team_with_model(upstream.url)
        response = chat(live, key, stream=True)
        assert response.status_code == 200
        return response.text
    finally:
        upstream.close()


def deltas(text: str) -> str:
    """The streamed content, as a client puts it together (data lines of an event joined)."""
    out = []
    for event in text.split("\n\n"):
        data = "\n".join(line[5:].strip() for line in event.split("\n")
                         if line.startswith("data:"))
        if data and data != "[DONE]":
            out += [choice["delta"].get("content", "") for choice in json.loads(data)["choices"]]
    return "".join(out)


@pytest.mark.parametrize("cut", [1, 10, len(PROVIDER_KEY) - 1])
def test_a_key_split_across_two_pieces_of_a_stream_is_masked(live, seed, cut):
    event = stream_event(f"key {PROVIDER_KEY} ok")
    at = event.index(PROVIDER_KEY.encode()) + cut
    text = relayed(live, seed, [event[:at], event[at:], b"data: [DONE]\n\n"])
    assert PROVIDER_KEY not in text
    assert deltas(text) == f"key {MASKED} ok"


@pytest.mark.parametrize("every", [1, 29], ids=["all", "first-only"])
def test_a_key_behind_json_escapes_in_a_stream_is_masked(live, seed, every):
    event = stream_event(escaped(PROVIDER_KEY, every))
    text = relayed(live, seed, [stream_event("a"), event[:20], event[20:],
                                b"data: [DONE]\n\n"])
    assert deltas(text) == "a" + MASKED
    assert text.endswith("data: [DONE]\n\n")


def test_a_key_behind_escapes_in_an_event_of_several_data_lines_is_masked(live, seed):
    event = stream_event(escaped(PROVIDER_KEY)).replace(b'"delta": ', b'"delta":\ndata: ')
    assert event.count(b"data:") == 2
    text = relayed(live, seed, [event, b"data: [DONE]\n\n"])
    assert deltas(text) == MASKED


def test_a_key_cut_where_a_very_long_event_is_relayed_in_part_is_masked(live, seed):
    """An event longer than EVENT_LIMIT is relayed before it ends; what could be the start of
    the key stays behind until the rest arrives."""
    from webapp.proxy.streaming import EVENT_LIMIT

    event = stream_event("a" * EVENT_LIMIT + f" {PROVIDER_KEY} ok")
    at = event.index(PROVIDER_KEY.encode()) + 14
    text = relayed(live, seed, [event[:at], event[at:], b"data: [DONE]\n\n"])
    assert PROVIDER_KEY not in text
    assert deltas(text).endswith(f" {MASKED} ok")


EVENTS = [stream_event(f"x {PROVIDER_KEY} y"), b'data: {"choices": []}\r\n\r\n', b": ping\n\n",
          stream_event(escaped(PROVIDER_KEY, 3)), b"data: [DONE]\n\n"]
STREAM = b"".join(EVENTS)


@given(st.sets(st.integers(1, len(STREAM) - 1), max_size=16))
def test_wherever_the_stream_is_cut_the_same_whole_events_come_out_masked(cuts):
    from webapp.upstream.masking import Secret
    from webapp.proxy.streaming import _blocks

    edges = [0, *sorted(cuts), len(STREAM)]
    blocks = list(_blocks(iter(STREAM[a:b] for a, b in itertools.pairwise(edges)),
                          Secret(PROVIDER_KEY), len(STREAM)))
    assert all(block.endswith((b"\n\n", b"\n\r\n")) for block in blocks)
    relayed = b"".join(blocks).decode()
    assert PROVIDER_KEY not in relayed
    assert deltas(relayed) == f"x {MASKED} y" + MASKED
    assert relayed.count("\n\n") + relayed.count("\r\n\r\n") == len(EVENTS)


# every secret field of a deployment, not only api_key: Bedrock's and Vertex AI's

def _cloud_model(client, seed, name: str, **params) -> str:
    team_id = seed.team()
    key = seed.key(team_id)
    created = client.post("/model/new", headers=bearer(key), json={
        "model_name": name, "litellm_params": params, "model_info": {"team_id": team_id}})
    assert created.status_code == 200, created.json
    return key


def _asked(client, key: str, model: str, stream=False) -> str:
    response = client.post("/v1/chat/completions", headers=bearer(key), json={
        "model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
    return response.get_data(as_text=True)


def test_a_bedrock_secret_key_or_session_token_echoed_by_the_upstream_is_masked(client, seed):
    from tests.fake_bedrock import FakeBedrock, Reply as BedrockReply, converse_answer, \
        text_stream
    from tests.test_bedrock import ACCESS_KEY, CLAUDE, SECRET_KEY, SESSION_TOKEN

    bedrock = FakeBedrock(ACCESS_KEY, SECRET_KEY, session_token=SESSION_TOKEN)
    try:
        key = _cloud_model(client, seed, "claude", model=f"bedrock/{CLAUDE}",
                           api_base=bedrock.url, aws_access_key_id=ACCESS_KEY,
                           aws_secret_access_key=SECRET_KEY, aws_session_token=SESSION_TOKEN,
                           aws_region_name="us-east-1")
        echoed = f"signed with {SECRET_KEY} and {SESSION_TOKEN}"
        bedrock.reply(BedrockReply(status=400, body={"message": echoed}),
                      BedrockReply(body=converse_answer(text=echoed)),
                      BedrockReply(frames=text_stream("signed with ", SECRET_KEY, " ",
                                                      SESSION_TOKEN), piece_size=7))
        answers = [_asked(client, key, "claude"), _asked(client, key, "claude"),
                   _asked(client, key, "claude", stream=True)]
    finally:
        bedrock.close()
    assert "signed with" in answers[0] and "signed with" in answers[1]
    for answer in answers:
        assert SECRET_KEY not in answer and SESSION_TOKEN not in answer
        assert "sk-..." + SECRET_KEY[-4:] in answer and "sk-..." + SESSION_TOKEN[-4:] in answer


def test_a_piece_of_a_service_accounts_private_key_echoed_by_vertex_is_masked(client, seed):
    from tests.fake_vertex import FakeGoogle, Reply as GoogleReply, answer, new_key, \
        service_account
    from tests.test_vertex import EMAIL

    google, private_key = FakeGoogle(), new_key()
    google.trust(EMAIL, private_key)
    try:
        credentials = service_account(private_key, google.url + "/token")
        key = _cloud_model(client, seed, "gemini", model="vertex_ai/gemini-1.5-pro",
                           api_base=google.url, vertex_credentials=credentials)
        line = json.loads(credentials)["private_key"].splitlines()[5]  # one line of the PEM
        google.reply(GoogleReply(status=400, body={"error": {
                         "code": 400, "status": "INVALID_ARGUMENT", "message": f"bad {line}"}}),
                     GoogleReply(body=answer(text=f"the key holds {line}")))
        answers = [_asked(client, key, "gemini"), _asked(client, key, "gemini")]
    finally:
        google.close()
    assert "bad " in answers[0] and "the key holds" in answers[1]
    for answer_text in answers:
        assert line not in answer_text and "sk-..." + line[-4:] in answer_text
