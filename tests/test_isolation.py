"""Two teams with the same public model name never reach each other's upstream, key or data."""
import pytest

from tests.conftest import ADMIN, bearer


@pytest.fixture
def two_teams(client, seed, upstream, upstream_b):
    team_a, team_b = seed.team("Team A"), seed.team("Team B")
    key_a, key_b = seed.key(team_a), seed.key(team_b)
    model_a = seed.model(key_a, team_a, upstream.url, api_key="sk-provider-team-a-secret-1234")
    model_b = seed.model(key_b, team_b, upstream_b.url, api_key="sk-provider-team-b-secret-9876")
    return {"a": (team_a, key_a, model_a), "b": (team_b, key_b, model_b)}


def chat(client, key, model="my-team-model"):
    return client.post("/v1/chat/completions", headers=bearer(key),
                       json={"model": model, "messages": [{"role": "user", "content": "hi"}]})


def test_each_team_reaches_only_its_own_upstream_with_its_own_key(client, two_teams, upstream,
                                                                   upstream_b):
    _, key_a, _ = two_teams["a"]
    _, key_b, _ = two_teams["b"]
    for _ in range(3):
        assert chat(client, key_a).status_code == 200
    for _ in range(2):
        assert chat(client, key_b).status_code == 200
    assert len(upstream.received) == 3 and len(upstream_b.received) == 2
    assert {r.headers["api-key"] for r in upstream.received} == {"sk-provider-team-a-secret-1234"}
    assert {r.headers["api-key"] for r in upstream_b.received} == {
        "sk-provider-team-b-secret-9876"}


def test_team_b_cannot_call_team_a_internal_name(client, two_teams, upstream):
    _, _, model_a = two_teams["a"]
    _, key_b, _ = two_teams["b"]
    response = chat(client, key_b, model_a["model_name"])
    assert response.status_code == 400
    assert response.json["error"]["param"] == "model"
    unknown = chat(client, key_b, "model_name_does_not_exist")
    # another team's name answers exactly like a name that does not exist
    assert response.json["error"]["message"].replace(model_a["model_name"], "X") == \
        unknown.json["error"]["message"].replace("model_name_does_not_exist", "X")
    assert upstream.received == []


def test_team_b_cannot_read_update_or_delete_team_a_models(client, two_teams):
    team_a, key_a, model_a = two_teams["a"]
    _, key_b, model_b = two_teams["b"]
    listing = client.get("/model/info", headers=bearer(key_b)).json["data"]
    assert [m["model_id"] for m in listing] == [model_b["model_id"]]
    single = client.get(f"/model/info?litellm_model_id={model_a['model_id']}",
                        headers=bearer(key_b)).json["data"]
    assert single == []
    update = client.post("/model/update", headers=bearer(key_b), json={
        "model_info": {"id": model_a["model_id"]}, "litellm_params": {"api_key": "sk-steal-0000"}})
    assert update.status_code == 404
    delete = client.post("/model/delete", headers=bearer(key_b), json={"id": model_a["model_id"]})
    assert delete.status_code == 404
    # team A's model is untouched and still callable with its own key
    assert chat(client, key_a).status_code == 200
    for response in (update, delete):
        assert team_a not in response.get_data(as_text=True)


def test_team_b_cannot_read_team_a_info_or_add_models_to_it(client, two_teams, upstream_b):
    team_a, _, _ = two_teams["a"]
    team_b, key_b, _ = two_teams["b"]
    info = client.get(f"/team/info?team_id={team_a}", headers=bearer(key_b))
    assert info.status_code == 403
    assert "model_name_" not in info.get_data(as_text=True)
    add = client.post("/model/new", headers=bearer(key_b), json={
        "model_name": "intruder", "litellm_params": {"model": "openai/gpt-4o",
                                                     "api_base": upstream_b.url},
        "model_info": {"team_id": team_a}})
    assert add.status_code == 403
    assert add.json["error"]["message"] == (
        f"Team ID={team_a} does not match the API key's team ID={team_b}.")
    aliases = client.get(f"/team/info?team_id={team_a}", headers=ADMIN).json[
        "team_info"]["litellm_model_table"]["model_aliases"]
    assert list(aliases) == ["my-team-model"]


def test_model_lists_show_only_the_teams_public_names(client, two_teams, seed, upstream):
    team_a, key_a, _ = two_teams["a"]
    _, key_b, _ = two_teams["b"]
    seed.model(key_a, team_a, upstream.url, name="a-only")
    names_b = [m["id"] for m in client.get("/v1/models", headers=bearer(key_b)).json["data"]]
    assert names_b == ["my-team-model"]
    names_a = [m["id"] for m in client.get("/models", headers=bearer(key_a)).json["data"]]
    assert names_a == ["a-only", "my-team-model"]
    assert not any(n.startswith("model_name_") for n in names_a + names_b)
    teams_b = client.get("/team/list", headers=bearer(key_b)).json
    assert [t["team_id"] for t in teams_b] == [two_teams["b"][0]]


def test_team_public_name_shadows_a_global_model_for_that_team_only(client, seed, upstream,
                                                                    upstream_b):
    team_a, team_b = seed.team("A"), seed.team("B")
    key_a, key_b = seed.key(team_a), seed.key(team_b)
    glob = client.post("/model/new", headers=ADMIN, json={
        "model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o",
                                                   "api_base": upstream_b.url,
                                                   "api_key": "sk-global-provider-key-1111"}})
    assert glob.status_code == 200
    seed.model(key_a, team_a, upstream.url, name="gpt-4o")
    assert chat(client, key_a, "gpt-4o").status_code == 200
    assert len(upstream.received) == 1 and upstream_b.received == []
    assert chat(client, key_b, "gpt-4o").status_code == 200
    assert len(upstream_b.received) == 1
    assert upstream_b.received[0].headers["Authorization"] == "Bearer sk-global-provider-key-1111"


def test_global_models_need_the_admin(client, seed, upstream):
    team_id = seed.team()
    key = seed.key(team_id)
    response = client.post("/model/new", headers=bearer(key), json={
        "model_name": "everyone", "litellm_params": {"model": "openai/gpt-4o",
                                                     "api_base": upstream.url}})
    assert response.status_code == 403
    assert "model_info.team_id" in response.json["error"]["message"]


def test_team_key_cannot_create_teams_or_keys(client, seed):
    team_id = seed.team()
    key = seed.key(team_id)
    assert client.post("/team/new", headers=bearer(key), json={}).status_code == 403
    assert client.post("/key/generate", headers=bearer(key),
                       json={"team_id": team_id}).status_code == 403
