"""OpenAI's Responses API through Teamgate, with the official openai client as the caller (what
the Codex CLI uses): relayed to OpenAI and Azure deployments, translated to chat completions for
chat-only deployments, previous_response_id and /v1/responses/{id} on the deployment (or the
conversation Teamgate keeps) that made the response, for the team that made it only."""
import json
import shutil
import time

import openai
import pytest
import redis
import requests

from tests.conftest import ADMIN, LiveServer, Seed, bearer
from tests.fake_upstream import Reply, chunk
from tests.test_limits_redis import RedisServer
from tests.test_messages import logged
from tests.test_served import MASTER as SERVED_MASTER
from tests.test_served import served

PROVIDER_KEY = "sk-provider-responses-team-9876"


def register(client, seed, upstream, name="codex", model="openai/gpt-5", team_id=None,
             key=None, **params):
    team_id = team_id or seed.team()
    key = key or seed.key(team_id)
    response = client.post("/model/new", headers=bearer(key), json={
        "model_name": name, "model_info": {"team_id": team_id},
        "litellm_params": {"model": model, "api_base": upstream.url, "api_key": PROVIDER_KEY,
                           **params}})
    assert response.status_code == 200, response.json
    return team_id, key


OPENED: list[openai.OpenAI] = []  # closed after each test, not by the garbage collector


@pytest.fixture(autouse=True)
def close_clients():
    yield
    while OPENED:
        OPENED.pop().close()


def sdk(live, key) -> openai.OpenAI:
    OPENED.append(openai.OpenAI(base_url=live.url + "/v1", api_key=key, max_retries=0))
    return OPENED[-1]


def upstream_response(response_id="resp_upstream_1", text="Hello from OpenAI.") -> dict:
    return {"id": response_id, "object": "response", "created_at": 1700000000,
            "status": "completed", "model": "gpt-5", "error": None, "incomplete_details": None,
            "instructions": None, "metadata": {}, "parallel_tool_calls": True,
            "temperature": None, "top_p": None, "tool_choice": "auto", "tools": [],
            "output": [{"type": "message", "id": "msg_1", "status": "completed",
                        "role": "assistant", "content": [
                            {"type": "output_text", "text": text, "annotations": []}]}],
            "usage": {"input_tokens": 11, "output_tokens": 4, "total_tokens": 15,
                      "input_tokens_details": {"cached_tokens": 3},
                      "output_tokens_details": {"reasoning_tokens": 0}}}


def sse(kind: str, payload: dict, sequence: int) -> bytes:
    data = json.dumps({"type": kind, "sequence_number": sequence, **payload},
                      separators=(",", ":"))
    return f"event: {kind}\ndata: {data}\n\n".encode()


def upstream_stream(response_id="resp_stream_1") -> list[bytes]:
    final = upstream_response(response_id, "Hi there")
    started = {**final, "status": "in_progress", "output": [], "usage": None}
    item = final["output"][0]
    return [
        sse("response.created", {"response": started}, 0),
        sse("response.in_progress", {"response": started}, 1),
        sse("response.output_item.added", {"output_index": 0, "item": {
            **item, "status": "in_progress", "content": []}}, 2),
        sse("response.content_part.added", {"item_id": "msg_1", "output_index": 0,
                                            "content_index": 0, "part": {
                                                "type": "output_text", "text": "",
                                                "annotations": []}}, 3),
        sse("response.output_text.delta", {"item_id": "msg_1", "output_index": 0,
                                           "content_index": 0, "delta": "Hi ",
                                           "logprobs": []}, 4),
        sse("response.output_text.delta", {"item_id": "msg_1", "output_index": 0,
                                           "content_index": 0, "delta": "there",
                                           "logprobs": []}, 5),
        sse("response.output_text.done", {"item_id": "msg_1", "output_index": 0,
                                          "content_index": 0, "text": "Hi there",
                                          "logprobs": []}, 6),
        sse("response.output_item.done", {"output_index": 0, "item": item}, 7),
        sse("response.completed", {"response": final}, 8),
    ]


# relayed: OpenAI and Azure -----------------------------------------------------------------

