"""Streaming through the openai client: chunks in order, a clean end, disconnects close upstream."""
import json
import socket
import threading
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
    # The upstream sends its first chunk and holds the rest back until the caller has read it:
    # a gateway that buffered the stream would hand over nothing until the upstream gave up.
    key = setup_team(seed, upstream)
    reply = Reply(chunks=[chunk("first"), chunk("second"), b"[DONE]"], gate=threading.Event())
    upstream.reply(reply)
    with requests.post(live.url + "/v1/chat/completions", headers=bearer(key), stream=True,
                       json={"model": "my-team-model", "stream": True,
                             "messages": [{"role": "user", "content": "hi"}]}) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        lines = response.iter_lines()
        first = next(line for line in lines if line)
        reply.gate.set()
        rest = [line for line in lines if line]
    assert b"first" in first
    assert b"second" in rest[0] and rest[-1] == b"data: [DONE]"


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


class RecordedAnswer:
    """An upstream answer already received, in pieces of 64 KiB as the upstream client reads
    them; its lines split in one pass, so what a test times is the relay's own work."""

    line_limit = 1 << 30

    def __init__(self, data: bytes):
        self.data = data

    def chunks(self):
        for start in range(0, len(self.data), 65536):
            yield self.data[start:start + 65536]

    def lines(self):
        start = 0
        while (end := self.data.find(b"\n", start)) >= 0:
            yield self.data[start:end]
            start = end + 1
        if start < len(self.data):
            yield self.data[start:]

    def close(self):
        pass


class NoLog:
    def take_usage(self, counts):
        self.usage = counts

    def write(self, status, error_type=None):
        self.status = status


def relay_seconds(provider: str, data: bytes) -> float:
    """CPU seconds the relay takes over a whole answer, the best of three."""
    from webapp import operations, providers
    from webapp.providers.base import Target
    from webapp.proxy.streaming import relay

    target = Target("d", "m", None, providers.for_params({"model": f"{provider}/m"})[0], "m",
                    None, None, "sk-provider-team-a-secret-1234", None, None, None, None)
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for _ in relay(RecordedAnswer(data), target, NoLog(), operations.CHAT):
            pass
        best = min(best, time.process_time() - started)
    return best


SHAPES = {  # name: (provider, the answer for about n bytes)
    "many events": ("openai", lambda n: b'data: {"choices": [{"delta": {"content": "x"}}]}\n\n'
                    * (n // 384)),
    "one event of many lines": ("openai", lambda n: b"data: x\n" * (n // 32) + b"\n"),
    "one long line with escapes": ("openai", lambda n: b'data: {"c": "' + b"\\u00e9" * (n // 6)
                                   + b'"}\n\n'),
    "one long line with usage": ("openai", lambda n: b'data: {"usage": {"prompt_tokens": 1}, '
                                 b'"x": "' + b"a" * n + b'"}\n\n'),
    "one long translated line": ("anthropic", lambda n: b'data: {"type": "content_block_delta",'
                                 b' "delta": {"text": "' + b"\\u00e9" * (n // 6) + b'"}}\n\n'),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_relaying_costs_time_in_proportion_to_the_answer(shape):
    """An upstream cannot make Teamgate re-read what it already relayed: four times the bytes
    cost about four times the CPU (4-8 measured: large buffers leave the caches), where a step
    that re-scanned a growing buffer would cost 16."""
    provider, answer = SHAPES[shape]
    small, large = relay_seconds(provider, answer(1 << 20)), relay_seconds(provider,
                                                                           answer(4 << 20))
    assert large < 12 * max(small, 0.002), (small, large)


def test_odd_events_in_an_anthropic_stream_are_left_out_and_the_stream_ends_cleanly(
        live, client, seed, upstream):
    team_id = seed.team()
    key = seed.key(team_id)
    client.post("/model/new", headers=bearer(key), json={
        "model_name": "claude", "model_info": {"team_id": team_id},
        "litellm_params": {"model": "anthropic/claude-sonnet-4", "api_base": upstream.url,
                           "api_key": "sk-ant-team-provider-key-4242"}})
    upstream.reply(Reply(chunks=[
        b"[1, 2]", b'"text"', {"type": "content_block_delta", "delta": ["x"]},
        {"type": "content_block_delta", "delta": {"text": {"not": "text"}}},
        {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "message_delta", "delta": {"stop_reason": ["end_turn"]}},
        {"type": "message_stop"}]))
    response = requests.post(live.url + "/v1/chat/completions", headers=bearer(key), json={
        "model": "claude", "stream": True, "messages": [{"role": "user", "content": "Hi"}]})
    events = [e for e in response.text.split("\n\n") if e]
    assert response.status_code == 200
    assert [json.loads(e[6:])["choices"][0]["delta"].get("content") for e in events[:-1]] == [
        "Hi", None]
    assert events[-1] == "data: [DONE]"
