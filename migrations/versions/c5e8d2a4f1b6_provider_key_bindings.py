"""provider keys bound to the origins they were saved for; ids of deleted teams kept; key
aliases unique per team

Revision ID: c5e8d2a4f1b6
Revises: b7c4e2f19a30
Create Date: 2026-12-02 10:00:00.000000

Existing keys are bound to where their models send them today: a deployment's own key to its
api_base (or its provider's default), a named key to the origins of the models that use it.
Teams deleted before this revision are known by the rows they left in the request log and the
audit trail; their ids are kept as deleted too. A key alias becomes unique within its team
instead of across all teams (the downgrade fails if two teams use one alias by then).
"""
from urllib.parse import urlsplit

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'c5e8d2a4f1b6'
down_revision = 'b7c4e2f19a30'
branch_labels = None
depends_on = None

# the providers' default API bases when this revision was written
DEFAULT_BASES = {'openai': 'https://api.openai.com', 'anthropic': 'https://api.anthropic.com'}
PORTS = {'http': 80, 'https': 443}
# names SQLite's unnamed unique constraint on virtual_keys.key_alias gets in a batch copy
NAMING = {'uq': 'uq_%(table_name)s_%(column_0_name)s'}

deployments = sa.table(
    'deployments', sa.column('id', sa.String), sa.column('provider', sa.String),
    sa.column('params', sa.JSON), sa.column('api_key_encrypted', sa.Text),
    sa.column('credential_id', sa.String), sa.column('api_key_origin', sa.String))
credentials = sa.table('provider_credentials', sa.column('id', sa.String),
                       sa.column('bound_origins', sa.JSON))


def _origin(provider, params):
    base = (params or {}).get('api_base') or DEFAULT_BASES.get(provider)
    if not base:
        return None
    parts = urlsplit(base)
    try:
        port = parts.port or PORTS.get(parts.scheme)
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    host = f'[{parts.hostname}]' if ':' in parts.hostname else parts.hostname
    return f'{parts.scheme}://{host}:{port}'


def _bind_existing_keys():
    connection = op.get_bind()
    by_credential = {}
    for row in connection.execute(sa.select(deployments)).mappings():
        origin = _origin(row['provider'], row['params'])
        if row['credential_id'] and origin:
            by_credential.setdefault(row['credential_id'], set()).add(origin)
        elif row['api_key_encrypted']:
            connection.execute(deployments.update().where(deployments.c.id == row['id'])
                               .values(api_key_origin=origin))
    for credential_id, origins in by_credential.items():
        connection.execute(credentials.update().where(credentials.c.id == credential_id)
                           .values(bound_origins=sorted(origins)))


# plain ALTER TABLE ADD/DROP COLUMN (SQLite 3.35+ has both): a batch copy of these tables would
# drop them, which their foreign keys forbid
def upgrade():
    op.add_column('deployments', sa.Column('api_key_origin', sa.String(length=320),
                                           nullable=True))
    op.add_column('provider_credentials', sa.Column('bound_origins', sa.JSON(), nullable=False,
                                                    server_default=sa.text("'[]'")))
    _bind_existing_keys()
    op.create_table(
        'deleted_teams',
        sa.Column('team_id', sa.String(length=128), nullable=False),
        sa.Column('deleted_at', sa.DateTime(), nullable=False),
        sa.Column('deleted_by', sa.String(length=256), nullable=True),
        sa.PrimaryKeyConstraint('team_id'))
    op.execute(
        "INSERT INTO deleted_teams (team_id, deleted_at) SELECT team_id, max(created_at) FROM ("
        " SELECT team_id, created_at FROM request_log UNION ALL"
        " SELECT team_id, created_at FROM audit_log) AS history"
        " WHERE team_id IS NOT NULL AND team_id NOT IN (SELECT id FROM teams) GROUP BY team_id")
    _alias_unique_per_team()


def _alias_constraint_name():
    """The global unique constraint on key_alias: PostgreSQL named it, SQLite did not."""
    for constraint in sa.inspect(op.get_bind()).get_unique_constraints('virtual_keys'):
        if constraint['column_names'] == ['key_alias'] and constraint['name']:
            return constraint['name']
    return 'uq_virtual_keys_key_alias'


def _alias_unique_per_team():
    name = _alias_constraint_name()
    with op.batch_alter_table('virtual_keys', naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint(name, type_='unique')
        batch_op.create_unique_constraint('uq_virtual_keys_team_id_key_alias',
                                          ['team_id', 'key_alias'])


def downgrade():
    with op.batch_alter_table('virtual_keys', naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint('uq_virtual_keys_team_id_key_alias', type_='unique')
        batch_op.create_unique_constraint('uq_virtual_keys_key_alias', ['key_alias'])
    op.drop_table('deleted_teams')
    op.drop_column('provider_credentials', 'bound_origins')
    op.drop_column('deployments', 'api_key_origin')
