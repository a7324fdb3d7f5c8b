"""An upstream cannot make Teamgate hold more than its limits: an answer head, a body or an event
line above its cap is refused with a 502 naming the limit, and Teamgate stops reading at the cap
(the upstream cannot write all it wanted), so a worker's memory stays flat. Splitting an event
stream into lines looks at each byte once, however the bytes are cut into chunks."""
import json
import socket
import time

import pytest

from tests.conftest import bearer
from tests.raw_upstream import answer
from webapp.upstream.transport import AnswerTooLarge, LineSplitter

KIB, MIB = 1024, 1024 * 1024
LIMITS = {"UPSTREAM_MAX_HEAD_BYTES": 16 * KIB, "UPSTREAM_MAX_BODY_BYTES": 1 * MIB,
          "UPSTREAM_MAX_SSE_LINE_BYTES": 64 * KIB}
# what the kernel's buffers may hold between the two ends on loopback (about 1.2 MiB was seen),
# far below what the upstream tries to send
IN_FLIGHT = 8 * MIB
CALL = {"model": "my-team-model", "messages": [{"role": "user", "content": "hi"}]}
PIECE = b"x" * (64 * KIB)


@pytest.fixture
def app(app, make_app):
    return make_app(**LIMITS)



def flood(head: bytes, total: int, frame=lambda piece: piece, tail: bytes = b""):
    """A script that answers the first request with `head`, then `total` bytes of body."""
    def serve(peer):
        peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * KIB)
        if peer.request() is None or not peer.send(head):
            return
        for _ in range(total // len(PIECE)):
            if not peer.send(frame(PIECE)):
                return
        peer.send(tail)
        peer.request()  # hold the connection until Teamgate is done with it
    return serve


def error_of(response) -> dict:
    assert response.headers["Content-Type"].startswith("application/json")
    return response.json["error"]


def test_a_body_announced_above_the_limit_is_refused_unread(client, seed, raw):
    total = 64 * MIB
    upstream = raw(flood(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n" % total, total))
    _, key = seed.team_with_model(upstream.url, max_retries=0)
    response = client.post("/v1/chat/completions", headers=bearer(key), json=CALL)
    assert response.status_code == 502
    error = error_of(response)
    assert error["type"] == "upstream_error"
    assert "TEAMGATE_UPSTREAM_MAX_BODY_BYTES" in error["message"]
    assert "1 MiB" in error["message"]
    upstream.finish()
    assert upstream.sent < IN_FLIGHT


def test_a_chunked_body_is_cut_off_at_the_limit(client, seed, raw):
    total = 64 * MIB
    upstream = raw(flood(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n", total,
                         frame=lambda piece: b"%x\r\n%s\r\n" % (len(piece), piece),
                         tail=b"0\r\n\r\n"))
    _, key = seed.team_with_model(upstream.url, max_retries=0)
    response = client.post("/v1/chat/completions", headers=bearer(key), json=CALL)
    assert response.status_code == 502
    assert "TEAMGATE_UPSTREAM_MAX_BODY_BYTES" in error_of(response)["message"]
    upstream.finish()
    assert upstream.sent < IN_FLIGHT


def test_an_error_body_of_a_stream_is_bounded_too(client, seed, raw):
    total = 64 * MIB
    upstream = raw(flood(b"HTTP/1.1 500 Oops\r\nContent-Type: text/plain\r\n\r\n", total))
    _, key = seed.team_with_model(upstream.url, max_retries=0)
    response = client.post("/v1/chat/completions", headers=bearer(key),
                           json={**CALL, "stream": True})
    assert response.status_code == 502
    assert "TEAMGATE_UPSTREAM_MAX_BODY_BYTES" in error_of(response)["message"]
    upstream.finish()
    assert upstream.sent < IN_FLIGHT


def test_a_head_above_the_limit_is_refused(client, seed, raw):
    total = 32 * MIB
    upstream = raw(flood(b"HTTP/1.1 200 OK\r\nX-Padding: ", total,
                         tail=b"\r\nContent-Length: 2\r\n\r\n{}"))
    _, key = seed.team_with_model(upstream.url, max_retries=0)
    response = client.post("/v1/chat/completions", headers=bearer(key), json=CALL)
    assert response.status_code == 502
    error = error_of(response)
    assert "TEAMGATE_UPSTREAM_MAX_HEAD_BYTES" in error["message"]
    assert "16 KiB" in error["message"]
    upstream.finish()
    assert upstream.sent < IN_FLIGHT


def test_many_headers_under_the_limit_each_but_above_it_together_are_refused(
        client, seed, raw):
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-H%d: %s\r\n" % (n, b"v" * 1000)
                                             for n in range(40))
    upstream = raw(flood(head + b"Content-Length: 2\r\n\r\n{}", 0))
    _, key = seed.team_with_model(upstream.url, max_retries=0)
    response = client.post("/v1/chat/completions", headers=bearer(key), json=CALL)
    assert response.status_code == 502
    assert "TEAMGATE_UPSTREAM_MAX_HEAD_BYTES" in error_of(response)["message"]


def test_an_answer_within_the_limits_is_relayed(client, seed, raw):
    body = json.dumps({"id": "x", "object": "list",
                       "data": [{"embedding": [0.5] * 1000}] * 60}).encode()
    assert 200 * KIB < len(body) < LIMITS["UPSTREAM_MAX_BODY_BYTES"]
    upstream = raw(flood(answer(body, headers=("X-Padding: " + "p" * 8000,)), 0))
    _, key = seed.team_with_model(upstream.url, max_retries=0)
    response = client.post("/v1/chat/completions", headers=bearer(key), json=CALL)
    assert response.status_code == 200
    assert response.data == body


def register_anthropic(client, seed, url: str) -> str:
    team_id = seed.team()
    key = seed.key(team_id)
    response = client.post("/model/new", headers=bearer(key), json={
        "model_name": "claude", "model_info": {"team_id": team_id},
        "litellm_params": {"model": "anthropic/claude-sonnet-4", "api_base": url,
                           "api_key": "sk-ant-team-provider-key-4242", "max_retries": 0}})
    assert response.status_code == 200
    return key


SSE_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")


def chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def test_an_event_stream_without_line_breaks_is_refused_at_the_line_limit(client, seed, raw):
    total = 48 * MIB
    upstream = raw(flood(SSE_HEAD + chunked(b"data: "), total, frame=chunked,
                         tail=chunked(b"\n\n") + b"0\r\n\r\n"))
    key = register_anthropic(client, seed, upstream.url)
    started = time.monotonic()
    response = client.post("/v1/chat/completions", headers=bearer(key), json={
        "model": "claude", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    events = [event for event in response.data.split(b"\n\n") if event]
    elapsed = time.monotonic() - started
    assert response.status_code == 200  # the stream had begun; its end is an error event
    error = json.loads(events[-1][len(b"data: "):])["error"]
    assert error["type"] == "upstream_error"
    assert "TEAMGATE_UPSTREAM_MAX_SSE_LINE_BYTES" in error["message"]
    assert "64 KiB" in error["message"]
    assert elapsed < 3.0
    upstream.finish()
    assert upstream.sent < IN_FLIGHT


def test_a_relayed_event_stream_without_line_breaks_is_cut_at_the_line_limit(client, seed, raw):
    # an OpenAI-shaped stream is relayed as it comes, but one event may not grow past the limit:
    # past it the event is closed and the stream ends with an error event a client can parse
    total = 48 * MIB
    upstream = raw(flood(SSE_HEAD + chunked(b"data: "), total, frame=chunked,
                         tail=chunked(b"\n\n") + b"0\r\n\r\n"))
    _, key = seed.team_with_model(upstream.url, max_retries=0)
    response = client.post("/v1/chat/completions", headers=bearer(key), json={
        "model": "my-team-model", "stream": True,
        "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200
    assert len(response.data) < 2 * LIMITS["UPSTREAM_MAX_SSE_LINE_BYTES"]
    events = [event for event in response.data.split(b"\n\n") if event]
    error = json.loads(events[-1][len(b"data: "):])["error"]
    assert error["type"] == "upstream_error"
    assert "TEAMGATE_UPSTREAM_MAX_SSE_LINE_BYTES" in error["message"]
    upstream.finish()
    assert upstream.sent < IN_FLIGHT


def test_event_lines_cut_at_awkward_places_arrive_whole(client, seed, raw):
    texts = [f"w{n} " for n in range(300)]
    events = b"".join(b'event: content_block_delta\r\ndata: {"type": "content_block_delta", '
                      b'"delta": {"type": "text_delta", "text": "%s"}}\r\n\r\n' % t.encode()
                      for t in texts) + b'data: {"type": "message_stop"}\r\n\r\n'
    # pieces of 1 to 13 bytes: every \r\n is split somewhere, some lines across many pieces
    cuts, position, size = [], 0, 1
    while position < len(events):
        cuts.append(events[position:position + size])
        position, size = position + size, size % 13 + 1

    def serve(peer):
        peer.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if peer.request() is None or not peer.send(SSE_HEAD):
            return
        for index, piece in enumerate(cuts):
            peer.send(chunked(piece))
            if index % 40 == 0:
                time.sleep(0.001)  # let some pieces arrive on their own
        peer.send(b"0\r\n\r\n")
        peer.request()
    upstream = raw(serve)
    key = register_anthropic(client, seed, upstream.url)
    response = client.post("/v1/chat/completions", headers=bearer(key), json={
        "model": "claude", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    chunks = [json.loads(event[len(b"data: "):]) for event in response.data.split(b"\n\n")
              if event and event != b"data: [DONE]"]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "".join(texts)


def split(chunks, limit: int = 64 * KIB) -> list[bytes]:
    splitter, lines = LineSplitter(limit), []
    for piece in chunks:
        lines += splitter.feed(piece)
    last = splitter.end()
    return lines + ([last] if last is not None else [])


STREAM = b"event: a\r\ndata: {}\r\n\r\n" * 20 + b"data: b\n\ndata: [DONE]\r\n\r\nlast"
EXPECTED = [b"event: a", b"data: {}", b""] * 20 + [b"data: b", b"", b"data: [DONE]", b"", b"last"]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 4096])
def test_lines_come_out_whole_however_the_chunks_are_cut(size):
    assert split(STREAM[i:i + size] for i in range(0, len(STREAM), size)) == EXPECTED


def test_a_line_break_split_at_every_place_gives_the_same_lines():
    for cut in range(1, len(STREAM)):
        assert split([STREAM[:cut], STREAM[cut:]]) == EXPECTED, cut


def test_a_line_at_the_limit_passes_and_one_byte_more_is_refused():
    assert split([b"x" * 100, b"\n"], limit=100) == [b"x" * 100]
    with pytest.raises(AnswerTooLarge):
        split([b"x" * 60, b"x" * 41, b"\n"], limit=100)
    with pytest.raises(AnswerTooLarge):
        split([b"x" * 60, b"x" * 41 + b"\n"], limit=100)


def test_splitting_looks_at_each_byte_once_however_long_the_line():
    # one 8 MiB line in 1 KiB chunks: re-reading what is pending would look at 32 GiB
    splitter, total = LineSplitter(64 * MIB), 8 * MIB
    piece = b"y" * KIB
    started = time.process_time()
    for _ in range(total // KIB):
        assert splitter.feed(piece) == []
    assert splitter.end() == b"y" * total
    assert splitter.scanned == total
    assert time.process_time() - started < 1.0  # generous: linear work takes about 10 ms


def test_the_upstream_settings_come_from_the_environment(monkeypatch, tmp_path):
    from flask import Flask

    from webapp import config
    settings = {"TEAMGATE_UPSTREAM_MAX_HEAD_BYTES": ("UPSTREAM_MAX_HEAD_BYTES", "2048", 2048),
                "TEAMGATE_UPSTREAM_MAX_BODY_BYTES": ("UPSTREAM_MAX_BODY_BYTES", "4096", 4096),
                "TEAMGATE_UPSTREAM_MAX_SSE_LINE_BYTES": ("UPSTREAM_MAX_SSE_LINE_BYTES", "512",
                                                         512),
                "TEAMGATE_UPSTREAM_CA_FILE": ("UPSTREAM_CA_FILE", "/etc/ca.pem", "/etc/ca.pem"),
                "TEAMGATE_EGRESS_PROXY": ("EGRESS_PROXY", "http://proxy:3128",
                                          "http://proxy:3128")}
    for name, (_, value, _) in settings.items():
        monkeypatch.setenv(name, value)
    app = Flask("settings", instance_path=str(tmp_path))
    config.load(app)
    assert {key: app.config[key] for key, _, _ in settings.values()} == {
        key: expected for key, _, expected in settings.values()}
    monkeypatch.setenv("TEAMGATE_UPSTREAM_MAX_BODY_BYTES", "64MB")
    with pytest.raises(ValueError, match="TEAMGATE_UPSTREAM_MAX_BODY_BYTES"):
        config.load(Flask("settings", instance_path=str(tmp_path)))