def test_a_response_is_relayed_to_openai_with_only_the_model_replaced(live, client, seed,
                                                                      upstream, app):
    team_id, key = register(client, seed, upstream)
    upstream.reply(Reply(body=upstream_response()))
    answer = sdk(live, key).responses.create(
        model="codex", instructions="Be brief.", input=[
            {"role": "user", "content": [{"type": "input_text", "text": "Say hello"}]}],
        reasoning={"effort": "low"}, store=True)
    assert answer.output_text == "Hello from OpenAI."
    assert answer.id == "resp_upstream_1"
    sent = upstream.received[-1]
    assert sent.path == "/responses"
    assert sent.headers["Authorization"] == f"Bearer {PROVIDER_KEY}"
    assert sent.body == {"model": "gpt-5", "instructions": "Be brief.", "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "Say hello"}]}],
        "reasoning": {"effort": "low"}, "store": True}
    rows = logged(app, client, team_id)
    assert rows[0]["call_type"] == "aresponses"
    assert (rows[0]["prompt_tokens"], rows[0]["completion_tokens"]) == (11, 4)


def test_a_streamed_response_is_relayed_as_it_arrives_and_can_be_retrieved_and_deleted(
        live, client, seed, upstream, app):
    team_id, key = register(client, seed, upstream)
    events = upstream_stream()
    upstream.reply(Reply(chunks=events, raw_events=True))
    openai_client = sdk(live, key)
    with openai_client.responses.with_streaming_response.create(
            model="codex", input="hi", stream=True) as raw:
        streamed = b"".join(raw.iter_bytes())
    assert streamed == b"".join(events)  # byte for byte, nothing added
    rows = logged(app, client, team_id)
    assert (rows[0]["prompt_tokens"], rows[0]["completion_tokens"]) == (11, 4)

    upstream.reply(Reply(body=upstream_response("resp_stream_1", "Hi there")),
                   Reply(body={"object": "list", "data": [
                       {"id": "msg_in", "type": "message", "role": "user",
                        "content": [{"type": "input_text", "text": "hi"}]}],
                       "first_id": "msg_in", "last_id": "msg_in", "has_more": False}),
                   Reply(body=upstream_response("resp_stream_1") | {"status": "cancelled"}),
                   Reply(body={"id": "resp_stream_1", "object": "response.deleted",
                               "deleted": True}))
    assert openai_client.responses.retrieve("resp_stream_1").output_text == "Hi there"
    assert [i.id for i in openai_client.responses.input_items.list("resp_stream_1")] == [
        "msg_in"]
    assert openai_client.responses.cancel("resp_stream_1").status == "cancelled"
    openai_client.responses.delete("resp_stream_1")
    assert [(r.method, r.path) for r in upstream.received[-4:]] == [
        ("GET", "/responses/resp_stream_1"), ("GET", "/responses/resp_stream_1/input_items"),
        ("POST", "/responses/resp_stream_1/cancel"), ("DELETE", "/responses/resp_stream_1")]
    assert all(r.headers["Authorization"] == f"Bearer {PROVIDER_KEY}"
               for r in upstream.received[-4:])
    with pytest.raises(openai.NotFoundError):  # deleted: Teamgate forgets it too
        openai_client.responses.retrieve("resp_stream_1")
    assert len(upstream.received) == 5


def test_azure_deployments_serve_responses_on_the_resource(live, client, seed, upstream):
    _, key = register(client, seed, upstream, model="azure/my-gpt5-deployment",
                      api_version="2024-10-21")
    upstream.reply(Reply(body=upstream_response()), Reply(body=upstream_response()))
    openai_client = sdk(live, key)
    openai_client.responses.create(model="codex", input="hi")
    openai_client.responses.retrieve("resp_upstream_1")
    posted, fetched = upstream.received[-2:]
    assert posted.path == "/openai/responses?api-version=2025-03-01-preview"
    assert posted.headers["api-key"] == PROVIDER_KEY
    assert posted.body == {"model": "my-gpt5-deployment", "input": "hi"}
    assert fetched.path == "/openai/responses/resp_upstream_1?api-version=2025-03-01-preview"


