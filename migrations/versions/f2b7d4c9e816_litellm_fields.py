"""LiteLLM fields: what teams, keys and users store of LiteLLM's fields without acting on them
(extra), a team's model_aliases, a user's LiteLLM role, and when a key last changed

Revision ID: f2b7d4c9e816
Revises: c3d9a5e27b14
Create Date: 2026-12-07 16:00:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'f2b7d4c9e816'
down_revision = 'c3d9a5e27b14'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('teams', schema=None) as batch_op:
        batch_op.add_column(sa.Column('extra', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('model_aliases', sa.JSON(), nullable=True))
    with op.batch_alter_table('virtual_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('extra', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('updated_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('extra', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('role', sa.String(length=32), nullable=True))


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('role')
        batch_op.drop_column('extra')
    with op.batch_alter_table('virtual_keys', schema=None) as batch_op:
        batch_op.drop_column('updated_at')
        batch_op.drop_column('extra')
    with op.batch_alter_table('teams', schema=None) as batch_op:
        batch_op.drop_column('model_aliases')
        batch_op.drop_column('extra')
