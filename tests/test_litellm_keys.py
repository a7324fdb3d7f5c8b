"""LiteLLM's key routes beyond generate/update: regenerate (the old secret dead at once, every
restriction kept), block and unblock, and LiteLLM's 401 for a model a key or team may not use."""
import openai
import pytest

from tests import test_instances
from tests.conftest import ADMIN, LiveServer, bearer


def chat(client, key, model="my-team-model"):
    return client.post("/v1/chat/completions", headers=bearer(key), json={
        "model": model, "messages": [{"role": "user", "content": "hi"}]})


def test_regenerate_keeps_the_restrictions_and_kills_the_old_secret(client, seed, upstream):
    team_id, _ = seed.team_with_model(upstream.url)
    old = seed.key(team_id, key_alias="ci", models=["my-team-model"], rpm_limit=7,
                   tags=["prod"])
    assert chat(client, old).status_code == 200
    response = client.post("/key/regenerate", headers=ADMIN, json={"key": old})
    assert response.status_code == 200, response.json
    new = response.json
    assert new["key"] != old and new["key_alias"] == "ci" and new["team_id"] == team_id
    assert new["models"] == ["my-team-model"] and new["rpm_limit"] == 7
    assert new["tags"] == ["prod"] and new["token_id"] == new["token"]
    assert chat(client, old).status_code == 401
    assert chat(client, new["key"]).status_code == 200
    # the path form, with a change: LiteLLM's /key/{key}/regenerate
    again = client.post(f"/key/{new['token']}/regenerate", headers=ADMIN,
                        json={"models": [], "duration": "1h"})
    assert again.status_code == 200, again.json
    assert again.json["models"] == [] and again.json["expires"]
    assert chat(client, new["key"]).status_code == 401


def test_regenerate_is_for_those_who_manage_the_key(client, seed, upstream):
    team_id, key = seed.team_with_model(upstream.url)
    response = client.post("/key/regenerate", headers=bearer(key), json={"key": key})
    assert response.status_code == 403
    assert chat(client, key).status_code == 200


def test_block_and_unblock(client, seed, upstream):
    team_id, key = seed.team_with_model(upstream.url)
    blocked = client.post("/key/block", headers=ADMIN, json={"key": key})
    assert blocked.status_code == 200 and blocked.json["blocked"] is True
    assert chat(client, key).status_code == 401
    unblocked = client.post("/key/unblock", headers=ADMIN, json={"key": key})
    assert unblocked.status_code == 200 and unblocked.json["blocked"] is False
    assert chat(client, key).status_code == 200


def test_a_model_the_key_may_not_use_is_litellms_401(client, live, seed, upstream):
    team_id, _ = seed.team_with_model(upstream.url)
    narrow = seed.key(team_id, models=["my-team-model"])
    api = openai.OpenAI(base_url=live.url + "/v1", api_key=narrow, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as raised:
        api.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert raised.value.body["message"] == (
        "key not allowed to access model. This key can only access "
        "models=['my-team-model']. Tried to access gpt-4o")
    assert raised.value.body["type"] == "key_model_access_denied"
    # another team's model name gets the same words as a name nobody has
    seed.team_with_model(upstream.url, name="beta-model")
    words = [chat(client, narrow, name).json["error"]["message"].rsplit(" ", 1)[0]
             for name in ("beta-model", "nobodys-model")]
    assert words[0] == words[1]


def test_a_model_the_team_may_not_use_is_litellms_401(client, seed, upstream):
    client.post("/model/new", headers=ADMIN, json={
        "model_name": "global-a", "litellm_params": {"model": "openai/gpt-4o",
                                                     "api_base": upstream.url,
                                                     "api_key": "sk-global-key-0001"}})
    team_id = seed.team(models=["global-b"])
    key = seed.key(team_id)
    response = chat(client, key, "global-a")
    assert response.status_code == 401, response.json
    assert response.json["error"]["message"] == (
        "team not allowed to access model. This team can only access models=['global-b']. "
        "Tried to access global-a")


def test_block_and_unblock_a_team(client, seed, upstream):
    team_id, key = seed.team_with_model(upstream.url)
    blocked = client.post("/team/block", headers=ADMIN, json={"team_id": team_id})
    assert blocked.status_code == 200 and blocked.json["blocked"] is True
    assert chat(client, key).status_code == 401
    assert client.post("/team/unblock", headers=ADMIN,
                       json={"team_id": team_id}).json["blocked"] is False
    assert chat(client, key).status_code == 200


def test_litellms_duration_units(client, seed):
    team_id = seed.team()
    for duration in ("2w", "1mo", "1y"):
        response = client.post("/key/generate", headers=ADMIN,
                               json={"team_id": team_id, "duration": duration})
        assert response.status_code == 200 and response.json["expires"], duration
    assert client.post("/key/generate", headers=ADMIN, json={
        "team_id": team_id, "duration": "1 year"}).json["error"]["param"] == "duration"


def test_a_regenerated_keys_old_secret_stops_on_every_instance(app, make_app, upstream, seed):
    first, second = LiveServer(app), LiveServer(make_app(CACHE_CHECK_INTERVAL=0.5))
    try:
        _, key = seed.team_with_model(upstream.url)
        assert test_instances.chat(first, key).status_code == 200
        assert test_instances.chat(second, key).status_code == 200  # both instances have it cached
        new = seed.client.post("/key/regenerate", headers=ADMIN, json={"key": key}).json["key"]
        test_instances.seconds_until(lambda: test_instances.chat(second, key).status_code == 401)
        assert test_instances.chat(first, key).status_code == 401
        assert test_instances.chat(second, new).status_code == 200
    finally:
        first.stop()
        second.stop()
