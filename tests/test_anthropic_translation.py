"""The chat <-> Anthropic Messages translations on recorded wire fixtures, without a server:
chat bodies to Messages bodies, Messages answers and streams to chat completions and chunks."""
import json

import pytest

from tests.fake_anthropic import fixture, sse_events
from webapp.errors import APIError
from webapp.operations import messages_chat
from webapp.providers import anthropic_chat, openai_shape
from webapp.providers.anthropic import AnthropicProvider, compact
from webapp.upstream.transport.answer import LineSplitter


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def lines(chunks) -> list[bytes]:
    """The lines of a stream's chunks, as the upstream client gives them to the translation."""
    splitter = LineSplitter(1 << 20)
    found = [line for chunk in chunks for line in splitter.feed(chunk)]
    return found + ([splitter.end()] if splitter.end() is not None else [])


def translated(name: str, include_usage=False, size=None):
    """(chunks as dicts, the last raw event, the outcome) of a recorded stream translated, its
    bytes cut in pieces of `size` (whole events when None)."""
    data = b"".join(sse_events(name))
    chunks = sse_events(name) if size is None else pieces(data, size)
    outcome = openai_shape.StreamOutcome()
    out = list(AnthropicProvider().translate_stream(iter(lines(chunks)), "claude", outcome,
                                                    include_usage))
    parsed = [json.loads(e[6:]) for e in out[:-1]]
    return parsed, out[-1], outcome


def test_a_chat_body_becomes_the_messages_body_anthropic_takes():
    case = fixture("chat_request.json")
    assert anthropic_chat.request(case["chat"], "claude-sonnet-4-5") == case["anthropic"]


def test_a_tool_use_answer_becomes_a_chat_completion_with_parallel_tool_calls():
    case = fixture("tool_use_answer.json")
    answer = AnthropicProvider().translate_response("chat", case["anthropic"])
    assert answer.pop("id") == case["anthropic"]["id"]
    assert isinstance(answer.pop("created"), int)
    assert answer == case["chat"]


def test_json_schema_goes_as_a_forced_tool_and_comes_back_as_content():
    case = fixture("json_answer.json")
    assert anthropic_chat.request(case["chat"], "claude-haiku-4-5", 64000) == \
        case["anthropic_request"]
    answer = anthropic_chat.response(case["anthropic"])
    answer.pop("id"), answer.pop("created")
    assert answer == case["chat_answer"]
    assert json.loads(answer["choices"][0]["message"]["content"]) == {"name": "Ada", "age": 36}


@pytest.mark.parametrize("size", [None, 1, 7, 100])
def test_a_parallel_tool_stream_numbers_the_calls_and_carries_their_arguments(size):
    chunks, last, outcome = translated("parallel_tools.sse", size=size)
    assert last == b"data: [DONE]\n\n"
    assert {c["id"] for c in chunks} == {"msg_01Aq9w938a90dw8q"}
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0]["role"] == "assistant"
    assert "".join(d.get("content") or "" for d in deltas) == "I'll check both cities."
    calls = [call for d in deltas for call in d.get("tool_calls", ())]
    starts = [c for c in calls if "id" in c]
    assert [(c["index"], c["id"], c["function"]["name"]) for c in starts] == [
        (0, "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather"),
        (1, "toolu_01DKv8yGBUp3tsBx4BLRtLnm", "get_weather")]
    arguments = {0: "", 1: ""}
    for call in calls:
        arguments[call["index"]] += call["function"]["arguments"]
    assert {i: json.loads(a) for i, a in arguments.items()} == {0: {"city": "Paris"},
                                                               1: {"city": "Oslo"}}
    assert [c["choices"][0]["finish_reason"] for c in chunks][-1] == "tool_calls"
    assert all(c["choices"] for c in chunks)  # no usage chunk unless asked
    assert (outcome.prompt_tokens, outcome.completion_tokens) == (472 + 1200 + 3000, 89)
    assert (outcome.cached_tokens, outcome.cache_creation_tokens) == (3000, 1200)
    assert outcome.error is None


def test_the_usage_chunk_comes_last_and_only_when_asked():
    chunks, last, _ = translated("parallel_tools.sse", include_usage=True)
    assert last == b"data: [DONE]\n\n"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 4672, "completion_tokens": 89, "total_tokens": 4761,
        "prompt_tokens_details": {"cached_tokens": 3000},
        "cache_read_input_tokens": 3000, "cache_creation_input_tokens": 1200}
    assert all("usage" not in c for c in chunks[:-1])


def test_thinking_is_left_out_and_a_stop_sequence_is_stop():
    chunks, last, outcome = translated("thinking_text.sse", size=13)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == "Autumn moonlight—\na worm digs silently"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert last == b"data: [DONE]\n\n"
    assert outcome.completion_tokens == 14


