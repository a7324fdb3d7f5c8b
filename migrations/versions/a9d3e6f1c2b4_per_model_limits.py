"""model_rpm_limit and model_tpm_limit are enforced for keys and teams: the values stored
before (in extra, as fields Teamgate did not act on) move into limits

Revision ID: a9d3e6f1c2b4
Revises: f6b2d8e41a97
Create Date: 2026-12-08 02:30:00.000000

A value that is not a map of model names to whole numbers of at least 0 stays in extra, as
it was, and is not enforced.
"""
import json

import sqlalchemy as sa
from alembic import op

revision = 'a9d3e6f1c2b4'
down_revision = 'f6b2d8e41a97'
branch_labels = None
depends_on = None

FIELDS = ("model_rpm_limit", "model_tpm_limit")
TABLES = {"virtual_keys": "token", "teams": "id"}


def _loaded(value):
    return json.loads(value) if isinstance(value, str) else value


def _valid(value) -> bool:
    return isinstance(value, dict) and all(
        isinstance(name, str) and isinstance(limit, int) and not isinstance(limit, bool)
        and limit >= 0 for name, limit in value.items())


def _move(source: str, target: str):
    connection = op.get_bind()
    for table_name, key in TABLES.items():
        table = sa.table(table_name, sa.column(key, sa.String), sa.column("extra", sa.JSON),
                         sa.column("limits", sa.JSON))
        for row in connection.execute(sa.select(table)).mappings().all():
            moved_from = dict(_loaded(row[source]) or {})
            moved_to = dict(_loaded(row[target]) or {})
            names = [name for name in FIELDS if name in moved_from
                     and (source == "limits" or _valid(moved_from[name]))]
            if not names:
                continue
            for name in names:
                moved_to[name] = moved_from.pop(name)
            connection.execute(sa.update(table).where(table.c[key] == row[key]).values(
                {source: moved_from, target: moved_to}))


def upgrade():
    _move("extra", "limits")


def downgrade():
    _move("limits", "extra")
