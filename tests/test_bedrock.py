"""Bedrock deployments: OpenAI chat and embeddings translated to Converse, ConverseStream and
InvokeModel and back, on recorded wire shapes, and end to end against a loopback Bedrock that
checks every SigV4 signature with botocore."""
import json
import logging
import struct
import time
import zlib
from pathlib import Path
from urllib.parse import quote

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.fake_bedrock import FakeBedrock, Reply, event, exception, frame, text_stream
from webapp.errors import APIError
from webapp.config import Defaults
from webapp.upstream import failures, masking, transport
from webapp.proxy.forwarding import new_client
from webapp.providers.bedrock import FIELDS, BedrockProvider, EventFrames
from webapp.providers.base import Target
from webapp.providers.openai_shape import StreamOutcome

FIXTURES = Path(__file__).parent / "fixtures" / "providers"
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "sk-provider-aws-secret-wJalrXUtnFEMI-K7MDENG"
SESSION_TOKEN = "sk-provider-aws-session-FwoGZXIvYXdzEJr"
CLAUDE = "anthropic.claude-3-5-sonnet-20240620-v1:0"
PROVIDER = BedrockProvider()
ALLOW = "127.0.0.1/32"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def target(model=CLAUDE, api_base=None, secret=SECRET_KEY, token=None, **params) -> Target:
    secrets = {"aws_secret_access_key": secret}
    if token:
        secrets["aws_session_token"] = token
    return Target(
        deployment_id="dep-1", public_name="claude", team_id="team-a", provider=PROVIDER,
        upstream_model=model, api_base=api_base, api_version=None, api_key=None,
        organization=None, timeout=None, stream_timeout=None, max_retries=None,
        params={"aws_access_key_id": ACCESS_KEY, "aws_region_name": "us-east-1", **params},
        secrets=secrets)


def without_volatile(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k not in ("id", "created")}


def sse_payloads(events: list[bytes]) -> list:
    out = []
    for item in events:
        assert item.startswith(b"data: ") and item.endswith(b"\n\n")
        text = item[6:-2]
        out.append(text.decode() if text == b"[DONE]" else json.loads(text))
    return out


def stream_frames(name="bedrock_converse_stream.json") -> list[bytes]:
    return [event(e["event"], e["payload"]) for e in fixture(name)["events"]]


def pieces(data: bytes, sizes: list[int]) -> list[bytes]:
    """`data` cut into chunks of the given sizes, cycled."""
    chunks, start, i = [], 0, 0
    while start < len(data):
        chunks.append(data[start:start + sizes[i % len(sizes)]])
        start, i = start + sizes[i % len(sizes)], i + 1
    return chunks


def translate(chunks: list[bytes], include_usage=False):
    outcome = StreamOutcome()
    events = list(PROVIDER.translate_stream(iter(chunks), CLAUDE, outcome, include_usage))
    return sse_payloads(events), outcome


# translation on recorded shapes, no server

def test_chat_body_becomes_the_converse_body():
    recorded = fixture("bedrock_converse_request.json")
    call = PROVIDER.prepare(target(), "chat", recorded["openai"])
    assert isinstance(call.body, bytes)
    assert json.loads(call.body) == recorded["converse"]
    assert call.url == ("https://bedrock-runtime.us-east-1.amazonaws.com/model/"
                        "anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse")


@pytest.mark.parametrize("choice, expected", [
    ("auto", {"auto": {}}), ("required", {"any": {}}),
    ({"type": "function", "function": {"name": "get_weather"}}, {"tool": {"name": "get_weather"}}),
])
def test_tool_choice_maps_to_converse(choice, expected):
    body = {**fixture("bedrock_converse_request.json")["openai"], "tool_choice": choice}
    sent = json.loads(PROVIDER.prepare(target(), "chat", body).body)
    assert sent["toolConfig"]["toolChoice"] == expected


