"""What Claude Code does through Teamgate (README, "Claude Code"): the official anthropic client
sends a request shaped like Claude Code's (tools, cache_control, thinking, anthropic-beta) to
/v1/messages, and the Anthropic deployment receives the very bytes the client sent, `model`
aside, with the team's provider key."""
import json

import anthropic
import httpx2
import pytest

from tests.conftest import bearer
from tests.fake_anthropic import FakeAnthropic, recorded

PROVIDER_KEY = "sk-ant-team-provider-key-4242"
BETAS = ("claude-code-20250219,interleaved-thinking-2025-05-14,"
         "fine-grained-tool-streaming-2025-05-14")
SYSTEM = [{"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
          {"type": "text", "text": "Répondez brièvement. 🚀",
           "cache_control": {"type": "ephemeral"}}]
TOOLS = [
    {"name": "Read", "description": "Reads a file from the local filesystem.",
     "input_schema": {"type": "object", "properties": {
         "file_path": {"type": "string", "description": "The absolute path to the file"},
         "limit": {"type": "number"}}, "required": ["file_path"],
         "additionalProperties": False, "$schema": "http://json-schema.org/draft-07/schema#"}},
    {"name": "Bash", "description": "Executes a bash command.",
     "input_schema": {"type": "object", "properties": {"command": {"type": "string"}},
                      "required": ["command"]},
     "cache_control": {"type": "ephemeral"}},
]
MESSAGES = [
    {"role": "user", "content": [
        {"type": "text", "text": "<system-reminder>Context: /src</system-reminder>"},
        {"type": "text", "text": "What does a.py do?", "cache_control": {"type": "ephemeral"}}]},
    {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "Read it first.", "signature": "EqQBCgIYAhIM"},
        {"type": "tool_use", "id": "toolu_01Read", "name": "Read",
         "input": {"file_path": "/src/a.py"}}]},
    {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_01Read",
         "content": "print('héllo')\n", "cache_control": {"type": "ephemeral"}}]},
]


@pytest.fixture
def claude_api():
    server = FakeAnthropic()
    yield server
    server.close()


def test_a_claude_code_request_reaches_anthropic_byte_for_byte(live, client, seed, claude_api):
    team_id = seed.team()
    key = seed.key(team_id)
    assert client.post("/model/new", headers=bearer(key), json={
        "model_name": "claude-team", "model_info": {"team_id": team_id},
        "litellm_params": {"model": "anthropic/claude-sonnet-4-5", "api_base": claude_api.url,
                           "api_key": PROVIDER_KEY}}).status_code == 200
    claude_api.reply(recorded("thinking_text.sse"))
    sent = []
    http = httpx2.Client(event_hooks={"request": [lambda request: sent.append(request)]})
    claude = anthropic.Anthropic(base_url=live.url, auth_token=key, max_retries=0,
                                 http_client=http)
    with claude.messages.stream(
            model="claude-team", max_tokens=32000, system=SYSTEM, tools=TOOLS,
            messages=MESSAGES, thinking={"type": "enabled", "budget_tokens": 10000},
            metadata={"user_id": "user_2f1e_account__session_9c0d"},
            extra_headers={"anthropic-beta": BETAS}) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Autumn moonlight—\na worm digs silently"
    assert [block.type for block in final.content] == ["thinking", "text"]

    received = claude_api.received[-1]
    original = sent[-1].content
    assert b'"model":"claude-team"' in original and "🚀".encode() in original
    assert received.raw == original.replace(b'"model":"claude-team"',
                                            b'"model":"claude-sonnet-4-5"')
    assert received.path == "/v1/messages"
    assert received.headers["anthropic-beta"] == BETAS
    assert received.headers["anthropic-version"] == sent[-1].headers["anthropic-version"]
    assert received.headers["x-api-key"] == PROVIDER_KEY
    assert key not in json.dumps(received.headers)
    assert "Authorization" not in received.headers
