"""Anthropic deployments: OpenAI-shaped calls translated to the Messages API and back."""
import requests

from tests.conftest import bearer
from tests.fake_upstream import Reply


def register(client, seed, upstream):
    team_id = seed.team()
    key = seed.key(team_id)
    response = client.post("/model/new", headers=bearer(key), json={
        "model_name": "claude", "model_info": {"team_id": team_id},
        "litellm_params": {"model": "anthropic/claude-sonnet-4", "api_base": upstream.url,
                           "api_key": "sk-ant-team-provider-key-4242"}})
    assert response.status_code == 200
    return key


def test_chat_is_translated_to_messages_and_back(client, seed, upstream):
    key = register(client, seed, upstream)
    upstream.default.body = {
        "id": "msg_1", "type": "message", "model": "claude-sonnet-4", "role": "assistant",
        "content": [{"type": "text", "text": "Hello from Claude."}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 9, "output_tokens": 4}}
    response = client.post("/v1/chat/completions", headers=bearer(key), json={
        "model": "claude", "max_tokens": 50,
        "messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "Hi"}]})
    assert response.status_code == 200
    assert response.json["choices"][0]["message"]["content"] == "Hello from Claude."
    assert response.json["usage"] == {"prompt_tokens": 9, "completion_tokens": 4,
                                      "total_tokens": 13}
    sent = upstream.received[-1]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == "sk-ant-team-provider-key-4242"
    assert sent.headers["anthropic-version"]
    assert sent.body == {"model": "claude-sonnet-4", "max_tokens": 50, "system": "Be brief.",
                         "messages": [{"role": "user", "content": "Hi"}]}


def test_anthropic_stream_becomes_openai_chunks(live, client, seed, upstream):
    key = register(client, seed, upstream)
    upstream.reply(Reply(chunks=[
        {"type": "message_start", "message": {"id": "msg_1"}},
        {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Hel"}},
        {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "lo"}},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}},
        {"type": "message_stop"}]))
    response = requests.post(live.url + "/v1/chat/completions", headers=bearer(key), json={
        "model": "claude", "stream": True, "messages": [{"role": "user", "content": "Hi"}]})
    events = [e for e in response.text.split("\n\n") if e]
    assert '"role": "assistant"' in events[0]  # at message_start, before the first token
    assert '"Hel"' in events[1] and '"lo"' in events[2]
    assert '"finish_reason": "stop"' in events[3]
    assert events[-1] == "data: [DONE]"
