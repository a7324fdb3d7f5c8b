"""LiteLLM's team model_aliases: merged into the team's alias table, never over the team's own
models (LiteLLM replaced the whole map), used when the team calls; team_info.models shows the
team's own models' public names."""
from tests.conftest import ADMIN, bearer


def chat(client, key, model):
    return client.post("/v1/chat/completions", headers=bearer(key), json={
        "model": model, "messages": [{"role": "user", "content": "hi"}]})


def test_model_aliases_are_merged_and_used_by_the_teams_calls(client, seed, upstream):
    team_id, key = seed.team_with_model(upstream.url)
    response = client.post("/team/update", headers=ADMIN, json={
        "team_id": team_id, "model_aliases": {"gpt-4": "my-team-model"}})
    assert response.status_code == 200, response.json
    seed.model(key, team_id, upstream.url, name="second-model")  # added after the aliases
    table = client.get(f"/team/info?team_id={team_id}", headers=bearer(key)).json[
        "team_info"]["litellm_model_table"]["model_aliases"]
    assert table["gpt-4"] == "my-team-model"
    assert table["my-team-model"].startswith(f"model_name_{team_id}_")
    assert table["second-model"].startswith(f"model_name_{team_id}_")
    answered = chat(client, key, "gpt-4")
    assert answered.status_code == 200, answered.json
    assert len(upstream.received) == 1
    assert chat(client, key, "second-model").status_code == 200
    more = client.post("/team/update", headers=ADMIN, json={
        "team_id": team_id, "model_aliases": {"claude": "second-model"}})
    assert more.status_code == 200
    table = client.get(f"/team/info?team_id={team_id}", headers=ADMIN).json[
        "team_info"]["litellm_model_table"]["model_aliases"]
    assert {"gpt-4", "claude", "my-team-model", "second-model"} <= set(table)


def test_an_alias_never_replaces_a_team_models_name(client, seed, upstream):
    team_id, key = seed.team_with_model(upstream.url)
    response = client.post("/team/update", headers=ADMIN, json={
        "team_id": team_id, "model_aliases": {"my-team-model": "gpt-4o"}})
    assert response.status_code == 400 and response.json["error"]["param"] == "model_aliases"
    assert chat(client, key, "my-team-model").status_code == 200


def test_an_alias_of_another_teams_model_resolves_like_a_missing_name(client, seed, upstream):
    other_team, _ = seed.team_with_model(upstream.url)
    team_id = seed.team("B", model_aliases={"stolen": "my-team-model"})
    key = seed.key(team_id)
    refused = chat(client, key, "stolen")
    assert refused.status_code == 400 and refused.json["error"]["param"] == "model"
    assert upstream.received == []


def test_team_info_models_show_the_teams_own_models(client, seed, upstream):
    team_id, key = seed.team_with_model(upstream.url)
    info = client.get(f"/team/info?team_id={team_id}", headers=ADMIN).json["team_info"]
    assert info["models"] == ["all-proxy-models", "my-team-model"]
    # written back as read, the team is not restricted to its own models
    client.post("/team/update", headers=ADMIN, json={"team_id": team_id,
                                                     "models": info["models"]})
    again = client.get(f"/team/info?team_id={team_id}", headers=ADMIN).json["team_info"]
    assert again["models"] == ["all-proxy-models", "my-team-model"]
    assert chat(client, key, "my-team-model").status_code == 200
