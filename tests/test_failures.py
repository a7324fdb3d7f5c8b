"""The failure table of docs/security.md against the real fake upstream, through the openai
client: each upstream condition gives the documented status, error type and exception class."""
import socket

import openai
import pytest
import requests

from tests.conftest import bearer
from tests.fake_upstream import Reply, chunk

HTML = b"<html><body>502 Bad Gateway</body></html>"


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


CASES = [
    # id, replies queued, expected status, error type, openai exception, upstream calls
    ("upstream-400", [Reply(400, {"error": {"message": "context too long"}})], 400,
     "invalid_request_error", openai.BadRequestError, 1),
    ("upstream-404", [Reply(404, {"error": {"message": "deployment not found"}})], 404,
     "invalid_request_error", openai.NotFoundError, 1),
    ("upstream-422", [Reply(422, {"error": {"message": "bad field"}})], 422,
     "invalid_request_error", openai.UnprocessableEntityError, 1),
    ("provider-refuses-key", [Reply(401, {"error": {"message": "Incorrect API key "
                                                    "provided: sk-provider-team-a-secret-1234"}})],
     401, "authentication_error", openai.AuthenticationError, 1),
    ("provider-403", [Reply(403, {"error": {"message": "forbidden"}})], 401,
     "authentication_error", openai.AuthenticationError, 1),
    ("429-long-retry-after", [Reply(429, {"error": {"message": "slow down"}},
                                    {"Retry-After": "30"})], 429, "rate_limit_error",
     openai.RateLimitError, 1),
    ("429-short-retry-after-then-ok", [Reply(429, {"error": {"message": "slow"}},
                                             {"Retry-After": "0.1"})], 200, None, None, 2),
    ("500-not-retried", [Reply(500, {"error": {"message": "boom"}})], 502, "upstream_error",
     openai.InternalServerError, 1),
    ("502-three-times", [Reply(502, {"error": {"message": "bad gateway"}})] * 3, 502,
     "upstream_error", openai.InternalServerError, 3),
    ("503-then-ok", [Reply(503, b"unavailable")], 200, None, None, 2),
    ("html-body", [Reply(200, HTML, {"Content-Type": "text/html"})], 502, "upstream_error",
     openai.InternalServerError, 1),
    ("truncated-json", [Reply(200, b'{"id": "x", "choices": [', content_length=400)], 502,
     "upstream_error", openai.InternalServerError, 1),
    ("redirect", [Reply(302, b"", {"Location": "http://169.254.169.254/latest"})], 502,
     "upstream_error", openai.InternalServerError, 1),
    ("read-timeout", [Reply(delay=1.5)], 504, "timeout", openai.APIStatusError, 1),
]


@pytest.fixture
def team_key(seed, upstream):
    team_id = seed.team()
    key = seed.key(team_id)
    seed.model(key, team_id, upstream.url, timeout=1.0, max_retries=2)
    return key


def call(live, key, **kwargs):
    client = openai.OpenAI(api_key=key, base_url=live.url + "/v1", max_retries=0)
    return client.chat.completions.create(
        model="my-team-model", messages=[{"role": "user", "content": "hi"}], **kwargs)


@pytest.mark.parametrize("name, replies, status, error_type, exception, calls", CASES,
                         ids=[case[0] for case in CASES])
def test_failure_table(live, upstream, team_key, name, replies, status, error_type, exception,
                       calls):
    upstream.reply(*replies)
    if status == 200:
        assert call(live, team_key).choices[0].message.content
    else:
        with pytest.raises(exception) as raised:
            call(live, team_key)
        assert raised.value.status_code == status
        raw = requests.post(live.url + "/v1/chat/completions", headers=bearer(team_key),
                            json={"model": "my-team-model",
                                  "messages": [{"role": "user", "content": "hi"}]})
        # the fake upstream answers normally now; the first call is the one under test
        error = raised.value.body.get("error", raised.value.body)
        assert error["type"] == error_type and error["code"] == str(status)
        assert "sk-provider-team-a-secret-1234" not in str(raised.value.body)
        if name == "429-long-retry-after":
            assert raised.value.response.headers["Retry-After"] == "30"
        assert raw.status_code == 200
    assert len(upstream.received) - (0 if status == 200 else 1) == calls


def test_connection_refused_is_502(live, client, seed):
    team_id = seed.team()
    key = seed.key(team_id)
    seed.model(key, team_id, f"http://127.0.0.1:{closed_port()}", max_retries=1)
    with pytest.raises(openai.InternalServerError) as raised:
        call(live, key)
    assert raised.value.status_code == 502
    assert raised.value.body.get("error", raised.value.body)["type"] == "upstream_error"


def test_upstream_set_cookie_is_not_relayed(client, seed, upstream):
    team_id = seed.team()
    key = seed.key(team_id)
    seed.model(key, team_id, upstream.url)
    upstream.reply(Reply(headers={"Set-Cookie": "session=upstream",
                                  "Access-Control-Allow-Origin": "*"}))
    response = client.post("/v1/chat/completions", headers=bearer(key), json={
        "model": "my-team-model", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert "Access-Control-Allow-Origin" not in response.headers


def test_never_retries_after_the_first_streamed_byte(live, seed, upstream):
    team_id = seed.team()
    key = seed.key(team_id)
    seed.model(key, team_id, upstream.url, max_retries=2)
    upstream.reply(Reply(chunks=[chunk("a"), chunk("b"), chunk("c")], drop_after=2))
    response = requests.post(live.url + "/v1/chat/completions", headers=bearer(key), json={
        "model": "my-team-model", "stream": True, "messages": [{"role": "user", "content": "x"}]})
    assert '"error"' in response.text
    assert len(upstream.received) == 1
