"""model_rpm_limit and model_tpm_limit are enforced for keys and teams, and a team's
team_member_budget, team_member_budget_duration, team_member_rpm_limit and
team_member_tpm_limit: the values stored before (in extra, as fields Teamgate did not act on)
move into limits

Revision ID: a9d3e6f1c2b4
Revises: f6b2d8e41a97
Create Date: 2026-12-08 02:30:00.000000

A value that is not valid (a per-model limit not a map of model names to whole numbers of at
least 0, a budget not a number of at least 0, a duration not a string, a limit not a whole
number of at least 0) stays in extra, as it was, and is not enforced.
"""
import json

import sqlalchemy as sa
from alembic import op

revision = 'a9d3e6f1c2b4'
down_revision = 'f6b2d8e41a97'
branch_labels = None
depends_on = None

PER_MODEL = ("model_rpm_limit", "model_tpm_limit")
MEMBER_BUDGET = ("team_member_budget", "team_member_budget_duration", "team_member_rpm_limit",
                 "team_member_tpm_limit")
TABLES = {"virtual_keys": ("token", PER_MODEL), "teams": ("id", PER_MODEL + MEMBER_BUDGET)}


def _loaded(value):
    return json.loads(value) if isinstance(value, str) else value


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _valid(name: str, value) -> bool:
    if name == "team_member_budget":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
    if name == "team_member_budget_duration":
        return isinstance(value, str)
    if name in ("team_member_rpm_limit", "team_member_tpm_limit"):
        return _count(value)
    return isinstance(value, dict) and all(
        isinstance(model, str) and _count(limit) for model, limit in value.items())


def _move(source: str, target: str):
    connection = op.get_bind()
    for table_name, (key, fields) in TABLES.items():
        table = sa.table(table_name, sa.column(key, sa.String), sa.column("extra", sa.JSON),
                         sa.column("limits", sa.JSON))
        for row in connection.execute(sa.select(table)).mappings().all():
            moved_from = dict(_loaded(row[source]) or {})
            moved_to = dict(_loaded(row[target]) or {})
            names = [name for name in fields if name in moved_from
                     and (source == "limits" or _valid(name, moved_from[name]))]
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
