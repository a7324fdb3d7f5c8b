"""A model's `timeout` bounds the whole call: an upstream that drips its answer a byte at a time
gets a 504 at the timeout instead of holding the call for as long as it likes. Streams keep
their idle timeout between chunks (`stream_timeout`), however long they last in total."""
import json
import time


from tests.conftest import bearer

CALL = {"model": "my-team-model", "messages": [{"role": "user", "content": "hi"}]}
DRIP_FOR = 6.0  # the upstream gives up after this long, so a failing test still ends



def dripping(head: bytes, drip: bytes, every: float = 0.03):
    """A script that sends `head` at once, then `drip` one byte at a time."""
    def serve(peer):
        if peer.request() is None or not peer.send(head):
            return
        started = time.monotonic()
        for index in range(len(drip)):
            if time.monotonic() - started > DRIP_FOR or not peer.send(drip[index:index + 1]):
                return
            if not peer.pause(every):
                return
        peer.request()
    return serve


def timed_call(client, key, **extra):
    started = time.monotonic()
    response = client.post("/v1/chat/completions", headers=bearer(key), json={**CALL, **extra})
    response.get_data()  # a stream is read to its end
    return response, time.monotonic() - started


def assert_timeout(response):
    assert response.status_code == 504
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json["error"]["type"] == "timeout"


def test_a_dripping_body_ends_at_the_models_timeout(client, seed, raw):
    body = json.dumps({"choices": [], "padding": "x" * 500}).encode()
    upstream = raw(dripping(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                            b"Content-Length: %d\r\n\r\n" % len(body), body))
    _, key = seed.team_with_model(upstream.url, timeout=0.3, max_retries=0)
    response, elapsed = timed_call(client, key)
    assert_timeout(response)
    assert 0.25 < elapsed < DRIP_FOR / 2  # a loaded machine may add a second or two


def test_a_dripping_head_ends_at_the_models_timeout(client, seed, raw):
    upstream = raw(dripping(b"", b"HTTP/1.1 200 OK\r\nX-Slow: " + b"s" * 200 +
                            b"\r\nContent-Length: 2\r\n\r\n{}"))
    _, key = seed.team_with_model(upstream.url, timeout=0.3, max_retries=0)
    response, elapsed = timed_call(client, key)
    assert_timeout(response)
    assert elapsed < DRIP_FOR / 2


def test_the_head_of_a_stream_must_arrive_within_the_stream_timeout(client, seed, raw):
    upstream = raw(dripping(b"", b"HTTP/1.1 200 OK\r\nX-Slow: " + b"s" * 200 + b"\r\n\r\n"))
    _, key = seed.team_with_model(upstream.url, stream_timeout=0.3, max_retries=0)
    response, elapsed = timed_call(client, key, stream=True)
    assert_timeout(response)
    assert elapsed < DRIP_FOR / 2


def sse(count: int, every: float, then_stall: float = 0.0):
    def serve(peer):
        if peer.request() is None:
            return
        peer.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        for index in range(count):
            data = b'data: {"choices": [{"index": 0, "delta": {"content": "%d"}}]}\n\n' % index
            if not peer.send(b"%x\r\n%s\r\n" % (len(data), data)):
                return
            peer.pause(every)
        if not peer.pause(then_stall):
            return
        peer.send(b"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n")
        peer.request()
    return serve


def test_a_stream_lasts_longer_than_the_timeouts_while_chunks_keep_coming(client, seed, raw):
    upstream = raw(sse(count=10, every=0.06))
    _, key = seed.team_with_model(upstream.url, timeout=0.2, stream_timeout=0.3,
                                  max_retries=0)
    response, elapsed = timed_call(client, key, stream=True)
    assert response.status_code == 200
    events = [e for e in response.data.split(b"\n\n") if e]
    assert len(events) == 11 and events[-1] == b"data: [DONE]"
    assert elapsed > 0.55


def test_a_stream_that_stalls_longer_than_its_idle_timeout_ends_with_a_timeout_event(
        client, seed, raw):
    upstream = raw(sse(count=2, every=0.05, then_stall=DRIP_FOR))
    _, key = seed.team_with_model(upstream.url, stream_timeout=0.3, max_retries=0)
    response, elapsed = timed_call(client, key, stream=True)
    events = [e for e in response.data.split(b"\n\n") if e]
    assert response.status_code == 200
    assert json.loads(events[-1][len(b"data: "):])["error"]["type"] == "timeout"
    assert elapsed < DRIP_FOR / 2
