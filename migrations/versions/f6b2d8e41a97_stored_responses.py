"""stored responses: which deployment made a Responses API answer, and the conversations
Teamgate keeps for deployments reached through chat completions, each for a bounded time

Revision ID: f6b2d8e41a97
Revises: f2b7d4c9e816
Create Date: 2026-12-07 16:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f6b2d8e41a97'
down_revision = 'f2b7d4c9e816'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('stored_responses',
    sa.Column('owner', sa.String(length=80), nullable=False),
    sa.Column('response_id', sa.String(length=128), nullable=False),
    sa.Column('deployment_id', sa.String(length=64), nullable=False),
    sa.Column('public_model', sa.String(length=256), nullable=False),
    sa.Column('conversation', sa.Text(), nullable=True),
    sa.Column('kept', sa.Boolean(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('owner', 'response_id')
    )
    with op.batch_alter_table('stored_responses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stored_responses_expires_at'), ['expires_at'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('stored_responses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stored_responses_expires_at'))
    op.drop_table('stored_responses')
