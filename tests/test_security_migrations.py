"""Upgrades lose nothing: build the previous release's schema, fill it, upgrade, find every row;
and the migrations end exactly where the models are."""
import uuid

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from tests.conftest import _config, insert_rows, migrated_to
from webapp import create_app
from webapp.extensions import db

PREVIOUS = "a63ec1d7b2cd"
ROWS = {
    "teams": [{"id": "team-a", "alias": "Team A", "models": "[]", "metadata": "{}",
               "limits": "{}", "blocked": False, "created_at": "2026-01-01 00:00:00",
               "updated_at": "2026-01-01 00:00:00"}],
    "deployments": [{"id": "dep-1", "team_id": "team-a", "model_name": "model_name_team-a_x",
                     "public_name": "my-model", "provider": "openai",
                     "params": '{"model": "openai/gpt-4o"}', "model_info": "{}",
                     "api_key_encrypted": "v1.AAAA", "api_key_masked": "sk-...1234",
                     "created_by": "admin", "updated_by": "admin",
                     "created_at": "2026-01-01 00:00:00", "updated_at": "2026-01-01 00:00:00"}],
    "virtual_keys": [{"token": "a" * 64, "key_name": "sk-...abcd", "team_id": "team-a",
                      "models": "[]", "metadata": "{}", "limits": "{}", "blocked": False,
                      "created_at": "2026-01-01 00:00:00"}],
    "request_log": [{"request_id": str(uuid.uuid4()), "created_at": "2026-01-01 00:00:00",
                     "team_id": "team-a", "route": "/chat/completions", "status": 200,
                     "latency_ms": 12.5, "stream": False} for _ in range(50)],
}


def test_upgrade_from_the_previous_schema_keeps_every_row(empty_database):
    with migrated_to(empty_database, PREVIOUS):
        insert_rows(ROWS)
        upgrade()
        for table, rows in ROWS.items():
            count = db.session.scalar(text(f"SELECT count(*) FROM {table}"))
            assert count == len(rows), table
        indexes = {i["name"] for i in inspect(db.engine).get_indexes("request_log")}
        assert "ix_request_log_team_id_created_at" in indexes
        db.session.remove()  # no open transaction may hold a lock the downgrade needs
        # and back down again: the downgrade works too and keeps the rows
        downgrade(revision=PREVIOUS)
        assert db.session.scalar(text("SELECT count(*) FROM request_log")) == 50


def test_migrations_match_the_models(empty_database):
    app = create_app(_config(empty_database))
    try:
        with app.app_context():
            upgrade()
            with db.engine.connect() as connection:
                differences = compare_metadata(MigrationContext.configure(connection),
                                               db.metadata)
            assert differences == []
    finally:
        app.extensions["teamgate.request_log"].stop()
        with app.app_context():
            db.engine.dispose()