def test_tool_choice_none_drops_the_tools_when_the_history_has_no_tool_calls():
    body = {"messages": [{"role": "user", "content": "hi"}], "tool_choice": "none",
            "tools": fixture("bedrock_converse_request.json")["openai"]["tools"]}
    assert "toolConfig" not in json.loads(PROVIDER.prepare(target(), "chat", body).body)


@pytest.mark.parametrize("url", ["https://example.com/cat.png", "data:text/html;base64,PGI+"])
def test_an_image_that_is_not_an_inline_picture_is_a_400_and_nothing_is_fetched(url):
    body = {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": url}}]}]}
    with pytest.raises(APIError) as refused:
        PROVIDER.prepare(target(), "chat", body)
    assert refused.value.status == 400
    assert "data: URL" in refused.value.message


def test_answer_with_text_and_tool_use_becomes_an_openai_message():
    recorded = fixture("bedrock_converse_answer.json")
    answer = PROVIDER.translate_response("chat", recorded["converse"], CLAUDE)
    assert without_volatile(answer) == recorded["openai"]
    assert answer["id"].startswith("chatcmpl-")


@pytest.mark.parametrize("reason, finish", [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"),
    ("tool_use", "tool_calls"), ("content_filtered", "content_filter")])
def test_stop_reasons_map_to_finish_reasons(reason, finish):
    answer = {"output": {"message": {"role": "assistant", "content": [{"text": "x"}]}},
              "stopReason": reason, "usage": {"inputTokens": 1, "outputTokens": 1}}
    assert PROVIDER.translate_response("chat", answer)["choices"][0]["finish_reason"] == finish


def test_stream_translation_does_not_depend_on_where_chunks_are_cut():
    recorded = fixture("bedrock_converse_stream.json")
    frames = stream_frames()
    data = b"".join(frames)
    # a cut at every byte of the first frames (inside preludes, headers, payloads and CRCs),
    # at every 7th byte after them, then chunks of odd sizes
    offsets = [*range(1, len(frames[0]) + len(frames[1])),
               *range(len(frames[0]) + len(frames[1]), len(data), 7)]
    cuts = [[data[:k], data[k:]] for k in offsets]
    for chunks in cuts + [pieces(data, sizes) for sizes in ([1], [3], [7], [5, 1, 13])]:
        events, outcome = translate(chunks)
        shapes = [{k: c["choices"][0][k] for k in ("delta", "finish_reason")}
                  for c in events[:-1]]
        assert shapes == recorded["openai"]
        assert events[-1] == "[DONE]"
        assert (outcome.prompt_tokens, outcome.completion_tokens) == (52, 31)
        assert len({c["id"] for c in events[:-1]}) == 1


def test_usage_chunk_is_sent_when_asked_for():
    events, _ = translate([b"".join(stream_frames())], include_usage=True)
    assert events[-2]["choices"] == []
    assert events[-2]["usage"] == fixture("bedrock_converse_stream.json")["usage"]


def test_an_exception_event_becomes_one_error_event_in_teamgates_format():
    data = b"".join(text_stream("Hel")[:2] + [exception("throttlingException", "Slow down")])
    events, outcome = translate(pieces(data, [9]))
    assert events[-1] == {"error": {
        "message": "The provider is rate limiting this deployment: throttlingException: "
                   "Slow down",
        "type": "rate_limit_error", "param": None, "code": "429"}}
    assert [e for e in events if e == "[DONE]"] == []
    assert outcome.error.status == 429


def test_a_model_stream_error_is_an_upstream_error_event():
    data = b"".join([event("messageStart", {"role": "assistant"}),
                     exception("modelStreamErrorException", "The model broke off")])
    events, _ = translate([data])
    assert events[-1]["error"]["type"] == "upstream_error"
    assert "modelStreamErrorException" in events[-1]["error"]["message"]


def test_a_frame_with_a_bad_crc_is_an_error_event_not_garbage():
    good = b"".join(text_stream("Hi"))
    corrupt = bytearray(good)
    corrupt[len(stream_frames()[0]) + 20] ^= 0x01  # inside the second frame's headers
    events, outcome = translate([bytes(corrupt)])
    assert events[-1]["error"]["message"] == "The upstream's event stream is corrupt."
    assert outcome.error.status == 502


@pytest.mark.parametrize("headers", [
    b"\x01a\x63", b"\x01a\x07\x00", b"\x02\xff\xfe\x07\x00\x00", b"\x05ab"])
def test_headers_that_botocore_cannot_read_are_an_error_event(headers):
    # unknown header type, value length cut short, name not UTF-8, name cut short; CRCs right
    prelude = struct.pack(">II", 16 + len(headers) + 2, len(headers))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers + b"{}"
    events, outcome = translate([message + struct.pack(">I", zlib.crc32(message))])
    assert events == [{"error": {"message": "The upstream's event stream is corrupt.",
                                 "type": "upstream_error", "param": None, "code": "502"}}]


def test_a_stream_that_ends_inside_a_frame_is_an_error_event():
    data = b"".join(text_stream("Hi"))
    events, _ = translate([data[:-5]])
    assert events[-1]["error"]["message"] == ("The upstream's stream ended before the answer "
                                              "was complete.")


def _feed_seconds(chunks: list[bytes]) -> tuple[float, int]:
    frames, started = EventFrames(), time.perf_counter()
    count = sum(1 for chunk in chunks for _ in frames.feed(chunk))
    return time.perf_counter() - started, count


def test_framing_cost_is_linear_in_the_bytes_however_they_are_chunked():
    # botocore's own buffer re-copies what it holds on every chunk and what is left after every
    # message: a chunk of many messages, or a message cut in many chunks, is quadratic there
    one = frame({":message-type": "event"}, b"x" * 1000)
    apart, count_apart = _feed_seconds([one] * 3000)
    together, count_together = _feed_seconds([one * 3000])
    big = frame({":message-type": "event"}, b"y" * 3_000_000)
    cut, count_cut = _feed_seconds([big[i:i + 1024] for i in range(0, len(big), 1024)])
    assert (count_apart, count_together, count_cut) == (3000, 3000, 1)
    assert together < apart * 4
    assert cut < apart * 4


@pytest.mark.canary_exempt  # botocore's own add_auth logs the token here, on purpose
def test_signing_never_logs_the_session_token(caplog):
    caplog.set_level(logging.DEBUG)
    # botocore's add_auth logs the canonical request, token included, at DEBUG ...
    request = AWSRequest(method="POST", url="https://bedrock-runtime.us-east-1.amazonaws.com/",
                         data=b"{}")
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY, SESSION_TOKEN), "bedrock",
              "us-east-1").add_auth(request)
    assert [r for r in caplog.records if SESSION_TOKEN in r.getMessage()]
    caplog.clear()
    # ... Teamgate signs through the same signer without that log
    call = PROVIDER.prepare(target(token=SESSION_TOKEN), "chat",
                            {"messages": [{"role": "user", "content": "hi"}]})
    assert call.headers["X-Amz-Security-Token"] == SESSION_TOKEN
    assert not [r for r in caplog.records if SESSION_TOKEN in r.getMessage()]


