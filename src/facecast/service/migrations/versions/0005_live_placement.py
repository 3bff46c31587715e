"""live placement: live workers (hosts of live sessions) and the placed sessions

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 23:40:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'live_workers',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('hostname', sa.String(length=255), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('rpc_url', sa.String(length=255), nullable=False),
        sa.Column('capacity', sa.Integer(), nullable=False),
        sa.Column('sessions', sa.Integer(), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('last_seen', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_live_workers_last_seen', 'live_workers', ['last_seen'], unique=False)
    op.create_table(
        'live_sessions',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('account_id', Id, nullable=False),
        sa.Column('worker_id', sa.BigInteger(), nullable=False),
        sa.Column('avatar_id', sa.BigInteger(), nullable=True),
        sa.Column('width', sa.Integer(), nullable=False),
        sa.Column('height', sa.Integer(), nullable=False),
        sa.Column('voice', sa.String(length=200), nullable=True),
        sa.Column('expression', sa.String(length=64), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('max_duration_s', sa.Float(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=True),
        sa.Column('ended_at', sa.DateTime(), nullable=True),
        sa.Column('ended_reason', sa.String(length=200), nullable=True),
        sa.Column('minutes_charged', sa.Integer(), nullable=False),
        sa.Column('credits_charged', sa.Integer(), nullable=False),
        sa.Column('viewers', sa.Integer(), nullable=False),
        sa.Column('media_seconds', sa.Float(), nullable=False),
        sa.Column('last_activity', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_live_sessions_account_id', 'live_sessions', ['account_id'],
                    unique=False)
    op.create_index('ix_live_sessions_worker_id', 'live_sessions', ['worker_id'], unique=False)
    op.create_index('ix_live_sessions_status', 'live_sessions', ['status'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_live_sessions_status', table_name='live_sessions')
    op.drop_index('ix_live_sessions_worker_id', table_name='live_sessions')
    op.drop_index('ix_live_sessions_account_id', table_name='live_sessions')
    op.drop_table('live_sessions')
    op.drop_index('ix_live_workers_last_seen', table_name='live_workers')
    op.drop_table('live_workers')
