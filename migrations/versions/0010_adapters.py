"""LoRA adapters (issue 19)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 02:30:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
STATUSES = ('queued', 'training', 'evaluating', 'trained', 'active', 'rolled_back', 'cancelled', 'failed', 'deleted')


def upgrade() -> None:
    op.create_table(
        'adapters',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('school_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('status', sa.Enum(*STATUSES, name='adapterstatus', native_enum=False, length=20,
                                    create_constraint=True), nullable=False),
        sa.Column('base_model', sa.String(length=300), nullable=False),
        sa.Column('rubric_id', sa.String(length=500), nullable=False),
        sa.Column('rubric_version', sa.String(length=40), nullable=True),
        sa.Column('params', JSON, nullable=False),
        sa.Column('card', JSON, nullable=False),
        sa.Column('step', sa.Integer(), nullable=False),
        sa.Column('total_steps', sa.Integer(), nullable=False),
        sa.Column('losses', JSON, nullable=False),
        sa.Column('cancel_requested', sa.Boolean(), nullable=False),
        sa.Column('detail', sa.Text(), nullable=True),
        sa.Column('previous_id', sa.Integer(), nullable=True),
        sa.Column('activated_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['school_id'], ['schools.id'], name=op.f('fk_adapters_school_id_schools'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['previous_id'], ['adapters.id'], name=op.f('fk_adapters_previous_id_adapters'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_adapters_created_by_users'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_adapters')),
        sa.UniqueConstraint('name', name=op.f('uq_adapters_name')),
    )
    with op.batch_alter_table('adapters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_adapters_school_id'), ['school_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_adapters_status'), ['status'], unique=False)
    op.create_table(
        'adapter_students',
        sa.Column('adapter_id', sa.Integer(), nullable=False),
        sa.Column('student_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['adapter_id'], ['adapters.id'], name=op.f('fk_adapter_students_adapter_id_adapters'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('adapter_id', 'student_id', name=op.f('pk_adapter_students')),
    )
    with op.batch_alter_table('adapter_students', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_adapter_students_student_id'), ['student_id'], unique=False)
    with op.batch_alter_table('grades', schema=None) as batch_op:
        batch_op.add_column(sa.Column('adapter', sa.String(length=80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('grades', schema=None) as batch_op:
        batch_op.drop_column('adapter')
    op.drop_table('adapter_students')
    op.drop_table('adapters')