def test_azure_openai_clients_responses_calls_reach_the_team_model(live, client, seed, upstream,
                                                                   app):
    """AzureOpenAI(azure_endpoint=Teamgate) calls /openai/responses?api-version=... with the
    key in api-key and the model in the body: the same operation as /v1/responses."""
    team_id, key = register(client, seed, upstream, model="azure/my-gpt5-deployment",
                            api_version="2025-03-01-preview")
    azure = openai.AzureOpenAI(azure_endpoint=live.url, api_key=key,
                               api_version="2024-12-01-preview", max_retries=0)
    OPENED.append(azure)
    upstream.reply(Reply(body=upstream_response("resp_azure_1")),
                   Reply(chunks=upstream_stream("resp_azure_2"), raw_events=True),
                   Reply(body=upstream_response("resp_azure_3", "Again.")),
                   Reply(body=upstream_response("resp_azure_3", "Again.")),
                   Reply(body={"object": "list", "data": [], "first_id": None,
                               "last_id": None, "has_more": False}),
                   Reply(body={"id": "resp_azure_3", "object": "response.deleted",
                               "deleted": True}))
    assert azure.responses.create(model="codex", input="hi").output_text == (
        "Hello from OpenAI.")
    streamed = azure.responses.create(model="codex", input="hi", stream=True)
    assert [e for e in streamed if e.type == "response.completed"][0].response.output_text == (
        "Hi there")
    follow_up = azure.responses.create(model="codex", input="more",
                                       previous_response_id="resp_azure_2")
    assert follow_up.output_text == "Again."
    assert azure.responses.retrieve("resp_azure_3").id == "resp_azure_3"
    assert list(azure.responses.input_items.list("resp_azure_3", limit=5)) == []
    azure.responses.delete("resp_azure_3")
    with pytest.raises(openai.NotFoundError):
        azure.responses.retrieve("resp_azure_3")
    sent = upstream.received
    assert [(r.method, r.path) for r in sent] == [
        ("POST", "/openai/responses?api-version=2025-03-01-preview")] * 3 + [
        ("GET", "/openai/responses/resp_azure_3?api-version=2025-03-01-preview"),
        ("GET", "/openai/responses/resp_azure_3/input_items?api-version=2025-03-01-preview"
                "&limit=5"),
        ("DELETE", "/openai/responses/resp_azure_3?api-version=2025-03-01-preview")]
    assert all(r.headers["api-key"] == PROVIDER_KEY for r in sent)
    assert sent[2].body == {"model": "my-gpt5-deployment", "input": "more",
                            "previous_response_id": "resp_azure_2"}
    rows = logged(app, client, team_id)
    assert sorted((r["call_type"], r["model_group"]) for r in rows) == [
        ("aresponses", "codex")] * 3


def test_previous_response_id_goes_to_the_deployment_that_made_it(live, client, seed, upstream,
                                                                   upstream_b):
    team_id, key = register(client, seed, upstream)
    register(client, seed, upstream_b, team_id=team_id, key=key)  # balanced with the first
    for server in (upstream, upstream_b):
        server.default = Reply(body=upstream_response(f"resp_{server.name}"))
    openai_client = sdk(live, key)
    first = openai_client.responses.create(model="codex", input="one")
    maker = upstream if first.id == "resp_a" else upstream_b
    for _ in range(3):
        openai_client.responses.create(model="codex", input="again",
                                       previous_response_id=first.id)
    assert [r.body.get("previous_response_id") for r in maker.received] == [
        None, first.id, first.id, first.id]


