"""Anthropic's Messages API through Teamgate, with the official anthropic client as the caller
(what Claude Code uses): relayed to Anthropic deployments, translated for chat deployments."""
import json

import anthropic
import pytest
import requests

from tests.conftest import ADMIN, bearer
from tests.fake_upstream import Reply, chunk

ANTHROPIC_KEY = "sk-ant-team-provider-key-4242"


def register_claude(client, seed, upstream, team_id=None, key=None):
    team_id = team_id or seed.team()
    key = key or seed.key(team_id)
    response = client.post("/model/new", headers=bearer(key), json={
        "model_name": "claude", "model_info": {"team_id": team_id},
        "litellm_params": {"model": "anthropic/claude-sonnet-4-5", "api_base": upstream.url,
                           "api_key": ANTHROPIC_KEY}})
    assert response.status_code == 200, response.json
    return team_id, key


def sdk(live, key) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=live.url, api_key=key, max_retries=0)


def sse(kind: str, payload: dict) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **payload})}\n\n".encode()


CLAUDE_STREAM = [
    sse("message_start", {"message": {
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 12, "cache_read_input_tokens": 2000,
                  "cache_creation_input_tokens": 300, "output_tokens": 1}}}),
    sse("content_block_start", {"index": 0, "content_block": {
        "type": "thinking", "thinking": "", "signature": ""}}),
    sse("content_block_delta", {"index": 0, "delta": {"type": "thinking_delta",
                                                      "thinking": "Look at the file."}}),
    sse("content_block_delta", {"index": 0, "delta": {"type": "signature_delta",
                                                      "signature": "c2ln"}}),
    sse("content_block_stop", {"index": 0}),
    sse("content_block_start", {"index": 1, "content_block": {
        "type": "tool_use", "id": "toolu_01", "name": "Read", "input": {}}}),
    sse("content_block_delta", {"index": 1, "delta": {"type": "input_json_delta",
                                                      "partial_json": "{\"file_path\": "}}),
    sse("content_block_delta", {"index": 1, "delta": {"type": "input_json_delta",
                                                      "partial_json": "\"/a.py\"}"}}),
    sse("content_block_stop", {"index": 1}),
    sse("message_delta", {"delta": {"stop_reason": "tool_use", "stop_sequence": None},
                          "usage": {"output_tokens": 41}}),
    sse("message_stop", {}),
]

# what Claude Code sends: tools, cache_control on system and tools, thinking, betas
CLAUDE_CODE_BODY = {
    "model": "claude", "max_tokens": 32000, "stream": True,
    "system": [{"type": "text", "text": "You are Claude Code.",
                "cache_control": {"type": "ephemeral"}}],
    "thinking": {"type": "enabled", "budget_tokens": 16000},
    "tools": [{"name": "Read", "description": "Read a file",
               "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}},
                                "required": ["file_path"]},
               "cache_control": {"type": "ephemeral"}}],
    "metadata": {"user_id": "user_abc"},
    "messages": [{"role": "user", "content": [
        {"type": "text", "text": "Read a.py", "cache_control": {"type": "ephemeral"}}]}],
}


def test_claude_code_request_is_relayed_unchanged_with_the_team_key(live, client, seed,
                                                                     upstream):
    _, key = register_claude(client, seed, upstream)
    upstream.reply(Reply(chunks=CLAUDE_STREAM, raw_events=True))
    body = {k: v for k, v in CLAUDE_CODE_BODY.items() if k != "model"}
    with sdk(live, key).messages.stream(
            model="claude", extra_headers={"anthropic-beta": "claude-code-20250219,"
                                           "interleaved-thinking-2025-05-14"},
            **{k: v for k, v in body.items() if k != "stream"}) as stream:
        events = list(stream)
        final = stream.get_final_message()
    sent = upstream.received[-1]
    assert sent.path == "/v1/messages"
    assert sent.body == {**CLAUDE_CODE_BODY, "model": "claude-sonnet-4-5"}
    assert sent.headers["x-api-key"] == ANTHROPIC_KEY
    assert key not in json.dumps(sent.headers)
    assert sent.headers["anthropic-beta"] == ("claude-code-20250219,"
                                              "interleaved-thinking-2025-05-14")
    assert sent.headers["anthropic-version"]  # the SDK's own, relayed
    assert [b.type for b in final.content] == ["thinking", "tool_use"]
    assert final.content[1].input == {"file_path": "/a.py"}
    assert final.stop_reason == "tool_use"
    assert any(e.type == "message_stop" for e in events)


