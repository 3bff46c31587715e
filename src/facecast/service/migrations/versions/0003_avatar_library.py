"""avatar library: metadata, thumbnails, previews, video avatars

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 17:40:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('avatars', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=16), nullable=False,
                                      server_default='custom'))
        batch_op.add_column(sa.Column('external_id', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('age', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('style', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('region', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('job_id', Id, nullable=True))
        batch_op.add_column(sa.Column('package_key', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('thumbnail_key', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('preview_key', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('preview_state', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('preview_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('info', sa.JSON(), nullable=True))
        batch_op.create_foreign_key('fk_avatars_job_id_jobs', 'jobs', ['job_id'], ['id'])
        batch_op.create_index('ix_avatars_kind_status', ['kind', 'status'], unique=False)
    # rows made before this revision: library avatars are the ones with a builtin_key
    op.execute("UPDATE avatars SET source = 'builtin' WHERE builtin_key IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table('avatars', schema=None) as batch_op:
        batch_op.drop_index('ix_avatars_kind_status')
        batch_op.drop_constraint('fk_avatars_job_id_jobs', type_='foreignkey')
        for name in ('info', 'preview_at', 'preview_state', 'preview_key', 'thumbnail_key',
                     'package_key', 'job_id', 'region', 'style', 'age', 'external_id',
                     'source'):
            batch_op.drop_column(name)
