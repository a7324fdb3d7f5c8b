"""The request-body limit (TEAMGATE_MAX_BODY_MB, 20 MiB by default) on a real socket: a vision
call with a 10 MiB base64 image reaches the upstream whole through the openai client, and one
byte past the limit is the contract's 413, sent with a Content-Length or chunked."""
import base64
import os

import anthropic
import openai
import pytest
import requests

from tests.conftest import LiveServer, bearer
from tests.test_security_input import CHUNKED, MIB, pieces, vision_call


def test_a_vision_call_with_a_10_mib_base64_image_reaches_the_upstream_whole(live, seed,
                                                                           upstream):
    _, key = seed.team_with_model(upstream.url)
    image = "data:image/png;base64," + base64.b64encode(os.urandom(10 * MIB * 3 // 4)).decode()
    assert len(image) > 10 * MIB
    caller = openai.OpenAI(api_key=key, base_url=live.url + "/v1", max_retries=0)
    completion = caller.chat.completions.create(model="my-team-model", messages=[
        {"role": "user", "content": [{"type": "text", "text": "What is in this picture?"},
                                     {"type": "image_url", "image_url": {"url": image}}]}])
    assert completion.choices[0].message.content
    assert upstream.received[-1].body["messages"][0]["content"][1]["image_url"]["url"] == image


def assert_contract_413(response, limit_mib: str):
    assert response.status_code == 413
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", "413",
                                                               None)
    assert f"at most {limit_mib} MiB (TEAMGATE_MAX_BODY_MB)" in error["message"]


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_one_byte_past_the_default_limit_is_a_413_and_the_limit_itself_passes(live, seed,
                                                                             upstream, framing):
    _, key = seed.team_with_model(upstream.url)
    headers = {**bearer(key), "Content-Type": "application/json",
               **(CHUNKED if framing == "chunked" else {})}
    with requests.Session() as session:
        answers = []
        for size in (20 * MIB + 1, 20 * MIB):
            body = vision_call(size)
            answers.append(session.post(live.url + "/v1/chat/completions", headers=headers,
                                        data=pieces(body) if framing == "chunked" else body,
                                        timeout=60))
    assert_contract_413(answers[0], "20")
    assert answers[1].status_code == 200, answers[1].text
    assert len(upstream.received) == 1  # the refused body went nowhere


@pytest.fixture
def twelve_mib(make_app, seed, upstream, monkeypatch):
    """A Teamgate started with TEAMGATE_MAX_BODY_MB=12, and a key of a team with a model."""
    monkeypatch.setenv("TEAMGATE_MAX_BODY_MB", "12")
    server = LiveServer(make_app())
    _, key = seed.team_with_model(upstream.url)
    yield server, key
    server.stop()


def test_the_limit_is_the_setting_for_the_openai_and_anthropic_clients(twelve_mib, upstream):
    server, key = twelve_mib
    image = "data:image/png;base64," + "A" * (12 * MIB)
    caller = openai.OpenAI(api_key=key, base_url=server.url + "/v1", max_retries=0)
    with pytest.raises(openai.APIStatusError) as raised:
        caller.chat.completions.create(model="my-team-model", messages=[
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": image}}]}])
    assert raised.value.status_code == 413
    assert "at most 12 MiB" in raised.value.body["message"]
    claude = anthropic.Anthropic(api_key=key, base_url=server.url, max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as refused:
        claude.messages.create(model="my-team-model", max_tokens=10, messages=[
            {"role": "user", "content": "A" * (12 * MIB)}])
    assert refused.value.status_code == 413
    assert refused.value.body["type"] == "error"  # Anthropic's shape on its route
    body = vision_call(12 * MIB)
    for framing, data in (({}, body), (CHUNKED, pieces(body))):
        response = requests.post(server.url + "/v1/chat/completions", timeout=60,
                                 headers={**bearer(key), **framing}, data=data)
        assert response.status_code == 200, response.text
    assert len(upstream.received) == 2


@pytest.mark.parametrize("value", ["0", "-5", "inf", "nan", "lots"])
def test_a_limit_that_is_not_a_size_stops_the_start(make_app, monkeypatch, value):
    monkeypatch.setenv("TEAMGATE_MAX_BODY_MB", value)
    with pytest.raises(ValueError, match="TEAMGATE_MAX_BODY_MB must be a number above zero"):
        make_app()
