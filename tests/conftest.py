"""Fixtures: a migrated database (SQLite, or PostgreSQL when TEAMGATE_TEST_DATABASE_URL is set),
the app and its clients, a live Teamgate on 127.0.0.1, fake upstreams, and seed factories."""
import os
import uuid
from contextlib import contextmanager

import pytest
from flask_migrate import upgrade
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from werkzeug.serving import make_server

from tests.fake_upstream import FakeUpstream
from tests.raw_upstream import RawUpstream
from tests.serving import Serving
from webapp import create_app
from webapp.crypto import new_encryption_key
from webapp.extensions import db

pytest_plugins = ["tests.offline", "tests.canaries", "tests.dashboard_support"]

# Canary secrets: every one must stay out of responses, logs and plaintext columns.
MASTER_KEY = "sk-master-canary-7f3a9c1e5b2d4680aa"
ENCRYPTION_KEY = new_encryption_key()
AMBIENT_OPENAI_KEY = "sk-ambient-canary-should-never-be-sent-0000"
os.environ["OPENAI_API_KEY"] = AMBIENT_OPENAI_KEY

# the routing counter survives between tests; every other table starts empty
KEPT_TABLES = ("change_counter",)


def _database_url(tmp_path_factory) -> str:
    url = os.environ.get("TEAMGATE_TEST_DATABASE_URL")
    if url:
        return url
    return "sqlite:///" + str(tmp_path_factory.mktemp("db") / "teamgate.db")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    url = _database_url(tmp_path_factory)
    app = create_app(_config(url))
    with app.app_context():
        db.drop_all()
        db.session.execute(text("DROP TABLE IF EXISTS alembic_version"))
        db.session.commit()
        upgrade()
    yield url
    close_app(app)


def close_app(app):
    """Stop what an app started and close every connection it opened, so that none is left to
    the garbage collector (a ResourceWarning on PostgreSQL)."""
    app.extensions["teamgate.request_log"].stop()
    app.extensions["teamgate.responses"].stop()
    app.extensions["teamgate.login_throttle"].close()
    app.extensions["teamgate.http"].close()  # pooled upstream connections
    with app.app_context():
        db.engine.dispose()


def _config(url: str, **extra) -> dict:
    return {"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "TEAMGATE_MASTER_KEY": MASTER_KEY,
            "TEAMGATE_ENCRYPTION_KEY": ENCRYPTION_KEY, "SECRET_KEY": "test-secret-key",
            "TEAMGATE_UPSTREAM_ALLOW": "127.0.0.1/32", "UPSTREAM_TIMEOUT": 5.0,
            "STREAM_IDLE_TIMEOUT": 5.0, "CACHE_CHECK_INTERVAL": 0.2, **extra}


@contextmanager
def migrated_to(database_url: str, revision: str):
    """An app on `database_url` with its schema at `revision`, inside the app's context: a test
    fills the old tables, runs upgrade() and reads what became of them. Closed after."""
    app = create_app(_config(database_url))
    try:
        with app.app_context():
            upgrade(revision=revision)
            yield app
            db.session.remove()
    finally:
        app.extensions["teamgate.request_log"].stop()
        with app.app_context():
            db.engine.dispose()


def insert_rows(rows: dict[str, list[dict]]):
    """Rows into tables as raw SQL (the old schema has no models), then commit."""
    for table, values in rows.items():
        columns = ", ".join(f'"{c}"' for c in values[0])
        params = ", ".join(f":{c}" for c in values[0])
        db.session.execute(text(f"INSERT INTO {table} ({columns}) VALUES ({params})"), values)
    db.session.commit()


@pytest.fixture
def empty_database(tmp_path):
    """A database of its own: a SQLite file, or a fresh PostgreSQL database on the test server."""
    url = os.environ.get("TEAMGATE_TEST_DATABASE_URL")
    if not url:
        yield "sqlite:///" + str(tmp_path / "upgrade.db")
        return
    name = f"teamgate_upgrade_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    yield make_url(url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture
def make_app(database_url):
    """Build an app on the test database; several can share it (restarts, instances)."""
    apps = []

    def factory(**extra):
        app = create_app(_config(database_url, **extra))
        apps.append(app)
        return app

    yield factory
    for app in apps:
        close_app(app)


@pytest.fixture
def app(make_app):
    app = make_app()
    with app.app_context():
        for table in reversed(db.metadata.sorted_tables):  # children before their parents
            if table.name not in KEPT_TABLES:
                db.session.execute(table.delete())
        db.session.commit()
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class LiveServer(Serving):
    def __init__(self, app):
        self.app = app
        super().__init__(make_server("127.0.0.1", 0, app, threaded=True))
        app.config["TEAMGATE_LISTEN"] = (self.server.server_address[:2],)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"


@pytest.fixture
def live(app):
    server = LiveServer(app)
    yield server
    server.stop()


@pytest.fixture
def upstream():
    server = FakeUpstream("a")
    yield server
    server.close()


@pytest.fixture
def raw():
    """Scripted raw-socket upstreams (tests/raw_upstream.py), closed when the test ends."""
    servers = []

    def make(serve, tls=None) -> RawUpstream:
        servers.append(RawUpstream(serve, tls=tls))
        return servers[-1]
    yield make
    for server in servers:
        server.close()


@pytest.fixture
def upstream_b():
    server = FakeUpstream("b")
    yield server
    server.close()


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


ADMIN = bearer(MASTER_KEY)


class Seed:
    """Small factories that go through the public API, as a user would."""

    def __init__(self, client):
        self.client = client

    def team(self, alias="Team A", **fields) -> str:
        response = self.client.post("/team/new", json={"team_alias": alias, **fields},
                                    headers=ADMIN)
        assert response.status_code == 200, response.json
        return response.json["team_id"]

    def key(self, team_id: str | None, **fields) -> str:
        response = self.client.post("/key/generate", json={"team_id": team_id, **fields},
                                    headers=ADMIN)
        assert response.status_code == 200, response.json
        return response.json["key"]

    def model(self, key: str, team_id: str, api_base: str, name="my-team-model",
              api_key="sk-provider-team-a-secret-1234", **params) -> dict:
        body = {"model_name": name,
                "litellm_params": {"model": "openai/gpt-4o", "custom_llm_provider": "openai",
                                   "api_key": api_key, "api_base": api_base,
                                   "api_version": "2023-12-01-preview", **params},
                "model_info": {"team_id": team_id}}
        response = self.client.post("/model/new", json=body, headers=bearer(key))
        assert response.status_code == 200, response.json
        return response.json


    def team_with_model(self, api_base: str, **params) -> tuple[str, str]:
        """A new team, a key of it and its `my-team-model` on api_base: (team_id, key)."""
        team_id = self.team()
        key = self.key(team_id)
        self.model(key, team_id, api_base, **params)
        return team_id, key


@pytest.fixture
def seed(client):
    return Seed(client)