def test_another_teams_response_id_looks_missing(live, client, seed, upstream):
    _, key_a = register(client, seed, upstream)
    _, key_b = register(client, seed, upstream)
    upstream.reply(Reply(body=upstream_response("resp_of_team_a")))
    sdk(live, key_a).responses.create(model="codex", input="secret plans")
    seen = len(upstream.received)
    intruder = sdk(live, key_b)
    for attempt in (lambda: intruder.responses.retrieve("resp_of_team_a"),
                    lambda: intruder.responses.delete("resp_of_team_a"),
                    lambda: intruder.responses.cancel("resp_of_team_a"),
                    lambda: intruder.responses.input_items.list("resp_of_team_a"),
                    lambda: intruder.responses.create(model="codex", input="x",
                                                      previous_response_id="resp_of_team_a")):
        with pytest.raises(openai.NotFoundError) as caught:
            attempt()
        assert caught.value.body["message"] == "Response with id 'resp_of_team_a' not found."
    assert len(upstream.received) == seen  # nothing of team A's was asked for
    missing = client.get("/v1/responses/resp_never_made", headers=bearer(key_b))
    assert missing.status_code == 404
    assert missing.json == {"error": {"message": "Response with id 'resp_never_made' not "
                                                 "found.", "type": "not_found_error",
                                      "param": None, "code": "404"}}


# kept off the call path: remembered at once, written in batches -------------------------

def test_a_follow_up_through_another_instance_at_once_reaches_the_deployment_that_made_it(
        live, client, seed, upstream, upstream_b, make_app):
    """The instance that answered remembers the response and writes its row a batch later;
    another instance on the same database, asked at once, still finds which deployment made
    it."""
    team_id, key = register(client, seed, upstream)
    register(client, seed, upstream_b, team_id=team_id, key=key)  # balanced with the first
    other = LiveServer(make_app())
    try:
        for turn in range(4):
            for server in (upstream, upstream_b):
                server.default = Reply(body=upstream_response(f"resp_{server.name}_{turn}"))
            first = sdk(live, key).responses.create(model="codex", input="one")
            maker = upstream if first.id.startswith("resp_a") else upstream_b
            sdk(other, key).responses.create(model="codex", input="two",
                                             previous_response_id=first.id)
            assert maker.received[-1].body.get("previous_response_id") == first.id
    finally:
        other.stop()


def test_gunicorn_workers_continue_each_others_responses_at_once(tmp_path, database_url, app,
                                                                 upstream, upstream_b):
    """Served as `make run` serves it (gevent workers, the writer's batches in native threads):
    each follow-up, on a new connection that either worker may take, reaches the deployment
    that made the response asked for the moment before."""
    with served(tmp_path, database_url, workers=2) as (base, _):
        admin = bearer(SERVED_MASTER)
        team = requests.post(base + "/team/new", json={"team_alias": "served"},
                             headers=admin).json()["team_id"]
        key = requests.post(base + "/key/generate", json={"team_id": team},
                            headers=admin).json()["key"]
        for server in (upstream, upstream_b):
            assert requests.post(base + "/model/new", headers=bearer(key), json={
                "model_name": "codex", "model_info": {"team_id": team},
                "litellm_params": {"model": "openai/gpt-5", "api_base": server.url,
                                   "api_key": PROVIDER_KEY}}).status_code == 200
        for turn in range(12):
            for server in (upstream, upstream_b):
                server.default = Reply(body=upstream_response(f"resp_{server.name}_{turn}"))
            with requests.Session() as first_connection:
                first = first_connection.post(base + "/v1/responses", headers=bearer(key), json={
                    "model": "codex", "input": "one"}, timeout=10).json()["id"]
            with requests.Session() as second_connection:
                answer = second_connection.post(base + "/v1/responses", headers=bearer(key),
                                                json={"model": "codex", "input": "two",
                                                      "previous_response_id": first},
                                                timeout=10)
            assert answer.status_code == 200, answer.text
            maker = upstream if first.startswith("resp_a") else upstream_b
            assert maker.received[-1].body["previous_response_id"] == first


def test_a_response_kept_just_before_a_graceful_stop_is_written(live, client, seed, upstream,
                                                                 make_app):
    _, key = register(client, seed, upstream)
    upstream.default = Reply(body=upstream_response("resp_before_stop"))
    sdk(live, key).responses.create(model="codex", input="one")
    live.app.extensions["teamgate.responses"].stop()  # what a worker's exit does
    other = LiveServer(make_app())
    try:
        assert sdk(other, key).responses.retrieve("resp_before_stop").id == "resp_before_stop"
    finally:
        other.stop()
    assert upstream.received[-1].path == "/responses/resp_before_stop"


