"""LiteLLM's model_rpm_limit and model_tpm_limit on keys and teams: a minute of their own for calls
to one model name, beside the key's and team's limits for every model; stored values from before
they were enforced (these, and a team's member budget and limits) move into the limits on
upgrade. A team's team_member_rpm_limit: a minute for each of its members."""
import json

from flask_migrate import upgrade
from sqlalchemy import text

from tests.conftest import ADMIN, bearer, migrated_to
from tests.test_limits_shared import same_minute
from webapp.extensions import db

IGNORED = "x-teamgate-ignored-fields"


def chat(client, key, model="my-team-model", **extra):
    return client.post("/v1/chat/completions", headers=bearer(key), json={
        "model": model, "messages": [{"role": "user", "content": "hi"}], **extra})


def test_a_keys_model_rpm_limit_counts_that_model_only(client, seed, upstream):
    team_id = seed.team()
    admin_key = seed.key(team_id)
    seed.model(admin_key, team_id, upstream.url)
    seed.model(admin_key, team_id, upstream.url, name="other-model")
    made = client.post("/key/generate", headers=ADMIN, json={
        "team_id": team_id, "model_rpm_limit": {"my-team-model": 2}})
    assert made.status_code == 200, made.json
    assert IGNORED not in made.headers  # acted on, so not named as ignored
    key = made.json["key"]
    same_minute(5)
    assert [chat(client, key).status_code for _ in range(2)] == [200, 200]
    refused = chat(client, key)
    assert refused.status_code == 429
    assert refused.json["error"]["message"] == (
        "Rate limit of this key for model my-team-model reached (2 requests per minute).")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert chat(client, key, "other-model").status_code == 200  # another model: its own minute
    assert chat(client, admin_key).status_code == 200  # another key of the team
    assert len(upstream.received) == 4
    info = client.get("/key/info", headers=bearer(key)).json["info"]
    assert info["model_rpm_limit"] == {"my-team-model": 2}


def test_a_teams_model_tpm_limit_holds_for_every_key(client, seed, upstream):
    team_id = seed.team()
    key = seed.key(team_id)
    seed.model(key, team_id, upstream.url)
    updated = client.post("/team/update", headers=ADMIN, json={
        "team_id": team_id, "model_tpm_limit": {"my-team-model": 100}})
    assert updated.status_code == 200, updated.json
    assert IGNORED not in updated.headers
    refused = chat(client, seed.key(team_id), max_tokens=200)
    assert refused.status_code == 429
    assert refused.json["error"]["message"] == (
        "This call would use about 204 tokens, more than the limit of this team for model "
        "my-team-model (100 tokens per minute).")
    assert upstream.received == []
    assert chat(client, key, max_tokens=50).status_code == 200
    # null removes it, as LiteLLM reads null
    cleared = client.post("/team/update", headers=ADMIN, json={
        "team_id": team_id, "model_tpm_limit": None})
    assert cleared.status_code == 200
    assert chat(client, key, max_tokens=200).status_code == 200


def test_a_team_member_rpm_limit_counts_each_member_apart(client, seed, upstream):
    """LiteLLM's team_member_rpm_limit: a minute for each user's keys in the team; a key of no
    user is held to the team's own limits only."""
    made = client.post("/team/new", headers=ADMIN, json={
        "team_alias": "members", "team_member_rpm_limit": 1})
    assert made.status_code == 200, made.json
    assert IGNORED not in made.headers
    team_id = made.json["team_id"]
    nobodys = seed.key(team_id)
    seed.model(nobodys, team_id, upstream.url)
    alice, alices_other, bob = (seed.key(team_id, user_id=user)
                                for user in ("alice", "alice", "bob"))
    same_minute(5)
    assert chat(client, alice).status_code == 200
    refused = chat(client, alices_other)  # the member's minute, whichever of their keys
    assert refused.status_code == 429
    assert refused.json["error"]["message"] == (
        "Rate limit of this team member reached (1 requests per minute).")
    assert chat(client, bob).status_code == 200
    assert [chat(client, nobodys).status_code for _ in range(2)] == [200, 200]
    info = client.get(f"/team/info?team_id={team_id}", headers=ADMIN).json["team_info"]
    assert info["team_member_rpm_limit"] == 1


def test_a_per_model_limit_must_map_names_to_whole_numbers(client, seed):
    team_id = seed.team()
    for wrong in ({"my-team-model": "10"}, {"my-team-model": -1}, ["my-team-model"],
                  {"my-team-model": 1.5}):
        refused = client.post("/key/generate", headers=ADMIN, json={
            "team_id": team_id, "model_rpm_limit": wrong})
        assert refused.status_code == 400, wrong
        assert refused.json["error"]["param"].startswith("model_rpm_limit")
    assert client.get("/key/list", headers=ADMIN).json["total_count"] == 0


def test_a_users_per_model_limits_are_stored_and_named_as_ignored(client):
    made = client.post("/user/new", headers=ADMIN, json={
        "user_email": "limits@example.com", "model_rpm_limit": {"gpt-4o": 5}})
    assert made.status_code == 200, made.json
    assert "model_rpm_limit" in made.headers[IGNORED]


def test_values_stored_before_move_into_the_limits_on_upgrade(empty_database):
    with migrated_to(empty_database, "f6b2d8e41a97"):
        db.session.execute(text(
            "INSERT INTO teams (id, alias, models, metadata, limits, blocked, created_at, "
            "updated_at, extra) VALUES ('team-a', 'Team A', '[]', '{}', '{\"rpm_limit\": 9}', "
            ":f, '2026-01-01 00:00:00', '2026-01-01 00:00:00', :extra)"),
            {"f": False, "extra": json.dumps({"model_tpm_limit": {"gpt-4o": 7},
                                              "team_member_budget": 0.5,
                                              "team_member_budget_duration": "30d",
                                              "team_member_tpm_limit": 1000,
                                              "tags": ["kept"]})})
        db.session.execute(text(
            "INSERT INTO virtual_keys (token, key_name, team_id, models, metadata, limits, "
            "blocked, created_at, extra) VALUES (:token, 'sk-...abcd', 'team-a', '[]', '{}', "
            "'{}', :f, '2026-01-01 00:00:00', :extra)"),
            {"token": "a" * 64, "f": False,
             "extra": json.dumps({"model_rpm_limit": {"gpt-4o": "not a number"}})})
        db.session.commit()
        upgrade()
        team = db.session.execute(text("SELECT limits, extra FROM teams")).one()
        key = db.session.execute(text("SELECT limits, extra FROM virtual_keys")).one()
        loaded = [json.loads(v) if isinstance(v, str) else v for v in (*team, *key)]
        assert loaded[0] == {"rpm_limit": 9, "model_tpm_limit": {"gpt-4o": 7},
                             "team_member_budget": 0.5, "team_member_budget_duration": "30d",
                             "team_member_tpm_limit": 1000}
        assert loaded[1] == {"tags": ["kept"]}
        assert loaded[2] == {}  # not a valid limit: left where it was, not enforced
        assert loaded[3] == {"model_rpm_limit": {"gpt-4o": "not a number"}}
