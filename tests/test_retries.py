"""Retries against the real fake upstream: the wait an upstream asks for (retry-after-ms,
Retry-After in seconds or as an HTTP date) is honoured inside the call's deadline, a wait past it
is the caller's at once, and Teamgate's retries add to an SDK's rather than multiply them."""
import email.utils
import time

import openai
import pytest
import requests

from tests.conftest import bearer
from tests.fake_upstream import Reply

CHAT = {"model": "my-team-model", "messages": [{"role": "user", "content": "hi"}]}
SLOW_DOWN = {"error": {"message": "slow down"}}


@pytest.fixture
def key(seed, upstream):
    """A deployment with the default max_retries (2) and a 3 s deadline."""
    return seed.team_with_model(upstream.url, timeout=3.0)[1]


def sdk(live, key, max_retries=0) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=live.url + "/v1", max_retries=max_retries)


def timed(function):
    started = time.monotonic()
    try:
        return function(), time.monotonic() - started
    except openai.APIStatusError as error:
        return error, time.monotonic() - started


def test_one_sdk_call_costs_two_upstream_calls_when_a_429_asks_for_no_wait(live, key, upstream):
    upstream.reply(Reply(429, SLOW_DOWN, {"Retry-After": "0"}))
    completion = sdk(live, key, max_retries=2).chat.completions.create(**CHAT)
    assert completion.choices[0].message.content
    assert len(upstream.received) == 2  # Teamgate retried; the SDK saw the 200 at once


def test_an_upstream_that_always_refuses_gets_teamgates_retries_plus_the_sdks(live, key,
                                                                             upstream):
    """max_retries 2 on the deployment and 2 in the SDK: 3 calls for the SDK's first attempt,
    one for each of its 2 retries (x-stainless-retry-count 1 and 2), 5 in all, not 3 x 3."""
    upstream.default = Reply(429, SLOW_DOWN, {"Retry-After": "0"})
    with pytest.raises(openai.RateLimitError) as raised:
        sdk(live, key, max_retries=2).chat.completions.create(**CHAT)
    assert raised.value.response.headers["retry-after"] == "0"
    assert len(upstream.received) == 5
    assert [call.headers.get("x-stainless-retry-count") for call in upstream.received] == \
        [None] * 5  # the SDK's own headers stay between it and Teamgate


def test_a_caller_retrying_itself_is_sent_once(live, key, upstream):
    upstream.default = Reply(502, {"error": {"message": "bad gateway"}})
    for count, calls in (("0", 3), ("1", 1), ("7", 1)):
        before = len(upstream.received)
        response = requests.post(live.url + "/v1/chat/completions", json=CHAT, timeout=10,
                                 headers={**bearer(key), "x-stainless-retry-count": count})
        assert response.status_code == 502
        assert len(upstream.received) - before == calls, count


@pytest.mark.parametrize("headers, least", [
    (lambda: {"Retry-After": "1"}, 1.0),
    (lambda: {"retry-after-ms": "400"}, 0.4),
    # whole seconds: 1.9 s from now is 0.9 to 1.9 s away
    (lambda: {"Retry-After": email.utils.formatdate(time.time() + 1.9, usegmt=True)}, 0.8),
], ids=["seconds", "milliseconds", "http-date"])
def test_the_wait_the_upstream_asks_for_is_honoured(live, key, upstream, headers, least):
    upstream.reply(Reply(429, SLOW_DOWN, headers()))
    completion, elapsed = timed(lambda: sdk(live, key).chat.completions.create(**CHAT))
    assert completion.choices[0].message.content
    assert len(upstream.received) == 2
    assert elapsed >= least


@pytest.mark.parametrize("status, error_type, exception", [
    (429, "rate_limit_error", openai.RateLimitError),
    (503, "upstream_error", openai.InternalServerError),
])
def test_a_wait_past_the_deadline_is_answered_at_once_with_the_upstreams_status(
        live, seed, upstream, status, error_type, exception):
    key = seed.team_with_model(upstream.url, timeout=1.0)[1]
    upstream.reply(Reply(status, SLOW_DOWN, {"Retry-After": "1.5"}))
    error, elapsed = timed(lambda: sdk(live, key).chat.completions.create(**CHAT))
    assert isinstance(error, exception) and error.status_code == status
    assert error.response.headers["retry-after"] == "1.5"
    assert error.body["type"] == error_type and error.body["code"] == str(status)
    assert "slow down" in error.body["message"]
    assert elapsed < 1.0  # not spent waiting for an answer that could not come in time
    assert len(upstream.received) == 1


def test_a_long_retry_after_is_the_callers_to_wait(live, key, upstream):
    upstream.reply(Reply(503, b"unavailable", {"Retry-After": "20"}))
    error, elapsed = timed(lambda: sdk(live, key).chat.completions.create(**CHAT))
    assert error.status_code == 503 and error.response.headers["retry-after"] == "20"
    assert len(upstream.received) == 1 and elapsed < 2.0


def test_a_503_without_retry_after_is_retried_then_a_502(live, key, upstream):
    upstream.default = Reply(503, b"unavailable")
    error, _ = timed(lambda: sdk(live, key).chat.completions.create(**CHAT))
    assert error.status_code == 502 and error.body["type"] == "upstream_error"
    assert len(upstream.received) == 3


def test_an_upstream_loop_refusal_508_is_a_502_in_the_contracts_format(live, key, upstream):
    upstream.reply(Reply(508, {"error": {"message": "Loop detected: the call came back.",
                                         "type": "invalid_request_error", "code": "508"}}))
    response = requests.post(live.url + "/v1/chat/completions", headers=bearer(key), json=CHAT,
                             timeout=10)
    assert response.status_code == 502
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("upstream_error", "502", None)
    assert "508" in error["message"] and "Loop detected" in error["message"]
    assert len(upstream.received) == 1  # a loop is not retried