def test_the_anthropic_stream_reaches_the_caller_byte_for_byte(live, client, seed, upstream):
    _, key = register_claude(client, seed, upstream)
    upstream.reply(Reply(chunks=CLAUDE_STREAM, raw_events=True))
    response = requests.post(live.url + "/v1/messages", json=CLAUDE_CODE_BODY, headers={
        "x-api-key": key, "anthropic-version": "2023-06-01"})
    assert response.status_code == 200
    assert response.content == b"".join(CLAUDE_STREAM)
    assert upstream.received[-1].headers["anthropic-version"] == "2023-06-01"


def test_stream_usage_with_cache_tokens_is_logged(live, client, seed, upstream, app):
    team_id, key = register_claude(client, seed, upstream)
    upstream.reply(Reply(chunks=CLAUDE_STREAM, raw_events=True))
    requests.post(live.url + "/v1/messages", headers={"x-api-key": key},
                  json=CLAUDE_CODE_BODY).close()
    rows = logged(app, client, team_id)
    assert rows[0]["prompt_tokens"] == 12 + 2000 + 300
    assert rows[0]["completion_tokens"] == 41
    assert rows[0]["cache_read_input_tokens"] == 2000
    assert rows[0]["cache_creation_input_tokens"] == 300


def logged(app, client, team_id):
    """The team's calls in /spend/logs (LiteLLM's shape), once the request log is written."""
    app.extensions["teamgate.request_log"].flush()
    response = client.get(f"/spend/logs?team_id={team_id}", headers=ADMIN)
    assert response.status_code == 200, response.json
    return response.json


def test_json_answer_and_count_tokens_on_an_anthropic_deployment(live, client, seed, upstream):
    _, key = register_claude(client, seed, upstream)
    upstream.reply(
        Reply(body={"id": "msg_2", "type": "message", "role": "assistant",
                    "model": "claude-sonnet-4-5", "stop_reason": "end_turn",
                    "stop_sequence": None, "content": [{"type": "text", "text": "Hi."}],
                    "usage": {"input_tokens": 5, "output_tokens": 2}}),
        Reply(body={"input_tokens": 17}))
    claude = sdk(live, key)
    answer = claude.messages.create(model="claude", max_tokens=100,
                                    messages=[{"role": "user", "content": "Hello"}])
    assert answer.content[0].text == "Hi."
    count = claude.messages.count_tokens(model="claude",
                                         messages=[{"role": "user", "content": "Hello"}])
    assert count.input_tokens == 17
    assert upstream.received[-1].path == "/v1/messages/count_tokens"
    assert upstream.received[-1].body["model"] == "claude-sonnet-4-5"


def test_errors_are_in_anthropic_shape_so_the_sdk_raises_the_right_exception(live, client,
                                                                             seed, upstream):
    _, key = register_claude(client, seed, upstream)
    with pytest.raises(anthropic.AuthenticationError):
        sdk(live, "sk-not-a-key").messages.create(
            model="claude", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.BadRequestError) as missing:
        sdk(live, key).messages.create(model="no-such-model", max_tokens=10,
                                       messages=[{"role": "user", "content": "x"}])
    assert missing.value.body["type"] == "error"
    response = requests.post(live.url + "/v1/messages", headers={"x-api-key": key},
                             json={"model": "claude", "messages": [{"role": "user",
                                                                    "content": "x"}]})
    assert response.status_code == 400
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in response.json()["error"]["message"]
    # the upstream's own overload arrives as Anthropic's overloaded error
    upstream.reply(Reply(status=529, body={"type": "error", "error": {
        "type": "overloaded_error", "message": "Overloaded"}}))
    with pytest.raises(anthropic.APIStatusError) as overloaded:
        sdk(live, key).messages.create(model="claude", max_tokens=10,
                                       messages=[{"role": "user", "content": "x"}])
    assert overloaded.value.body["type"] == "error"


