"""Hostile bodies: too large, too deep, too many messages, arbitrary JSON. Each gets a JSON 4xx."""
import io
import json
import select
import socket

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import ADMIN, LiveServer, Seed, bearer
from webapp.errors import APIError
from webapp.services import schemas
from webapp.services.validation import validate

SCHEMAS = {name: value for name, value in vars(schemas).items()
           if name.isupper() and isinstance(value, dict) and value.get("type") == "object"}
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["model_name", "litellm_params", "model_info", "team_id", "member",
                         "key", "keys", "api_key", "models", "duration", "id", "role",
                         "user_email", "max_budget", "x"]) | st.text(max_size=8),
        inner, max_size=5),
    max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(sorted(SCHEMAS)), body=st.dictionaries(st.text(max_size=12), JSON,
                                                                     max_size=6) | JSON)
def test_validators_raise_only_a_400_for_any_json(name, body):
    try:
        validate(body, SCHEMAS[name])
    except APIError as error:
        assert error.status == 400 and error.message


@pytest.fixture
def team_key(seed):
    return seed.key(seed.team())


DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/model/new", "/team/new",
                                  "/key/generate"])
def test_hostile_bodies_get_json_errors(client, team_key, path):
    headers = {**bearer(team_key), "Content-Type": "application/json"}
    if path == "/team/new":
        headers = {**ADMIN, "Content-Type": "application/json"}
    cases = {
        "too large": ('{"model": "' + "x" * (20 * 1024 * 1024) + '"}', 413),
        "too deep for the parser": ('{"model": "m", "messages": ' + DEEP + "}", 400),
        "too deep": ('{"metadata": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}", 400),
        "not JSON": ("{'model': 'm'}", 400),
        "not UTF-8": (b'{"model": "\xff"}', 400),
        "not an object": ("[1, 2]", 400),
    }
    for what, (body, status) in cases.items():
        response = client.post(path, data=body, headers=headers)
        assert response.status_code == status, (what, response.status_code)
        assert response.is_json and response.json["error"]["type"] == "invalid_request_error"


def test_ten_thousand_messages_are_refused(client, team_key):
    messages = [{"role": "user", "content": "hi"}] * 10_000
    response = client.post("/v1/chat/completions", headers=bearer(team_key),
                           json={"model": "m", "messages": messages})
    assert response.status_code == 400 and response.json["error"]["param"] == "messages"


def test_malformed_json_names_line_and_column(client, team_key):
    response = client.post("/key/generate", data='{\n  "team_id": ,\n}',
                           headers={**bearer(team_key), "Content-Type": "application/json"})
    assert response.status_code == 400
    assert "line 2 column" in response.json["error"]["message"]


def test_too_large_over_a_real_socket_is_a_json_413(live, team_key):
    response = requests.post(live.url + "/v1/chat/completions", headers=bearer(team_key),
                             data=b'{"model": "' + b"x" * (20 * 1024 * 1024) + b'"}', timeout=10)
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "invalid_request_error"


MIB = 1024 * 1024
CHUNKED = {"Transfer-Encoding": "chunked", "Content-Type": "application/json"}


def vision_call(size: int) -> bytes:
    """A chat call with an image inline (base64), `size` bytes in all."""
    head = (b'{"model": "my-team-model", "messages": [{"role": "user", "content": [{"type": '
            b'"image_url", "image_url": {"url": "data:image/png;base64,')
    tail = b'"}}]}]}'
    return head + b"A" * (size - len(head) - len(tail)) + tail


def pieces(body: bytes, size: int = MIB):
    """The body as an iterator, which requests sends with Transfer-Encoding: chunked."""
    return (body[n:n + size] for n in range(0, len(body), size))


def test_the_body_limit_is_20_mib_and_a_setting(make_app, monkeypatch):
    assert make_app().config["MAX_CONTENT_LENGTH"] == 20 * MIB
    monkeypatch.setenv("TEAMGATE_MAX_BODY_MB", "8")
    assert make_app().config["MAX_CONTENT_LENGTH"] == 8 * MIB


def test_a_chunked_body_over_the_limit_is_a_413_not_a_cut_400(app, make_app, upstream):
    """Without a Content-Length the body used to be cut at the limit and fail as malformed
    JSON; a chunked body of exactly the limit is read whole and forwarded."""
    app = make_app(MAX_CONTENT_LENGTH=MIB)
    client = app.test_client()
    _, key = Seed(client).team_with_model(upstream.url)
    for size, status in ((MIB + 1, 413), (MIB, 200)):
        response = client.post("/v1/chat/completions", input_stream=io.BytesIO(vision_call(size)),
                               headers={**bearer(key), **CHUNKED},
                               environ_overrides={"wsgi.input_terminated": True})
        assert response.status_code == status, response.json
        assert response.is_json
    assert len(json.dumps(upstream.received[-1].body)) >= MIB - 100
    assert len(upstream.received) == 1


def test_chunked_bodies_over_a_real_socket(live, seed, upstream):
    """requests sends an iterator chunked: a vision call of 5 MiB (over the former limit)
    reaches the upstream whole, one of 21 MiB is a JSON 413."""
    _, key = seed.team_with_model(upstream.url)
    with requests.Session() as session:
        small = session.post(live.url + "/v1/chat/completions", data=pieces(vision_call(5 * MIB)),
                             headers={**bearer(key), **CHUNKED}, timeout=30)
        large = session.post(live.url + "/v1/chat/completions", data=pieces(vision_call(21 * MIB)),
                             headers={**bearer(key), **CHUNKED}, timeout=30)
    assert small.status_code == 200, small.text
    image = upstream.received[-1].body["messages"][0]["content"][0]["image_url"]["url"]
    assert len(image) > 5 * MIB - 200
    assert large.status_code == 413
    assert large.json()["error"]["type"] == "invalid_request_error"
    assert len(upstream.received) == 1


def test_an_endless_chunked_body_is_refused_at_the_limit(make_app, seed, upstream):
    """A client that keeps sending gets its 413 once the limit is passed, while it is still
    sending: the server reads the body a piece at a time and holds no more than the limit."""
    app = make_app(MAX_CONTENT_LENGTH=MIB)
    server = LiveServer(app)
    try:
        _, key = seed.team_with_model(upstream.url)
        with socket.create_connection(("127.0.0.1", server.server.server_port)) as sock:
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: teamgate\r\n"
                         b"Authorization: Bearer " + key.encode() + b"\r\n"
                         b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                         + b"%x\r\n%s\r\n" % (len(vision_call(MIB)[:-7]), vision_call(MIB)[:-7]))
            piece = b"A" * 65536
            sent = MIB
            while not select.select([sock], [], [], 0)[0]:
                assert sent < 64 * MIB, "no answer after 64 MiB"
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                sent += len(piece)
            head, _, body = sock.recv(65536).partition(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            while len(body) < length:
                body += sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 413"), head
        assert json.loads(body)["error"]["type"] == "invalid_request_error"
    finally:
        server.stop()


@pytest.mark.parametrize("value", ["99999999999d", "999999999999999999999s"])
def test_absurd_durations_are_a_400_not_a_crash(client, value):
    response = client.post("/key/generate", headers=ADMIN, json={"duration": value})
    assert response.status_code == 400, response.json
    assert response.json["error"]["param"] == "duration"


def test_keys_in_the_query_string_are_refused(client, team_key):
    response = client.get(f"/team/list?api_key={team_key}")
    assert response.status_code == 401
    assert team_key not in json.dumps(response.json)