def test_urls_follow_the_region_and_the_endpoint_overrides():
    chat = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
    assert PROVIDER.prepare(target(), "chat", chat).url.endswith("%3A0/converse-stream")
    assert PROVIDER.upstream_url(target(aws_region_name="eu-west-3"), "chat") == (
        "https://bedrock-runtime.eu-west-3.amazonaws.com/model/"
        "anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse")
    vpc = target(aws_bedrock_runtime_endpoint="https://vpce-1.bedrock-runtime.aws/")
    assert PROVIDER.upstream_url(vpc, "chat").startswith("https://vpce-1.bedrock-runtime.aws/m")
    assert PROVIDER.upstream_url(target(api_base="https://proxy.example"), "chat") == (
        "https://proxy.example/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse")
    titan = target(model="amazon.titan-embed-text-v2:0")
    assert PROVIDER.upstream_url(titan, "embeddings").endswith(
        "/model/amazon.titan-embed-text-v2%3A0/invoke")
    assert SECRET_KEY not in PROVIDER.upstream_url(titan, "embeddings")


def test_a_region_that_is_not_a_region_cannot_steer_the_host():
    with pytest.raises(APIError) as refused:
        PROVIDER.upstream_url(target(aws_region_name="evil.example#"), "chat")
    assert refused.value.param == "litellm_params.aws_region_name"


