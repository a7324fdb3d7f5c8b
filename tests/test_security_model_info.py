"""model_info keeps a caller's free-form extras but refuses the keys Teamgate sets itself (or that
would claim a permission), naming the key, instead of storing or dropping them silently."""
import pytest

from tests.conftest import ADMIN, bearer

NOWHERE = "http://127.0.0.1:9"  # no call is made: a closed port spares a fake upstream

RESERVED = ("is_admin", "created_by", "updated_by", "created_at", "updated_at", "db_model",
            "team_public_model_name", "internal_model_name", "model_id", "access_groups",
            "access_via_team_ids", "direct_access")


@pytest.fixture
def team(seed):
    team_id = seed.team()
    return team_id, seed.key(team_id)


def model_body(team_id, api_base, **info):
    return {"model_name": "my-team-model",
            "litellm_params": {"model": "openai/gpt-4o", "api_base": api_base,
                               "api_key": "sk-provider-team-a-secret-1234"},
            "model_info": {"team_id": team_id, **info}}


@pytest.mark.parametrize("field", RESERVED)
def test_model_new_refuses_a_reserved_model_info_key(client, team, field):
    team_id, key = team
    response = client.post("/model/new", headers=bearer(key),
                           json=model_body(team_id, NOWHERE, **{field: True}))
    assert response.status_code == 400, response.json
    assert response.json["error"]["param"] == f"model_info.{field}"
    assert f"model_info.{field}" in response.json["error"]["message"]
    assert client.get("/model/info", headers=ADMIN).json["data"] == []


def test_model_update_refuses_reserved_keys_and_another_team(client, team, seed):
    team_id, key = team
    model = client.post("/model/new", headers=bearer(key),
                        json=model_body(team_id, NOWHERE)).json
    other_team = seed.team("Other")
    answers = {}
    for field, value in (("created_by", "someone-else"), ("updated_at", "2020-01-01"),
                         ("team_public_model_name", "x"), ("team_id", other_team)):
        answers[field] = client.post("/model/update", headers=bearer(key), json={
            "model_info": {"id": model["model_id"], field: value}})
    for field, response in answers.items():
        assert response.status_code == 400, (field, response.json)
        assert response.json["error"]["param"] == f"model_info.{field}"
    stored = client.get(f"/model/info?litellm_model_id={model['model_id']}",
                        headers=bearer(key)).json["data"][0]
    assert stored["created_by"] == stored["updated_by"] == model["created_by"]
    assert stored["model_info"]["team_id"] == team_id
    same = client.post("/model/update", headers=bearer(key), json={
        "model_info": {"id": model["model_id"], "team_id": team_id, "tier": "paid"}})
    assert same.status_code == 200 and same.json["model_info"]["tier"] == "paid"


def test_free_form_extras_are_kept(client, team):
    team_id, key = team
    response = client.post("/model/new", headers=bearer(key), json=model_body(
        team_id, NOWHERE, mode="chat", base_model="gpt-4o", tier="paid",
        description="Sweden deployment"))
    assert response.status_code == 200, response.json
    info = response.json["model_info"]
    assert (info["mode"], info["base_model"], info["tier"], info["description"]) == (
        "chat", "gpt-4o", "paid", "Sweden deployment")
    assert info["team_public_model_name"] == "my-team-model"
