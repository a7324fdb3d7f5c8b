"""Another team's ids and names cannot be confirmed by error wording: on every route that takes a
team id, model id, key, key alias or credential name, team B's key, team admin and member get
the same answer (status and message, the probed value aside) for team A's existing object as
for one that does not exist. The proxy admin still gets precise answers."""
import re
import uuid
from dataclasses import dataclass

import pytest

from tests.conftest import ADMIN, bearer
from tests.dashboard_support import DashClient, make_user
from webapp.auth.principal import MASTER
from webapp.crypto import hash_key
from webapp.extensions import db
from webapp.services import credentials

NOWHERE = "http://127.0.0.1:9"  # nothing is called: a closed port spares a fake upstream
CSRF = re.compile(r'(csrf[-_]token"[^>]*?(?:content|value)=")[^"]+')


@dataclass
class Teams:
    a: str
    b: str
    key_a: str
    key_b: str
    model_a: str
    credential_a_id: str


@pytest.fixture
def teams(app, seed):
    a, b = seed.team("Alpha"), seed.team("Beta")
    key_a, key_b = seed.key(a, key_alias="alpha-ci"), seed.key(b, key_alias="beta-ci")
    model_a = seed.model(key_a, a, NOWHERE)["model_id"]
    seed.model(key_b, b, NOWHERE)
    with app.app_context():
        credential = credentials.create(MASTER, a, "Alpha Azure key", "sk-alpha-cred-5555",
                                        NOWHERE)
        credentials.create(MASTER, b, "Beta Azure key", "sk-beta-cred-6666", NOWHERE)
        db.session.commit()
        credential_id = credential.id
    return Teams(a, b, key_a, key_b, model_a, credential_id)


@pytest.fixture
def team_b_users(app, teams) -> tuple[DashClient, DashClient]:
    """Team B's admin and member, logged in to the dashboard."""
    clients = []
    for email, role in (("b-admin@example.com", "admin"), ("b-member@example.com", "member")):
        with app.app_context():
            make_user(email, teams.b, role)
            db.session.commit()
        client = DashClient(app)
        assert client.login(email).status_code == 302
        client.refresh_token("/ui/")
        clients.append(client)
    return tuple(clients)


def answer(response, probed: str) -> tuple[int, str]:
    text = CSRF.sub(r"\1CSRF", response.get_data(as_text=True))
    return response.status_code, text.replace(probed, "<probed>")


def assert_same(probe, existing: str, missing: str, where: str):
    first, second = answer(probe(existing), existing), answer(probe(missing), missing)
    assert first == second, where
    return first


def model_body(team_id, **extra):
    info = extra.pop("model_info", {})
    return {"model_name": "probe", "litellm_params": {
        "model": "openai/gpt-4o", "api_base": NOWHERE,
        "api_key": "sk-probe-key-12345678", **extra}, "model_info": {"team_id": team_id, **info}}


def _post(path, body_of):
    return lambda client, t, x: client.post(path, json=body_of(t, x), headers=bearer(t.key_b))


def _get(url_of):
    return lambda client, t, x: client.get(url_of(x), headers=bearer(t.key_b))


# route -> (kind of value probed, request sent with team B's key)
API_PROBES = {
    "team/info": ("team", _get(lambda x: f"/team/info?team_id={x}")),
    "team/update": ("team", _post("/team/update", lambda t, x: {"team_id": x,
                                                                 "team_alias": "mine"})),
    "team/member_add": ("team", _post("/team/member_add", lambda t, x: {
        "team_id": x, "member": {"user_email": "spy@example.com", "role": "admin"}})),
    "team/member_delete": ("team", _post("/team/member_delete", lambda t, x: {
        "team_id": x, "user_email": "spy@example.com"})),
    "model/new team_id": ("team", _post("/model/new", lambda t, x: model_body(x))),
    "key/generate team_id": ("team", _post("/key/generate", lambda t, x: {"team_id": x})),
    "model/new id": ("model", _post("/model/new", lambda t, x: model_body(
        t.b, model_info={"id": x}))),
    "model/update": ("model", _post("/model/update", lambda t, x: {
        "model_info": {"id": x}, "model_name": "owned"})),
    "model/delete": ("model", _post("/model/delete", lambda t, x: {"id": x})),
    "model/info": ("model", _get(lambda x: f"/model/info?litellm_model_id={x}")),
    "key/info": ("key", _get(lambda x: f"/key/info?key={x}")),
    "key/update": ("key", _post("/key/update", lambda t, x: {"key": x, "metadata": {}})),
    "key/delete": ("key", _post("/key/delete", lambda t, x: {"keys": [x]})),
    "key/delete alias": ("alias", _post("/key/delete", lambda t, x: {"key_aliases": [x]})),
    "model/new credential": ("credential", _post("/model/new", lambda t, x: model_body(
        t.b, litellm_credential_name=x))),
}


