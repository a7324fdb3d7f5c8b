"""every secret field a provider declares is stored on the deployment: api_key's ciphertext,
masked form and origin move into secrets, secrets_masked and secrets_origin

Revision ID: d81f3a6b2c07
Revises: c5e8d2a4f1b6
Create Date: 2026-12-02 14:50:00.000000

The ciphertexts move as they are (still bound to their row by the row id), so no key is needed
to upgrade.
"""
import sqlalchemy as sa
from alembic import op

revision = 'd81f3a6b2c07'
down_revision = 'c5e8d2a4f1b6'
branch_labels = None
depends_on = None


def _table(*columns):
    return sa.table('deployments', sa.column('id', sa.String), *columns)


def upgrade():
    op.add_column('deployments', sa.Column('secrets', sa.JSON(), nullable=True))
    op.add_column('deployments', sa.Column('secrets_masked', sa.JSON(), nullable=True))
    op.add_column('deployments', sa.Column('secrets_origin', sa.String(length=320),
                                           nullable=True))
    old = _table(sa.column('api_key_encrypted', sa.Text), sa.column('api_key_masked', sa.String),
                 sa.column('api_key_origin', sa.String))
    new = _table(sa.column('secrets', sa.JSON), sa.column('secrets_masked', sa.JSON),
                 sa.column('secrets_origin', sa.String))
    connection = op.get_bind()
    for row in connection.execute(sa.select(old)).mappings().all():
        stored = row['api_key_encrypted']
        connection.execute(new.update().where(new.c.id == row['id']).values(
            secrets={'api_key': stored} if stored else {},
            secrets_masked={'api_key': row['api_key_masked']} if stored else {},
            secrets_origin=row['api_key_origin']))
    for column in ('api_key_encrypted', 'api_key_masked', 'api_key_origin'):
        op.drop_column('deployments', column)


def downgrade():
    op.add_column('deployments', sa.Column('api_key_encrypted', sa.Text(), nullable=True))
    op.add_column('deployments', sa.Column('api_key_masked', sa.String(length=16),
                                           nullable=True))
    op.add_column('deployments', sa.Column('api_key_origin', sa.String(length=320),
                                           nullable=True))
    new = _table(sa.column('secrets', sa.JSON), sa.column('secrets_masked', sa.JSON),
                 sa.column('secrets_origin', sa.String))
    old = _table(sa.column('api_key_encrypted', sa.Text), sa.column('api_key_masked', sa.String),
                 sa.column('api_key_origin', sa.String))
    connection = op.get_bind()
    for row in connection.execute(sa.select(new)).mappings().all():
        connection.execute(old.update().where(old.c.id == row['id']).values(
            api_key_encrypted=(row['secrets'] or {}).get('api_key'),
            api_key_masked=(row['secrets_masked'] or {}).get('api_key'),
            api_key_origin=row['secrets_origin']))
    for column in ('secrets', 'secrets_masked', 'secrets_origin'):
        op.drop_column('deployments', column)
