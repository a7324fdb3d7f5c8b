"""Anthropic team models on /v1/chat/completions with the official openai client as the caller,
against a loopback server that checks requests as Anthropic's Messages API does and answers
with recorded Anthropic wire fixtures."""
import json
import time

import openai
import pytest

from tests.conftest import ADMIN, bearer
from tests.fake_anthropic import FakeAnthropic, message, recorded
from tests.fake_upstream import Reply
from tests.test_anthropic_translation import fixture

PROVIDER_KEY = "sk-ant-team-provider-key-4242"
WEATHER = [{"type": "function", "function": {
    "name": "get_weather", "description": "The weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}]


@pytest.fixture
def claude_api():
    server = FakeAnthropic()
    yield server
    server.close()


def register(client, seed, api, name="claude", model="anthropic/claude-sonnet-4-5",
             model_info=None):
    team_id = seed.team()
    key = seed.key(team_id)
    response = client.post("/model/new", headers=bearer(key), json={
        "model_name": name, "model_info": {"team_id": team_id, **(model_info or {})},
        "litellm_params": {"model": model, "api_base": api.url, "api_key": PROVIDER_KEY}})
    assert response.status_code == 200, response.json
    return team_id, key


def caller(live, key) -> openai.OpenAI:
    return openai.OpenAI(base_url=live.url + "/v1", api_key=key, max_retries=0)


def logged(app, client, team_id, count=1):
    """The team's calls in /spend/logs, once `count` of them are written (a stream is logged
    when the server's side of it ends, which may be after the client stopped reading)."""
    for _ in range(50):
        app.extensions["teamgate.request_log"].flush()
        response = client.get(f"/spend/logs?team_id={team_id}", headers=ADMIN)
        assert response.status_code == 200, response.json
        if len(response.json) >= count:
            return response.json
        time.sleep(0.05)
    return response.json


def test_parallel_tool_calls_come_back_as_tool_calls(live, app, client, seed, claude_api):
    team_id, key = register(client, seed, claude_api)
    claude_api.reply(Reply(body=fixture("tool_use_answer.json")["anthropic"]))
    answer = caller(live, key).chat.completions.create(
        model="claude", tools=WEATHER, tool_choice="required",
        messages=[{"role": "user", "content": "Weather in Paris and Oslo?"}])
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "I'll check both cities."
    assert [(c.id, c.function.name, json.loads(c.function.arguments))
            for c in choice.message.tool_calls] == [
        ("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather", {"city": "Paris"}),
        ("toolu_01DKv8yGBUp3tsBx4BLRtLnm", "get_weather", {"city": "Oslo"})]
    assert answer.usage.prompt_tokens == 472 + 1200 + 3000
    assert answer.usage.prompt_tokens_details.cached_tokens == 3000
    sent = claude_api.received[-1]
    assert sent.path == "/v1/messages" and sent.headers["x-api-key"] == PROVIDER_KEY
    assert sent.body["tool_choice"] == {"type": "any"}
    assert sent.body["tools"][0]["input_schema"] == WEATHER[0]["function"]["parameters"]
    row = logged(app, client, team_id)[0]
    assert (row["prompt_tokens"], row["completion_tokens"]) == (4672, 89)
    assert (row["cache_read_input_tokens"], row["cache_creation_input_tokens"]) == (3000, 1200)


def test_streamed_parallel_tool_calls_keep_their_indexes_and_usage_is_logged(
        live, app, client, seed, claude_api):
    team_id, key = register(client, seed, claude_api)
    claude_api.reply(recorded("parallel_tools.sse"), recorded("parallel_tools.sse"))
    stream = caller(live, key).chat.completions.create(
        model="claude", tools=WEATHER, stream=True,
        messages=[{"role": "user", "content": "Weather in Paris and Oslo?"}])
    chunks = list(stream)
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for call in chunk.choices[0].delta.tool_calls or ():
            entry = calls.setdefault(call.index, {"id": call.id, "arguments": ""})
            entry["arguments"] += call.function.arguments or ""
    assert {i: (c["id"], json.loads(c["arguments"])) for i, c in calls.items()} == {
        0: ("toolu_01T1x1fJ34qAmk2tNTrN7Up6", {"city": "Paris"}),
        1: ("toolu_01DKv8yGBUp3tsBx4BLRtLnm", {"city": "Oslo"})}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert all(chunk.usage is None for chunk in chunks)  # not asked for
    assert claude_api.received[-1].body["stream"] is True
    asked = list(caller(live, key).chat.completions.create(
        model="claude", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Again"}]))
    assert asked[-1].choices == [] and asked[-1].usage.completion_tokens == 89
    assert asked[-1].usage.prompt_tokens == 4672
    rows = logged(app, client, team_id, count=2)
    assert len(rows) == 2
    for row in rows:
        assert (row["prompt_tokens"], row["completion_tokens"]) == (4672, 89)
        assert row["cache_read_input_tokens"] == 3000
        assert row["cache_creation_input_tokens"] == 1200


def test_a_tool_result_conversation_reaches_anthropic_as_it_takes_it(live, client, seed,
                                                                     claude_api):
    """System as parts, images (data: and https), assistant tool calls, two tool messages
    merged into one user turn with the next question, stop, temperature, top_p, user."""
    _, key = register(client, seed, claude_api)
    case = fixture("chat_request.json")
    claude_api.reply(recorded("thinking_text.sse"))
    body = {k: v for k, v in case["chat"].items() if k not in ("model", "messages")}
    stream = caller(live, key).chat.completions.create(model="claude",
                                                       messages=case["chat"]["messages"],
                                                       **body)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "Autumn moonlight—\na worm digs silently"
    sent = claude_api.received[-1]
    assert sent.body == case["anthropic"]
    assert sent.raw == json.dumps(case["anthropic"], ensure_ascii=False,
                                  separators=(",", ":")).encode()


def test_json_schema_is_answered_as_content(live, client, seed, claude_api):
    _, key = register(client, seed, claude_api, model="anthropic/claude-haiku-4-5")
    case = fixture("json_answer.json")
    claude_api.reply(Reply(body=case["anthropic"]))
    answer = caller(live, key).chat.completions.create(
        model="claude", messages=case["chat"]["messages"],
        response_format=case["chat"]["response_format"])
    assert json.loads(answer.choices[0].message.content) == {"name": "Ada", "age": 36}
    assert answer.choices[0].finish_reason == "stop"
    assert answer.choices[0].message.tool_calls is None
    assert claude_api.received[-1].body == case["anthropic_request"]


def test_max_tokens_defaults_to_the_models_output_limit(live, client, seed, claude_api):
    _, key = register(client, seed, claude_api)
    _, own_key = register(client, seed, claude_api, name="capped",
                          model_info={"max_output_tokens": 1234})
    _, unknown_key = register(client, seed, claude_api, name="unknown",
                              model="anthropic/claude-not-in-the-map")
    for api_key, model, sent in ((key, "claude", 64000), (own_key, "capped", 1234),
                                 (unknown_key, "unknown", 4096)):
        caller(live, api_key).chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Hi"}])
        assert claude_api.received[-1].body["max_tokens"] == sent
    claude_api.reply(Reply(body=message("Cut", stop="max_tokens")))
    answer = caller(live, key).chat.completions.create(
        model="claude", max_tokens=5, messages=[{"role": "user", "content": "Hi"}])
    assert answer.choices[0].finish_reason == "length"
    assert claude_api.received[-1].body["max_tokens"] == 5


def test_n_above_one_is_refused_in_the_contracts_format(live, client, seed, claude_api):
    _, key = register(client, seed, claude_api)
    with pytest.raises(openai.BadRequestError) as refused:
        caller(live, key).chat.completions.create(
            model="claude", n=2, messages=[{"role": "user", "content": "Hi"}])
    error = refused.value.body
    assert refused.value.status_code == 400
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", "n",
                                                              "400")
    assert "n" in error["message"]
    assert claude_api.received == []


def test_an_overloaded_error_mid_stream_reaches_the_caller_and_the_log(
        live, app, client, seed, claude_api):
    team_id, key = register(client, seed, claude_api)
    claude_api.reply(recorded("overloaded.sse"))
    stream = caller(live, key).chat.completions.create(
        model="claude", stream=True, messages=[{"role": "user", "content": "A story"}])
    seen = []
    with pytest.raises(openai.APIError) as failed:
        for chunk in stream:
            seen.append(chunk.choices[0].delta.content)
    assert seen == ["", "Once upon"]
    assert "overloaded_error" in str(failed.value)
    row = logged(app, client, team_id)[0]
    assert row["status"] == "failure"
    assert row["metadata"] == {"key_name": row["metadata"]["key_name"], "status_code": 502,
                               "error_type": "upstream_error"}
    assert row["prompt_tokens"] == 25


def test_an_anthropic_refusal_is_relayed_as_a_400(live, client, seed, claude_api):
    _, key = register(client, seed, claude_api)
    claude_api.reply(Reply(status=400, body={"type": "error", "error": {
        "type": "invalid_request_error", "message": "temperature: range: 0..1"}}))
    with pytest.raises(openai.BadRequestError) as refused:
        caller(live, key).chat.completions.create(
            model="claude", temperature=1.5, messages=[{"role": "user", "content": "Hi"}])
    assert "temperature" in refused.value.body["message"]
