"""Hostile bodies: too large, too deep, too many messages, arbitrary JSON. Each gets a JSON 4xx."""
import json

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import ADMIN, bearer
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
        "too large": ('{"model": "' + "x" * (5 * 1024 * 1024) + '"}', 413),
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
                             data=b'{"model": "' + b"x" * (5 * 1024 * 1024) + b'"}', timeout=10)
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("value", ["99999999999d", "999999999999999999999s"])
def test_absurd_durations_are_a_400_not_a_crash(client, value):
    response = client.post("/key/generate", headers=ADMIN, json={"duration": value})
    assert response.status_code == 400, response.json
    assert response.json["error"]["param"] == "duration"


def test_keys_in_the_query_string_are_refused(client, team_key):
    response = client.get(f"/team/list?api_key={team_key}")
    assert response.status_code == 401
    assert team_key not in json.dumps(response.json)