def test_a_response_deleted_at_once_stays_deleted_on_every_instance(live, client, seed,
                                                                     upstream, make_app):
    _, key = register(client, seed, upstream)
    upstream.default = Reply(body=upstream_response("resp_gone"))
    openai_client = sdk(live, key)
    openai_client.responses.create(model="codex", input="one")
    openai_client.responses.delete("resp_gone")  # before its row was written
    time.sleep(0.5)  # batches have gone since
    other = LiveServer(make_app())
    try:
        for caller in (openai_client, sdk(other, key)):
            with pytest.raises(openai.NotFoundError):
                caller.responses.retrieve("resp_gone")
    finally:
        other.stop()


def test_an_expired_response_is_found_by_no_instance(app, make_app, upstream):
    short, other_app = make_app(RESPONSES_TTL=1), make_app(RESPONSES_TTL=1)
    one, two = LiveServer(short), LiveServer(other_app)
    try:
        _, key = register(short.test_client(), Seed(short.test_client()), upstream)
        upstream.default = Reply(body=upstream_response("resp_short"))
        sdk(one, key).responses.create(model="codex", input="one")
        assert sdk(two, key).responses.retrieve("resp_short").id == "resp_short"
        time.sleep(1.2)
        for server in (one, two):
            with pytest.raises(openai.NotFoundError):
                sdk(server, key).responses.create(model="codex", input="two",
                                                  previous_response_id="resp_short")
        assert [r.body.get("previous_response_id") for r in upstream.received
                if r.method == "POST"] == [None]
    finally:
        one.stop()
        two.stop()


def test_limits_apply_as_on_chat(live, client, seed, upstream):
    team_id = seed.team()
    key = seed.key(team_id, rpm_limit=1)
    register(client, seed, upstream, team_id=team_id, key=key)
    upstream.default = Reply(body=upstream_response())
    openai_client = sdk(live, key)
    openai_client.responses.create(model="codex", input="one")
    with pytest.raises(openai.RateLimitError):
        openai_client.responses.create(model="codex", input="two")


def test_the_route_is_in_the_openapi_document(client):
    paths = client.get("/openapi.json").json["paths"]
    assert paths["/v1/responses"]["post"]["requestBody"]["content"]["application/json"][
        "schema"]["required"] == ["model", "input"]
    assert set(paths["/v1/responses/{response_id}"]) == {"get", "delete"}
    assert paths["/openai/responses"]["post"] == paths["/v1/responses"]["post"]
    assert set(paths["/openai/responses/{response_id}"]) == {"get", "delete"}


def test_an_unknown_model_is_refused_as_on_chat(live, client, seed, upstream):
    _, key = register(client, seed, upstream)
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(live, key).responses.create(model="not-a-model", input="hi")
    assert "Invalid model name passed in model=not-a-model" in caught.value.body["message"]
    assert client.post("/v1/responses", headers=ADMIN, json={"model": "codex"}).json[
        "error"]["param"] == "input"


# translated: chat-only deployments ----------------------------------------------------------

def chat_only(client, seed, upstream, **kwargs):
    return register(client, seed, upstream, name="llama", model="hosted_vllm/llama-3.3-70b",
                    **kwargs)


