"""spend: cost and cache tokens on each request-log row; spend per subject for budgets

Revision ID: e4a9c1d7f352
Revises: d81f3a6b2c07
Create Date: 2026-12-02 15:00:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'e4a9c1d7f352'
down_revision = 'd81f3a6b2c07'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('request_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cache_read_tokens', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('cache_creation_tokens', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('cost', sa.Double(), nullable=True))
    op.create_table(
        'spend',
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('subject_id', sa.String(length=512), nullable=False),
        sa.Column('spend', sa.Double(), nullable=False),
        sa.Column('budget_reset_at', sa.DateTime(), nullable=True),
        sa.Column('soft_alerted_at', sa.DateTime(), nullable=True),
        sa.Column('max_budget', sa.Double(), nullable=True),
        sa.Column('budget_duration', sa.String(length=16), nullable=True),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('kind', 'subject_id'),
    )


def downgrade():
    op.drop_table('spend')
    with op.batch_alter_table('request_log', schema=None) as batch_op:
        batch_op.drop_column('cost')
        batch_op.drop_column('cache_creation_tokens')
        batch_op.drop_column('cache_read_tokens')
