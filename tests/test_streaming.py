"""Streaming through the openai client: chunks in order, a clean end, disconnects close upstream."""
import socket
import time

import openai
import pytest
import requests

from tests.conftest import bearer
from tests.fake_upstream import Reply, chunk


def setup_team(seed, upstream):
    team_id = seed.team()
    key = seed.key(team_id)
    seed.model(key, team_id, upstream.url)
    return key


def test_openai_client_streams_chunks_in_order(live, seed, upstream):
    key = setup_team(seed, upstream)
    words = ["Sunny", ", ", "22", " degrees", "."]
    upstream.reply(Reply(chunks=[chunk(w) for w in words] + [chunk(None, "stop"), b"[DONE]"],
                         chunk_delay=0.02))
    client = openai.OpenAI(api_key=key, base_url=live.url + "/v1")
    stream = client.chat.completions.create(
        model="my-team-model", messages=[{"role": "user", "content": "weather?"}], stream=True)
    received = [c.choices[0].delta.content for c in stream if c.choices[0].delta.content]
    assert received == words
    assert upstream.received[-1].body["stream"] is True


def test_stream_arrives_chunk_by_chunk_not_buffered(live, seed, upstream):
    key = setup_team(seed, upstream)
    upstream.reply(Reply(chunks=[chunk("first"), chunk("second"), b"[DONE]"], chunk_delay=0.5))
    started = time.perf_counter()
    with requests.post(live.url + "/v1/chat/completions", headers=bearer(key), stream=True,
                       json={"model": "my-team-model", "stream": True,
                             "messages": [{"role": "user", "content": "hi"}]}) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        lines = response.iter_lines()
        first = next(line for line in lines if line)
        first_at = time.perf_counter() - started
        rest = [line for line in lines if line]
    assert b"first" in first and first_at < 0.45
    assert rest[-1] == b"data: [DONE]"


def test_stream_that_dies_after_two_chunks_ends_with_an_error_event(live, seed, upstream):
    key = setup_team(seed, upstream)
    upstream.reply(Reply(chunks=[chunk("a"), chunk("b"), chunk("c")], drop_after=2))
    response = requests.post(live.url + "/v1/chat/completions", headers=bearer(key), json={
        "model": "my-team-model", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    events = [line for line in response.text.split("\n\n") if line]
    assert response.status_code == 200
    assert '"a"' in events[0] and '"b"' in events[1]
    assert events[-1].startswith('data: {"error"')
    assert '"upstream_error"' in events[-1]


def test_client_disconnect_closes_the_upstream_connection(live, seed, upstream):
    key = setup_team(seed, upstream)
    upstream.reply(Reply(chunks=[chunk(f"w{i}") for i in range(100)], chunk_delay=0.05))
    body = (b'{"model": "my-team-model", "stream": true, '
            b'"messages": [{"role": "user", "content": "hi"}]}')
    host, port = live.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: Bearer " + key.encode() + b"\r\n"
                     b"Content-Type: application/json\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)
        received = b""
        while b"w1" not in received:
            received += sock.recv(4096)
    deadline = time.monotonic() + 5
    while upstream.closed_streams == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert upstream.closed_streams == 1


def test_error_before_the_first_byte_is_an_ordinary_json_error(live, seed, upstream):
    key = setup_team(seed, upstream)
    upstream.reply(Reply(status=500, body={"error": {"message": "boom"}}),
                   Reply(status=500, body={"error": {"message": "boom"}}),
                   Reply(status=500, body={"error": {"message": "boom"}}))
    client = openai.OpenAI(api_key=key, base_url=live.url + "/v1", max_retries=0)
    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(model="my-team-model", stream=True,
                                       messages=[{"role": "user", "content": "hi"}])
    assert raised.value.status_code == 502
    assert "upstream_error" in str(raised.value.body)


def test_a_key_echoed_in_a_stream_error_event_is_masked(live, seed, upstream):
    key = setup_team(seed, upstream)
    upstream.reply(Reply(chunks=[chunk("a"), {"error": {
        "message": "Incorrect API key provided: sk-provider-team-a-secret-1234"}}]))
    response = requests.post(live.url + "/v1/chat/completions", headers=bearer(key), json={
        "model": "my-team-model", "stream": True, "messages": [{"role": "user", "content": "x"}]})
    assert "sk-provider-team-a-secret-1234" not in response.text
    assert "sk-...1234" in response.text
