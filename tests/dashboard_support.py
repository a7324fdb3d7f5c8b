"""Dashboard fixtures, loaded as a pytest plugin by conftest.py: two teams with users of every
role, and a test client that logs in and sends the CSRF token the way the dashboard's script
does."""
import functools
import re
from dataclasses import dataclass

import pytest
from argon2 import PasswordHasher

from tests.conftest import ADMIN
from webapp.auth.principal import MASTER
from webapp.crypto import hash_key
from webapp.extensions import db
from webapp.services import credentials, teams, users

PASSWORD = "correct horse battery staple"
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


class DashClient:
    def __init__(self, app):
        self.client = app.test_client()
        self.token = None

    def refresh_token(self, path="/ui/login"):
        page = self.client.get(path).get_data(as_text=True)
        self.token = CSRF_META.search(page).group(1)

    def login(self, email, password=PASSWORD):
        self.refresh_token()
        response = self.post("/ui/login", {"email": email, "password": password})
        return response

    def get(self, path, **kwargs):
        return self.client.get(path, **kwargs)

    def post(self, path, data=None, **kwargs):
        headers = {"X-CSRFToken": self.token, **kwargs.pop("headers", {})}
        return self.client.post(path, data=data or {}, headers=headers, **kwargs)


@dataclass
class World:
    team_a: str
    team_b: str
    team_a_key: str
    model_a: dict
    credential_a: str
    key_a_token: str
    global_model: str
    user_id: str


@functools.cache
def password_hash() -> str:
    return PasswordHasher().hash(PASSWORD)  # hashed once: argon2 is slow on purpose


def make_user(email, team_id=None, role="member", is_admin=False):
    user = users.create(MASTER, email, None, is_admin=is_admin)
    user.password_hash = password_hash()
    if team_id:
        teams.add_members(MASTER, team_id, [
            {"user_id": user.id, "role": teams.ROLE_TO_LITELLM[role]}])
    return user


@pytest.fixture
def world(app, seed, upstream):
    team_a = seed.team("Team A")
    team_b = seed.team("Team B")
    team_a_key = seed.key(team_a, key_alias="a-key")
    model_a = seed.model(team_a_key, team_a, upstream.url)
    seed.model(seed.key(team_b), team_b, upstream.url, name="b-secret-model")
    response = seed.client.post("/model/new", headers=ADMIN, json={
        "model_name": "global-model", "litellm_params": {
            "model": "openai/gpt-4o-mini", "api_base": upstream.url,
            "api_key": "sk-global-12345678"}})
    assert response.status_code == 200, response.json
    with app.app_context():
        make_user("admin@example.com", is_admin=True)
        make_user("a-admin@example.com", team_a, "admin")
        make_user("a-member@example.com", team_a, "member")
        user_id = make_user("b-member@example.com", team_b, "member").id
        credential = credentials.create(MASTER, team_a, "Sweden Azure key", "sk-cred-canary-9876")
        db.session.commit()
        credential_id = credential.id
    return World(team_a, team_b, team_a_key, model_a, credential_id, hash_key(team_a_key),
                 response.json["model_id"], user_id)


@pytest.fixture
def as_user(app):
    """Log in as one of the world's users: as_user('member') etc.; None stays logged out."""
    emails = {"admin": "admin@example.com", "team_admin": "a-admin@example.com",
              "member": "a-member@example.com", "other": "b-member@example.com"}

    def login(who):
        client = DashClient(app)
        if who is None:
            client.refresh_token()
        else:
            response = client.login(emails[who])
            assert response.status_code == 302, response.get_data(as_text=True)
            client.refresh_token("/ui/")
        return client

    return login