def test_a_deployment_without_its_secret_is_a_400_naming_the_field():
    with pytest.raises(APIError) as refused:
        PROVIDER.prepare(target(secret=""), "chat",
                         {"messages": [{"role": "user", "content": "hi"}]})
    assert refused.value.param == "litellm_params.aws_secret_access_key"


def test_secret_fields_are_declared_secret():
    assert {f.name for f in FIELDS if f.secret} == {"aws_secret_access_key",
                                                    "aws_session_token"}


@pytest.mark.parametrize("family", ["titan", "cohere"])
def test_embedding_bodies_and_answers(family):
    recorded = fixture("bedrock_embeddings.json")[family]
    call = PROVIDER.prepare(target(model=recorded["model"]), "embeddings", recorded["openai"])
    assert json.loads(call.body) == recorded["request"]
    assert PROVIDER.translate_response("embeddings", recorded["response"],
                                       recorded["model"]) == recorded["result"]


def test_titan_takes_one_input_and_other_models_have_no_embeddings():
    with pytest.raises(APIError) as refused:
        PROVIDER.prepare(target(model="amazon.titan-embed-text-v2:0"), "embeddings",
                         {"input": ["a", "b"]})
    assert refused.value.param == "input"
    with pytest.raises(APIError) as refused:
        PROVIDER.prepare(target(), "embeddings", {"input": "a"})
    assert "Titan" in refused.value.message


# end to end: a loopback Bedrock that checks the signature, through Teamgate's transport

@pytest.fixture
def bedrock():
    server = FakeBedrock(ACCESS_KEY, SECRET_KEY)
    yield server
    server.close()


@pytest.fixture
def send():
    """POST a prepared call through Teamgate's transport, as forwarding does; every answer is
    closed (and with no pool, its connection) when the test ends."""
    client, answers = new_client({**vars(Defaults), "UPSTREAM_POOL_SIZE": 0}), []

    def post(call) -> transport.Answer:
        answers.append(client.post(call.url, call.headers, call.body, 2.0, 5.0, ALLOW))
        return answers[-1]
    yield post
    for answer in answers:
        answer.close()


