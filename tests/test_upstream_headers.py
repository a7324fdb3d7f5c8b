"""The upstream headers a caller gets: request ids, rate-limit state and retry hints, on JSON
answers, streams and upstream errors, read by the official clients as a user would; never
cookies, hop-by-hop or framing headers, nor anything else. Without an upstream id, Teamgate's
own is `x-request-id`, and it finds the call's row in /spend/logs."""
import anthropic
import openai
import pytest
import requests

from tests.conftest import bearer
from tests.fake_upstream import Reply, chunk

PROVIDER_KEY = "sk-provider-team-a-secret-1234"
SAFE = {"x-request-id": "req_0a1b2c3d", "openai-processing-ms": "412",
        "x-ratelimit-limit-requests": "10000", "x-ratelimit-remaining-requests": "9999",
        "x-ratelimit-remaining-tokens": "199000", "x-ratelimit-reset-tokens": "300ms",
        "retry-after-ms": "20"}
UNSAFE = {"Set-Cookie": "session=upstream", "openai-organization": "org-private-team-a",
          "Keep-Alive": "timeout=5", "Proxy-Authenticate": "Basic", "x-internal-host": "10.0.0.7",
          "Access-Control-Allow-Origin": "*", "Server": "upstream/1.0", "Via": "1.1 lb-7"}
CHAT = {"model": "my-team-model", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def key(seed, upstream):
    return seed.team_with_model(upstream.url)[1]


def sdk(live, key) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=live.url + "/v1", max_retries=0)


def assert_only_safe_relayed(headers):
    for name, value in SAFE.items():
        assert headers.get(name) == value, name
    for name in UNSAFE:
        assert name not in headers or headers[name] != UNSAFE[name], name


def test_a_json_answer_carries_the_upstreams_ids_and_limits_and_nothing_else(live, key,
                                                                             upstream):
    upstream.reply(Reply(headers={**SAFE, **UNSAFE}))
    raw = sdk(live, key).chat.completions.with_raw_response.create(**CHAT)
    assert_only_safe_relayed(raw.headers)
    completion = raw.parse()
    assert completion._request_id == "req_0a1b2c3d"
    # the answer's length is Teamgate's own, the upstream's framing is not relayed
    assert int(raw.headers["content-length"]) == len(raw.content)
    assert "transfer-encoding" not in raw.headers


def test_a_stream_carries_them_before_its_first_event(live, key, upstream):
    upstream.reply(Reply(chunks=[chunk("Hel"), chunk("lo", "stop")], headers={**SAFE, **UNSAFE}))
    with sdk(live, key).chat.completions.with_streaming_response.create(
            **CHAT, stream=True) as response:
        assert_only_safe_relayed(response.headers)
        assert response.request_id == "req_0a1b2c3d"
        text = "".join(part.choices[0].delta.content or "" for part in response.parse()
                       if part.choices)
    assert text == "Hello"


def test_an_upstream_error_carries_them_with_its_retry_after(live, key, upstream):
    upstream.reply(Reply(429, {"error": {"message": "slow down"}},
                         {**SAFE, **UNSAFE, "Retry-After": "30", "retry-after-ms": "30000"}))
    with pytest.raises(openai.RateLimitError) as raised:
        sdk(live, key).chat.completions.create(**CHAT)
    headers = raised.value.response.headers
    assert raised.value.request_id == "req_0a1b2c3d"
    assert headers["retry-after"] == "30" and headers["retry-after-ms"] == "30000"
    assert headers["x-ratelimit-remaining-tokens"] == "199000"
    assert "set-cookie" not in headers and "openai-organization" not in headers
    assert len(upstream.received) == 1  # a 30 s wait is the caller's to make


def test_without_an_upstream_id_teamgates_own_is_the_request_logs(live, app, client, key,
                                                                  upstream):
    completion = sdk(live, key).chat.completions.create(**CHAT)
    own = completion._request_id
    assert own and own != "req_0a1b2c3d"
    upstream.reply(Reply(500, {"error": {"message": "boom"}}))
    with pytest.raises(openai.InternalServerError) as raised:
        sdk(live, key).chat.completions.create(**CHAT)
    failed = raised.value.request_id
    assert failed and failed != own
    with app.app_context():
        app.extensions["teamgate.request_log"].flush()
    for request_id, status in ((own, 200), (failed, 502)):
        rows = client.get("/spend/logs", query_string={"request_id": request_id},
                          headers=bearer(key)).json
        assert [(row["request_id"], row["metadata"]["status_code"]) for row in rows] == \
            [(request_id, status)]


def test_a_refused_call_has_its_rows_id_too(live, app, client, key, upstream):
    """A call refused before it went upstream (no such model) is logged; its id is given."""
    response = requests.post(live.url + "/v1/chat/completions", headers=bearer(key),
                             json={**CHAT, "model": "no-such-model"})
    assert response.status_code == 400
    assert upstream.received == []
    with app.app_context():
        app.extensions["teamgate.request_log"].flush()
    rows = client.get("/spend/logs", query_string={"request_id": response.headers["x-request-id"]},
                      headers=bearer(key)).json
    assert [(row["model"], row["metadata"]["status_code"]) for row in rows] == \
        [("no-such-model", 400)]


def test_the_team_key_in_a_relayed_header_is_masked(live, key, upstream):
    upstream.reply(Reply(headers={"x-request-id": f"req-for-{PROVIDER_KEY}"}))
    response = requests.post(live.url + "/v1/chat/completions", headers=bearer(key), json=CHAT)
    assert response.status_code == 200
    assert PROVIDER_KEY not in str(response.headers)
    assert response.headers["x-request-id"].startswith("req-for-sk-...")


def test_anthropics_request_id_and_limits_reach_the_anthropic_client(live, client, seed,
                                                                     upstream):
    team_id = seed.team()
    key = seed.key(team_id)
    assert client.post("/model/new", headers=bearer(key), json={
        "model_name": "claude", "model_info": {"team_id": team_id},
        "litellm_params": {"model": "anthropic/claude-sonnet-4-5", "api_base": upstream.url,
                           "api_key": "sk-ant-team-provider-key-4242"}}).status_code == 200
    limits = {"request-id": "req_011CVanthropic", "anthropic-ratelimit-tokens-remaining": "7000",
              "anthropic-ratelimit-requests-reset": "2026-12-07T16:00:00Z"}
    upstream.reply(Reply(body={
        "id": "msg_1", "type": "message", "model": "claude-sonnet-4-5", "role": "assistant",
        "content": [{"type": "text", "text": "Hi."}], "stop_reason": "end_turn",
        "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 2}},
        headers={**limits, **UNSAFE}))
    caller = anthropic.Anthropic(base_url=live.url, api_key=key, max_retries=0)
    raw = caller.messages.with_raw_response.create(
        model="claude", max_tokens=20, messages=[{"role": "user", "content": "hi"}])
    for name, value in limits.items():
        assert raw.headers[name] == value
    assert raw.parse()._request_id == "req_011CVanthropic"
    assert raw.headers["x-request-id"]  # Teamgate's own: Anthropic gives none by that name
    assert "set-cookie" not in raw.headers and "openai-organization" not in raw.headers