def test_another_teams_model_looks_missing_on_messages(live, client, seed, upstream):
    register_claude(client, seed, upstream)
    other = seed.key(seed.team(alias="Team B"))
    response = requests.post(live.url + "/v1/messages", headers={"x-api-key": other}, json={
        "model": "claude", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})
    missing = requests.post(live.url + "/v1/messages", headers={"x-api-key": other}, json={
        "model": "nothing", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == missing.status_code
    assert response.json()["error"]["type"] == missing.json()["error"]["type"]
    assert upstream.received == []


# --- chat deployments on /v1/messages --------------------------------------------------------

TOOLS = [{"name": "get_weather", "description": "Weather of a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]


def test_messages_to_an_openai_deployment_translates_tools_both_ways(live, client, seed,
                                                                     upstream):
    _, key = seed.team_with_model(upstream.url, name="gpt")
    upstream.reply(Reply(body={
        "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": None, "tool_calls": [{
                "id": "call_1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]}}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 9, "total_tokens": 39}}))
    answer = sdk(live, key).messages.create(
        model="gpt", max_tokens=200, system="Be brief.", tools=TOOLS,
        tool_choice={"type": "any"}, stop_sequences=["END"], metadata={"user_id": "u1"},
        messages=[
            {"role": "user", "content": [
                {"type": "text", "text": "Weather in Paris? See the map."},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                             "data": "iVBORw0KGgo="}}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "call_0",
                                               "name": "get_weather",
                                               "input": {"city": "Lyon"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_0",
                                          "content": "Rain"}]}])
    assert answer.stop_reason == "tool_use"
    assert answer.content[0].type == "tool_use"
    assert answer.content[0].name == "get_weather"
    assert answer.content[0].input == {"city": "Paris"}
    assert answer.usage.input_tokens == 30 and answer.usage.output_tokens == 9
    sent = upstream.received[-1]
    assert "/chat/completions" in sent.path
    assert sent.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [
            {"type": "text", "text": "Weather in Paris? See the map."},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]},
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_0", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\": \"Lyon\"}"}}]},
        {"role": "tool", "tool_call_id": "call_0", "content": "Rain"}]
    assert sent.body["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather of a city",
        "parameters": TOOLS[0]["input_schema"]}}]
    assert sent.body["tool_choice"] == "required"
    assert sent.body["stop"] == ["END"]
    assert sent.body["user"] == "u1"
    assert sent.body["max_tokens"] == 200


def test_a_chat_stream_becomes_anthropics_event_sequence(live, app, client, seed, upstream):
    team_id, key = seed.team_with_model(upstream.url, name="gpt")
    tool_start = chunk(None)
    tool_start["choices"][0]["delta"] = {"tool_calls": [{
        "index": 0, "id": "call_9", "type": "function",
        "function": {"name": "get_weather", "arguments": ""}}]}
    tool_args = chunk(None)
    tool_args["choices"][0]["delta"] = {"tool_calls": [{
        "index": 0, "function": {"arguments": "{\"city\":\"Oslo\"}"}}]}
    usage = {**chunk(None), "choices": [],
             "usage": {"prompt_tokens": 21, "completion_tokens": 7, "total_tokens": 28}}
    upstream.reply(Reply(chunks=[chunk("Let me "), chunk("check."), tool_start, tool_args,
                                 chunk(None, "tool_calls"), usage, b"[DONE]"]))
    with sdk(live, key).messages.stream(model="gpt", max_tokens=50, tools=TOOLS, messages=[
            {"role": "user", "content": "Weather in Oslo?"}]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    # the seed's deployment is Azure at api-version 2023-12-01-preview, which refuses it
    assert "stream_options" not in upstream.received[-1].body
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "content_block_start" in kinds and "content_block_stop" in kinds
    assert [b.type for b in final.content] == ["text", "tool_use"]
    assert final.content[0].text == "Let me check."
    assert final.content[1].input == {"city": "Oslo"}
    assert final.stop_reason == "tool_use"
    assert final.usage.output_tokens == 7
    rows = logged(app, client, team_id)
    assert (rows[0]["prompt_tokens"], rows[0]["completion_tokens"]) == (21, 7)


def test_a_chat_stream_failing_midway_ends_with_an_error_event(live, client, seed, upstream):
    _, key = seed.team_with_model(upstream.url, name="gpt")
    upstream.reply(Reply(chunks=[chunk("Hel"), chunk("lo"), chunk("!")], drop_after=2))
    response = requests.post(live.url + "/v1/messages", headers={"x-api-key": key}, json={
        "model": "gpt", "max_tokens": 20, "stream": True,
        "messages": [{"role": "user", "content": "Hi"}]})
    text = response.text
    assert text.startswith("event: message_start")
    assert "event: error" in text
    assert "message_stop" not in text
    error = json.loads(text.split("event: error\ndata: ")[1].split("\n")[0])
    assert error["type"] == "error" and error["error"]["type"] == "api_error"