WEATHER_TOOL = {"type": "function", "name": "get_weather", "description": "Weather of a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                               "required": ["city"]}}
PIXEL = "data:image/png;base64,iVBORw0KGgo="


def tool_completion() -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000,
            "model": "llama-3.3-70b", "choices": [{"index": 0, "finish_reason": "tool_calls",
                                                   "message": {
                "role": "assistant", "content": "Let me look.", "tool_calls": [
                    {"id": "call_9", "type": "function", "function": {
                        "name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}]}}],
            "usage": {"prompt_tokens": 30, "completion_tokens": 9, "total_tokens": 39}}


def test_a_chat_only_deployment_gets_the_call_as_chat_completions(live, client, seed, upstream,
                                                                  app):
    team_id, key = chat_only(client, seed, upstream)
    upstream.reply(Reply(body=tool_completion()))
    answer = sdk(live, key).responses.create(
        model="llama", instructions="You forecast.", max_output_tokens=200, temperature=0.2,
        tools=[WEATHER_TOOL], tool_choice="auto",
        text={"format": {"type": "json_schema", "name": "forecast", "strict": True,
                         "schema": {"type": "object", "properties": {}}}},
        input=[{"role": "user", "content": [{"type": "input_text", "text": "Weather?"},
                                            {"type": "input_image", "image_url": PIXEL}]},
               {"type": "function_call", "call_id": "call_1", "name": "get_weather",
                "arguments": "{\"city\": \"Paris\"}"},
               {"type": "function_call_output", "call_id": "call_1", "output": "18 C"}])
    sent = upstream.received[-1]
    assert sent.path == "/chat/completions"
    assert sent.body == {
        "model": "llama-3.3-70b", "max_tokens": 200, "temperature": 0.2, "tool_choice": "auto",
        "messages": [
            {"role": "system", "content": "You forecast."},
            {"role": "user", "content": [{"type": "text", "text": "Weather?"},
                                         {"type": "image_url", "image_url": {"url": PIXEL}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {
                    "name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18 C"}],
        "tools": [{"type": "function", "function": {
            "name": "get_weather", "description": "Weather of a city",
            "parameters": WEATHER_TOOL["parameters"]}}],
        "response_format": {"type": "json_schema", "json_schema": {
            "name": "forecast", "strict": True, "schema": {"type": "object",
                                                           "properties": {}}}}}
    assert answer.id.startswith("resp_") and answer.status == "completed"
    assert answer.output_text == "Let me look."
    call = answer.output[1]
    assert (call.type, call.call_id, call.name, call.arguments) == (
        "function_call", "call_9", "get_weather", "{\"city\": \"Oslo\"}")
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (30, 9)
    assert answer.instructions == "You forecast."
    rows = logged(app, client, team_id)
    assert (rows[0]["prompt_tokens"], rows[0]["completion_tokens"]) == (30, 9)
    # Teamgate kept it: retrievable, and its input listed
    assert sdk(live, key).responses.retrieve(answer.id).output_text == "Let me look."
    items = sdk(live, key).responses.input_items.list(answer.id, order="asc")
    assert [item.type for item in items] == ["message", "function_call",
                                             "function_call_output"]


def chat_stream() -> list[dict]:
    calls = [{"index": 0, "id": "call_7", "type": "function",
              "function": {"name": "get_weather", "arguments": ""}}]
    return [chunk("It is "), chunk("sunny."),
            {**chunk(None), "choices": [{"index": 0, "delta": {"tool_calls": calls},
                                         "finish_reason": None}]},
            {**chunk(None), "choices": [{"index": 0, "delta": {"tool_calls": [
                {"index": 0, "function": {"arguments": "{\"city\": \"Oslo\"}"}}]},
                "finish_reason": None}]},
            chunk(None, "tool_calls"),
            {**chunk(None), "choices": [], "usage": {"prompt_tokens": 21,
                                                      "completion_tokens": 7}},
            b"[DONE]"]


def test_a_chat_stream_becomes_the_responses_event_sequence(live, client, seed, upstream, app):
    team_id, key = chat_only(client, seed, upstream)
    upstream.reply(Reply(chunks=chat_stream()))
    with sdk(live, key).responses.stream(model="llama", input="Weather in Oslo?",
                                         tools=[WEATHER_TOOL]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert upstream.received[-1].body["stream_options"] == {"include_usage": True}
    assert [e.type for e in events] == [
        "response.created", "response.in_progress", "response.output_item.added",
        "response.content_part.added", "response.output_text.delta",
        "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.output_text == "It is sunny."
    assert final.output[1].arguments == "{\"city\": \"Oslo\"}"
    assert final.output[1].call_id == "call_7"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (21, 7)
    rows = logged(app, client, team_id)
    assert (rows[0]["prompt_tokens"], rows[0]["completion_tokens"]) == (21, 7)


def test_teamgate_keeps_the_conversation_of_a_chat_only_deployment(live, client, seed,
                                                                   upstream, make_app):
    _, key = chat_only(client, seed, upstream)
    upstream.reply(Reply(chunks=chat_stream()),
                   Reply(body={**tool_completion(), "choices": [{
                       "index": 0, "finish_reason": "stop",
                       "message": {"role": "assistant", "content": "Sunny in Oslo."}}]}))
    openai_client = sdk(live, key)
    stream = openai_client.responses.create(model="llama", input="Weather in Oslo?",
                                            tools=[WEATHER_TOOL], stream=True)
    first = [e for e in stream if e.type == "response.completed"][0].response
    # another instance on the same database continues the conversation
    other = LiveServer(make_app())
    try:
        second = sdk(other, key).responses.create(
            model="llama", previous_response_id=first.id, tools=[WEATHER_TOOL],
            input=[{"type": "function_call_output", "call_id": "call_7", "output": "25 C"}])
    finally:
        other.stop()
    assert second.output_text == "Sunny in Oslo."
    assert second.previous_response_id == first.id
    assert upstream.received[-1].body["messages"] == [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": "It is sunny.", "tool_calls": [
            {"id": "call_7", "type": "function", "function": {
                "name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}]},
        {"role": "tool", "tool_call_id": "call_7", "content": "25 C"}]
    assert openai_client.responses.retrieve(second.id).output_text == "Sunny in Oslo."
    openai_client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        openai_client.responses.create(model="llama", input="more",
                                       previous_response_id=first.id)


def test_a_failure_mid_stream_is_a_response_failed_event(live, client, seed, upstream):
    _, key = chat_only(client, seed, upstream)
    upstream.reply(Reply(chunks=[chunk("It is ")] * 3, drop_after=1))
    events = list(sdk(live, key).responses.create(model="llama", input="hi", stream=True))
    assert [e.type for e in events][-2:] == ["error", "response.failed"]
    assert events[-1].response.status == "failed"
    assert "broke" in events[-1].response.error.message


def test_hosted_tools_are_refused_for_a_chat_only_deployment(live, client, seed, upstream):
    _, key = chat_only(client, seed, upstream)
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(live, key).responses.create(model="llama", input="hi",
                                        tools=[{"type": "web_search"}])
    assert caught.value.body["param"] == "tools"
    assert upstream.received == []


def test_an_anthropic_deployment_answers_through_the_translation_chain(live, client, seed,
                                                                       upstream):
    _, key = register(client, seed, upstream, name="claude",
                      model="anthropic/claude-sonnet-4-5")
    upstream.reply(Reply(body={"id": "msg_2", "type": "message", "role": "assistant",
                               "model": "claude-sonnet-4-5", "stop_reason": "end_turn",
                               "content": [{"type": "text", "text": "Bonjour."}],
                               "usage": {"input_tokens": 8, "output_tokens": 3}}))
    answer = sdk(live, key).responses.create(model="claude", instructions="Speak French.",
                                             input="Hello")
    sent = upstream.received[-1]
    assert sent.path == "/v1/messages"
    assert sent.body["system"] == "Speak French."
    assert sent.body["messages"] == [{"role": "user", "content": "Hello"}]
    assert sent.headers["x-api-key"] == PROVIDER_KEY
    assert answer.output_text == "Bonjour."
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (8, 3)


# the store's bounds and its Redis form ------------------------------------------------------

def continue_llama(live, key, upstream) -> openai.OpenAI:
    """A first translated response and a client to continue it with."""
    upstream.default = Reply(body=tool_completion())
    openai_client = sdk(live, key)
    return openai_client, openai_client.responses.create(model="llama", input="x" * 2000)


def test_a_kept_conversation_expires(app, make_app, upstream):  # app: the tables emptied
    short = make_app(RESPONSES_TTL=1)
    live = LiveServer(short)
    try:
        _, key = chat_only(short.test_client(), Seed(short.test_client()), upstream)
        openai_client, first = continue_llama(live, key, upstream)
        openai_client.responses.create(model="llama", input="on", previous_response_id=first.id)
        time.sleep(1.2)
        with pytest.raises(openai.NotFoundError):
            openai_client.responses.create(model="llama", input="on",
                                           previous_response_id=first.id)
    finally:
        live.stop()


def test_a_conversation_over_the_size_cap_is_not_kept(app, make_app, upstream):
    small = make_app(RESPONSES_MAX_BYTES=1000)
    live = LiveServer(small)
    try:
        _, key = chat_only(small.test_client(), Seed(small.test_client()), upstream)
        openai_client, first = continue_llama(live, key, upstream)
        with pytest.raises(openai.BadRequestError) as caught:
            openai_client.responses.create(model="llama", input="on",
                                           previous_response_id=first.id)
        assert "too large" in caught.value.body["message"]
    finally:
        live.stop()


@pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server is not installed")
def test_with_redis_url_the_store_is_redis_and_instances_share_it(app, make_app, upstream,
                                                                 tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    try:
        first_app, second_app = (make_app(REDIS_URL=server.url) for _ in range(2))
        one, two = LiveServer(first_app), LiveServer(second_app)
        try:
            _, key = chat_only(first_app.test_client(), Seed(first_app.test_client()),
                               upstream)
            _, first = continue_llama(one, key, upstream)
            assert sdk(two, key).responses.retrieve(first.id).id == first.id
            kept = redis.Redis.from_url(server.url).keys("teamgate:response:*")
            assert [k.decode().rsplit(":", 1)[-1] for k in kept] == [first.id]
        finally:
            one.stop()
            two.stop()
    finally:
        server.stop()


def test_a_relayed_stream_that_breaks_ends_with_an_error_event(live, client, seed, upstream):
    _, key = register(client, seed, upstream)
    upstream.reply(Reply(chunks=upstream_stream(), raw_events=True, drop_after=3))
    events = list(sdk(live, key).responses.create(model="codex", input="hi", stream=True))
    assert [e.type for e in events] == ["response.created", "response.in_progress",
                                        "response.output_item.added", "error"]
    assert "broke" in events[-1].message


def test_a_relayed_response_is_continued_only_with_the_model_that_made_it(live, client, seed,
                                                                           upstream):
    team_id, key = register(client, seed, upstream)
    register(client, seed, upstream, name="other", team_id=team_id, key=key)
    upstream.default = Reply(body=upstream_response("resp_of_codex"))
    openai_client = sdk(live, key)
    openai_client.responses.create(model="codex", input="one")
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.responses.create(model="other", input="two",
                                       previous_response_id="resp_of_codex")
    assert caught.value.body["param"] == "previous_response_id"
    assert len(upstream.received) == 1


def test_tpm_limit_reserves_the_text_of_input_items(live, client, seed, upstream):
    team_id = seed.team()
    key = seed.key(team_id, tpm_limit=200)
    register(client, seed, upstream, team_id=team_id, key=key)
    with pytest.raises(openai.RateLimitError):
        sdk(live, key).responses.create(model="codex", input=[
            {"role": "user", "content": [{"type": "input_text", "text": "word " * 200}]}])
    assert upstream.received == []


def test_the_team_key_split_across_chat_chunks_is_masked_in_the_stream_and_the_store(
        live, client, seed, upstream):
    _, key = chat_only(client, seed, upstream)
    half = len(PROVIDER_KEY) // 2
    upstream.reply(Reply(chunks=[chunk("key: " + PROVIDER_KEY[:half]),
                                 chunk(PROVIDER_KEY[half:]), chunk(None, "stop"), b"[DONE]"]))
    openai_client = sdk(live, key)
    with openai_client.responses.with_streaming_response.create(
            model="llama", input="leak it", stream=True) as raw:
        streamed = b"".join(raw.iter_bytes())
    assert PROVIDER_KEY.encode() not in streamed
    assert b"sk-...9876" in streamed
    completed = [json.loads(line[5:]) for line in streamed.split(b"\n")
                 if line.startswith(b"data:") and b"response.completed" in line][0]
    kept = openai_client.responses.retrieve(completed["response"]["id"])
    assert PROVIDER_KEY not in kept.to_json() and "sk-...9876" in kept.output_text