def test_a_json_answer_stream_is_content():
    chunks, _, _ = translated("json_answer.sse")
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert all("tool_calls" not in d for d in deltas)
    assert json.loads("".join(d.get("content") or "" for d in deltas)) == {"name": "Ada",
                                                                         "age": 36}
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_an_overloaded_error_mid_stream_ends_with_an_error_event_not_done():
    chunks, last, outcome = translated("overloaded.sse", include_usage=True)
    assert [c["choices"][0]["delta"].get("content") for c in chunks] == ["", "Once upon"]
    error = json.loads(last[6:])["error"]
    assert "overloaded_error" in error["message"] and "Overloaded" in error["message"]
    assert error["type"] == "upstream_error" and error["code"] == "502"
    assert outcome.error is not None and outcome.error.status == 502
    assert outcome.prompt_tokens == 25


def test_a_stream_cut_before_message_stop_is_an_error():
    events = sse_events("parallel_tools.sse")[:-2]
    outcome = openai_shape.StreamOutcome()
    out = list(AnthropicProvider().translate_stream(iter(lines(events)), "claude", outcome))
    assert b"[DONE]" not in out[-1]
    assert "ended before" in json.loads(out[-1][6:])["error"]["message"]


@pytest.mark.parametrize("body, param", [
    ({"n": 2}, "n"),
    ({"logprobs": True}, "logprobs"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"response_format": {"type": "json_schema", "json_schema": {"schema": {}}},
      "tools": [{"type": "function", "function": {"name": "f"}}]}, "response_format"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "messages"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {
        "url": "ftp://example.com/a.png"}}]}]}, "messages"),
])
def test_what_cannot_be_translated_is_refused_naming_the_field(body, param):
    body = {"messages": [{"role": "user", "content": "x"}], **body}
    with pytest.raises(APIError) as refused:
        anthropic_chat.request(body, "claude-sonnet-4-5")
    assert refused.value.status == 400 and refused.value.param == param
    assert "{" not in refused.value.message.split(":")[0]  # a sentence, not a repr


@pytest.mark.parametrize("given, sent", [
    ({"max_tokens": 10}, 10), ({"max_completion_tokens": 20, "max_tokens": 10}, 20),
    ({}, 64000)])
def test_max_tokens_is_the_callers_else_the_models_output_limit(given, sent):
    body = {"messages": [{"role": "user", "content": "x"}], **given}
    assert anthropic_chat.request(body, "m", 64000)["max_tokens"] == sent
    assert anthropic_chat.request({"messages": body["messages"]}, "m")["max_tokens"] == \
        anthropic_chat.DEFAULT_MAX_TOKENS


@pytest.mark.parametrize("choice, sent", [
    ("none", {"type": "none"}), ("required", {"type": "any"}),
    ({"type": "function", "function": {"name": "get_weather"}},
     {"type": "tool", "name": "get_weather"})])
def test_tool_choice(choice, sent):
    body = {"messages": [{"role": "user", "content": "x"}], "tool_choice": choice,
            "tools": [{"type": "function", "function": {"name": "get_weather"}}]}
    assert anthropic_chat.request(body, "m")["tool_choice"] == sent


def test_a_system_string_stays_a_string():
    body = {"messages": [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": "Hi"}]}
    assert anthropic_chat.request(body, "m")["system"] == "Be brief."


def test_a_relayed_body_is_written_as_the_anthropic_sdks_write_it():
    body = {"model": "m", "messages": [{"role": "user", "content": "Grüße 🌍"}],
            "temperature": 0.7}
    assert compact(body) == json.dumps(body, ensure_ascii=False,
                                       separators=(",", ":")).encode()
    assert compact({"text": "\ud800"}) == b'{"text":"\\ud800"}'  # a lone surrogate stays JSON


def test_the_messages_api_translation_round_trips_through_this_one():
    """A chat stream turned into Anthropic's events by /v1/messages' translation for chat
    deployments, read back by this one: the same text, tool call and stop reason."""
    chunks, _, _ = translated("parallel_tools.sse", include_usage=True)
    blocks = [openai_shape.event(c) for c in chunks] + [openai_shape.DONE]
    anthropic_events = b"".join(messages_chat.MessageStream("claude").events(iter(blocks)))
    outcome = openai_shape.StreamOutcome()
    out = list(AnthropicProvider().translate_stream(iter(lines([anthropic_events])), "claude",
                                                    outcome, True))
    assert out[-1] == b"data: [DONE]\n\n"
    again = [json.loads(e[6:]) for e in out[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in again if c["choices"])
    assert text == "I'll check both cities."
    names = [call["function"]["name"] for c in again if c["choices"]
             for call in c["choices"][0]["delta"].get("tool_calls", ()) if "id" in call]
    assert names == ["get_weather", "get_weather"]
    assert again[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert again[-1]["usage"]["completion_tokens"] == 89
