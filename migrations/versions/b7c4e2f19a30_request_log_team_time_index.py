"""request log: index on (team_id, created_at) for a team's recent calls and spend

Revision ID: b7c4e2f19a30
Revises: a63ec1d7b2cd
Create Date: 2026-11-27 16:00:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'b7c4e2f19a30'
down_revision = 'a63ec1d7b2cd'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('request_log', schema=None) as batch_op:
        batch_op.create_index('ix_request_log_team_id_created_at', ['team_id', 'created_at'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('request_log', schema=None) as batch_op:
        batch_op.drop_index('ix_request_log_team_id_created_at')
