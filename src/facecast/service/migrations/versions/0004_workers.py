"""workers: each worker process's row (heartbeat, current job, counts)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 18:40:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'workers',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('hostname', sa.String(length=255), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('queue', sa.String(length=16), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('last_seen', sa.DateTime(), nullable=False),
        sa.Column('job_id', sa.BigInteger(), nullable=True),
        sa.Column('job_kind', sa.String(length=32), nullable=True),
        sa.Column('jobs_done', sa.Integer(), nullable=False),
        sa.Column('jobs_failed', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_workers_last_seen', 'workers', ['last_seen'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_workers_last_seen', table_name='workers')
    op.drop_table('workers')