def values(t: Teams) -> dict:
    """kind -> (team A's existing value, a value nobody has)"""
    return {"team": (t.a, str(uuid.uuid4())), "model": (t.model_a, str(uuid.uuid4())),
            "key": (hash_key(t.key_a), hash_key("sk-nobody-has-this-key")),
            "alias": ("alpha-ci", "nobody-ci"),
            "credential": ("Alpha Azure key", "Nobody Azure key"),
            "credential_id": (t.credential_a_id, str(uuid.uuid4()))}


@pytest.mark.parametrize("route", API_PROBES)
def test_team_b_key_gets_one_answer_for_team_a_objects_and_missing_ones(client, teams, route):
    kind, probe = API_PROBES[route]
    status, _ = assert_same(lambda x: probe(client, teams, x), *values(teams)[kind], where=route)
    assert status in (400, 403, 404) or route == "model/info"


def test_team_b_users_get_one_answer_in_the_dashboard(teams, team_b_users):
    known = values(teams)
    b = teams.b
    admin, member = team_b_users
    probes = {
        "team pages": ("team", lambda x: admin.get(f"/ui/teams/{x}/models")),
        "team keys page": ("team", lambda x: admin.get(f"/ui/teams/{x}/keys")),
        "model edit": ("model", lambda x: member.get(f"/ui/teams/{b}/models/{x}/edit")),
        "model test": ("model", lambda x: member.post(f"/ui/teams/{b}/models/{x}/test")),
        "model delete": ("model", lambda x: member.get(f"/ui/teams/{b}/models/{x}/delete")),
        "credential replace": ("credential_id", lambda x: member.post(
            f"/ui/teams/{b}/credentials/{x}/replace", {"secret": "sk-overwrite-0000"})),
        "credential bind": ("credential_id", lambda x: admin.post(
            f"/ui/teams/{b}/credentials/{x}/bind", {"api_base": NOWHERE})),
        "credential delete": ("credential_id", lambda x: member.get(
            f"/ui/teams/{b}/credentials/{x}/delete")),
        "key revoke": ("key", lambda x: admin.get(f"/ui/teams/{b}/keys/{x}/revoke")),
        "test before saving": ("credential", lambda x: member.post(
            f"/ui/teams/{b}/models/test", {"model_name": "probe", "provider": "openai",
                                           "model": "gpt-4o", "api_base": NOWHERE,
                                           "credential": x})),
    }
    for route, (kind, probe) in probes.items():
        assert_same(probe, *known[kind], where=route)


def test_a_key_alias_taken_in_another_team_is_free_in_mine(client, teams, team_b_users):
    page, admin = f"/ui/teams/{teams.b}/keys", team_b_users[0]
    for alias in ("alpha-ci", "nobody-ci"):
        response = admin.post(page, {"key_alias": alias})
        assert response.status_code == 200 and "already" not in response.get_data(as_text=True)
    taken = admin.post(page, {"key_alias": "beta-ci"})
    assert taken.status_code == 400 and "already" in taken.get_data(as_text=True)
    listed = client.get("/key/list", headers=ADMIN).json["data"]
    assert sorted((k["key_alias"], k["team_id"]) for k in listed) == sorted([
        ("alpha-ci", teams.a), ("alpha-ci", teams.b), ("beta-ci", teams.b),
        ("nobody-ci", teams.b)])
    ambiguous = client.post("/key/delete", headers=ADMIN, json={"key_aliases": ["alpha-ci"]})
    assert ambiguous.status_code == 400 and "delete them by key" in ambiguous.json["error"][
        "message"]


def test_the_proxy_admin_still_gets_precise_answers(client, teams):
    missing = str(uuid.uuid4())
    info = client.get(f"/team/info?team_id={missing}", headers=ADMIN)
    assert info.status_code == 404
    new = client.post("/model/new", headers=ADMIN, json=model_body(missing))
    assert new.status_code == 400
    assert new.json["error"]["message"] == f"Team id={missing} does not exist."
    taken = client.post("/model/new", headers=ADMIN, json=model_body(
        teams.b, model_info={"id": teams.model_a}))
    assert taken.status_code == 400 and "already exists" in taken.json["error"]["message"]
    generated = client.post("/key/generate", headers=ADMIN, json={"team_id": missing})
    assert generated.status_code == 400 and "does not exist" in generated.json["error"][
        "message"]