CHAT = {"model": "claude", "max_tokens": 64,
        "messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "Weather in Paris?"}]}


def test_a_signed_converse_call_is_accepted_and_answered(bedrock, send):
    answer = send(PROVIDER.prepare(target(api_base=bedrock.url), "chat", CHAT))
    assert answer.status == 200
    received = bedrock.received[-1]
    assert received.path == "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
    assert received.json() == {"messages": [{"role": "user", "content": [
        {"text": "Weather in Paris?"}]}], "system": [{"text": "Be brief."}],
        "inferenceConfig": {"maxTokens": 64}}
    assert SECRET_KEY not in json.dumps(received.headers)
    result = PROVIDER.translate_response("chat", answer.json(), CLAUDE)
    assert result["choices"][0]["message"] == {"role": "assistant",
                                               "content": "Sunny, 22 degrees."}
    assert result["usage"]["total_tokens"] == 17


def test_a_wrong_secret_gets_403_like_aws_and_the_caller_a_401(bedrock, send):
    wrong = "sk-provider-aws-secret-not-the-right-one"
    deployment = target(api_base=bedrock.url, secret=wrong)
    answer = send(PROVIDER.prepare(deployment, "chat", CHAT))
    assert answer.status == 403
    assert answer.headers["x-amzn-errortype"] == "InvalidSignatureException"
    error = failures.from_status(answer, masking.Secret.of(deployment))
    assert (error.status, error.error_type) == (401, "authentication_error")
    assert "signature we calculated does not match" in error.message
    assert wrong not in error.message


def test_a_body_changed_after_signing_is_refused(bedrock, send):
    call = PROVIDER.prepare(target(api_base=bedrock.url), "chat", CHAT)
    call.body = call.body.replace(b"Paris", b"Tokyo")
    assert send(call).status == 403


def test_the_session_token_is_sent_and_signed(send):
    server = FakeBedrock(ACCESS_KEY, SECRET_KEY, region="eu-central-1",
                         session_token=SESSION_TOKEN)
    try:
        sts = target(api_base=server.url, token=SESSION_TOKEN, aws_region_name="eu-central-1")
        assert send(PROVIDER.prepare(sts, "chat", CHAT)).status == 200
        assert "x-amz-security-token" in server.received[-1].headers["authorization"]
        stale = target(api_base=server.url, token="sk-provider-aws-session-expired",
                       aws_region_name="eu-central-1")
        assert send(PROVIDER.prepare(stale, "chat", CHAT)).status == 403
        other_region = target(api_base=server.url, token=SESSION_TOKEN)
        assert send(PROVIDER.prepare(other_region, "chat", CHAT)).status == 403
    finally:
        server.close()


def test_converse_stream_arrives_in_small_pieces_and_becomes_openai_chunks(bedrock, send):
    bedrock.reply(Reply(frames=stream_frames(), piece_size=5))
    call = PROVIDER.prepare(target(api_base=bedrock.url), "chat", {**CHAT, "stream": True})
    answer = send(call)
    assert bedrock.received[-1].path.endswith("/converse-stream")
    assert bedrock.received[-1].headers["accept"] == "application/vnd.amazon.eventstream"
    outcome = StreamOutcome()
    events = sse_payloads(list(PROVIDER.translate_stream(answer.chunks(), CLAUDE, outcome)))
    deltas = [c["choices"][0]["delta"] for c in events[:-1]]
    assert "".join(d.get("content", "") for d in deltas) == "Checking Paris."
    arguments = "".join(d["tool_calls"][0]["function"]["arguments"]
                        for d in deltas if "tool_calls" in d)
    assert json.loads(arguments) == {"city": "Paris"}
    assert events[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert events[-1] == "[DONE]"
    assert (outcome.prompt_tokens, outcome.completion_tokens) == (52, 31)


def test_a_throttled_stream_over_the_wire_ends_with_one_error_event(bedrock, send):
    bedrock.reply(Reply(frames=text_stream("Hel")[:2] + [
        exception("throttlingException", "Too many requests, please wait")], piece_size=11))
    answer = send(PROVIDER.prepare(target(api_base=bedrock.url), "chat",
                                         {**CHAT, "stream": True}))
    events = sse_payloads(list(PROVIDER.translate_stream(answer.chunks(), CLAUDE)))
    assert events[1]["choices"][0]["delta"] == {"content": "Hel"}
    assert events[-1]["error"]["type"] == "rate_limit_error"
    assert len([e for e in events if "error" in e]) == 1


@pytest.mark.parametrize("family", ["titan", "cohere"])
def test_embeddings_over_the_wire(bedrock, send, family):
    recorded = fixture("bedrock_embeddings.json")[family]
    deployment = target(model=recorded["model"], api_base=bedrock.url)
    bedrock.reply(Reply(body=recorded["response"]))
    answer = send(PROVIDER.prepare(deployment, "embeddings", recorded["openai"]))
    assert answer.status == 200
    assert bedrock.received[-1].path == f"/model/{quote(recorded['model'], safe='')}/invoke"
    assert bedrock.received[-1].json() == recorded["request"]
    assert PROVIDER.translate_response("embeddings", answer.json(),
                                       recorded["model"]) == recorded["result"]
