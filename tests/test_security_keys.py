"""A virtual key cannot widen itself or take an identity: only the proxy admin or an admin of the
key's team changes its restrictions, and user_id is set only to someone the caller may name."""
import pytest

from tests.conftest import ADMIN, bearer
from webapp.auth.principal import MASTER
from webapp.auth.sessions import principal_for
from webapp.errors import APIError
from webapp.extensions import db
from webapp.models import User
from webapp.services import keys

NOWHERE = "http://127.0.0.1:9"  # nothing is called: a closed port spares a fake upstream
WIDENINGS = [{"models": []}, {"rpm_limit": None}, {"max_parallel_requests": None},
             {"duration": None}, {"duration": "3650d"}, {"blocked": False},
             {"user_id": "default_user_id"}, {"key_alias": "renamed"}]


@pytest.fixture
def narrow_key(seed):
    team_id = seed.team()
    seed.model(seed.key(team_id), team_id, NOWHERE, name="allowed")
    key = seed.key(team_id, key_alias="narrow", models=["allowed"], rpm_limit=5,
                   max_parallel_requests=1, duration="1h")
    return team_id, key


def test_a_team_key_cannot_widen_itself(client, narrow_key):
    team_id, key = narrow_key
    before = client.get("/key/info", headers=bearer(key)).json["info"]
    everything = {k: v for change in WIDENINGS for k, v in change.items()}
    for change in [*WIDENINGS, everything]:
        response = client.post("/key/update", headers=bearer(key), json={"key": key, **change})
        assert response.status_code == 403, (change, response.json)
        assert response.json["error"]["type"] == "permission_error"
    after = client.get("/key/info", headers=bearer(key))
    assert after.status_code == 200 and after.json["info"] == before
    model = client.post("/model/new", headers=bearer(key), json={
        "model_name": "later", "litellm_params": {"model": "openai/gpt-4o",
                                                  "api_base": NOWHERE},
        "model_info": {"team_id": team_id}})
    assert model.json["created_by"] == "key:narrow"  # its own name, not a borrowed user's


def test_a_key_may_still_change_its_own_metadata(client, narrow_key):
    _, key = narrow_key
    response = client.post("/key/update", headers=bearer(key),
                           json={"key": key, "metadata": {"owner": "ci"}})
    assert response.status_code == 200 and response.json["metadata"] == {"owner": "ci"}
    assert response.json["models"] == ["allowed"] and response.json["rpm_limit"] == 5


def test_a_personal_key_cannot_widen_itself(client, seed):
    key = seed.key(None, models=["global-only"])
    response = client.post("/key/update", headers=bearer(key), json={"key": key, "models": []})
    assert response.status_code == 403
    assert client.get("/key/info", headers=bearer(key)).json["info"]["models"] == ["global-only"]
    generated = client.post("/key/generate", headers=bearer(key), json={"user_id": "someone"})
    assert generated.status_code == 403


def test_the_proxy_admin_changes_restrictions_and_identity(client, narrow_key):
    _, key = narrow_key
    response = client.post("/key/update", headers=ADMIN, json={
        "key": key, "models": [], "rpm_limit": None, "duration": None, "user_id": "ana"})
    assert response.status_code == 200, response.json
    info = response.json
    assert info["models"] == [] and "rpm_limit" not in info and info["expires"] is None
    assert info["user_id"] == "ana"


def test_a_team_admin_changes_its_teams_keys_and_names_only_its_members(app, world):
    with app.app_context():
        admin = principal_for(db.session.scalar(db.select(User).where(
            User.email == "a-admin@example.com")))
        member = db.session.scalar(db.select(User).where(User.email == "a-member@example.com"))
        outsider = db.session.get(User, world.user_id)  # a member of team B
        token = world.key_a_token
        changed = keys.update(admin, {"key": token, "models": ["my-team-model"],
                                      "user_id": member.id})
        assert changed["models"] == ["my-team-model"] and changed["user_id"] == member.id
        answers = []
        for user_id in (outsider.id, "no-such-user"):
            for call in (lambda: keys.update(admin, {"key": token, "user_id": user_id}),
                         lambda: keys.generate(admin, {"team_id": world.team_a,
                                                       "user_id": user_id})):
                with pytest.raises(APIError) as refused:
                    call()
                answers.append((refused.value.status,
                                refused.value.message.replace(user_id, "X")))
        assert {status for status, _ in answers} == {403} and len(set(answers)) == 1
        own = keys.generate(admin, {"team_id": world.team_a, "user_id": admin.user_id})
        assert own["user_id"] == admin.user_id
        assert keys.generate(MASTER, {"team_id": world.team_a, "user_id": "anyone"})[
            "user_id"] == "anyone"
        db.session.rollback()
