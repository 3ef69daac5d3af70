"""double marking, calibration, confidence (issues 14/17)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 02:30:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('double_marking', sa.String(length=20), server_default='off', nullable=False))
        batch_op.add_column(sa.Column('double_marking_share', sa.Integer(), server_default='0', nullable=False))
    with op.batch_alter_table('grades', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reading', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('confidence', sa.Float(), nullable=True))

    op.create_table(
        'classroom_roles',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('classroom_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('role', sa.Enum('lead', name='classrole', native_enum=False, create_constraint=True, length=20),
                  nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['classroom_id'], ['classrooms.id'],
                                name=op.f('fk_classroom_roles_classroom_id_classrooms'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_classroom_roles_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_classroom_roles')),
        sa.UniqueConstraint('classroom_id', 'user_id', 'role',
                            name=op.f('uq_classroom_roles_classroom_id_user_id_role')),
    )
    with op.batch_alter_table('classroom_roles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_classroom_roles_classroom_id'), ['classroom_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_classroom_roles_user_id'), ['user_id'], unique=False)

    op.create_table(
        'double_mark_cases',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('essay_id', sa.Integer(), nullable=False),
        sa.Column('assignment_id', sa.Integer(), nullable=False),
        sa.Column('status', sa.Enum('awaiting_arbitration', 'settled', name='casestatus', native_enum=False,
                                    create_constraint=True, length=30), nullable=False),
        sa.Column('needs', sa.String(length=30), nullable=True),
        sa.Column('readings', sa.Integer(), nullable=False),
        sa.Column('totals', JSON, nullable=False),
        sa.Column('final_total', sa.Integer(), nullable=True),
        sa.Column('final_rule', sa.String(length=30), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['assignment_id'], ['assignments.id'],
                                name=op.f('fk_double_mark_cases_assignment_id_assignments'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['essay_id'], ['essays.id'], name=op.f('fk_double_mark_cases_essay_id_essays'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_double_mark_cases')),
        sa.UniqueConstraint('essay_id', name=op.f('uq_double_mark_cases_essay_id')),
    )
    with op.batch_alter_table('double_mark_cases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_double_mark_cases_assignment_id'), ['assignment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_double_mark_cases_status'), ['status'], unique=False)

    op.create_table(
        'calibrations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('assignment_id', sa.Integer(), nullable=False),
        sa.Column('anchors', sa.Integer(), nullable=False),
        sa.Column('method', sa.String(length=20), nullable=False),
        sa.Column('maps', JSON, nullable=False),
        sa.Column('fitted_by', sa.Integer(), nullable=True),
        sa.Column('fitted_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['assignment_id'], ['assignments.id'],
                                name=op.f('fk_calibrations_assignment_id_assignments'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['fitted_by'], ['users.id'], name=op.f('fk_calibrations_fitted_by_users'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_calibrations')),
        sa.UniqueConstraint('assignment_id', name=op.f('uq_calibrations_assignment_id')),
    )

    op.create_table(
        'agreement_settings',
        sa.Column('school_id', sa.Integer(), nullable=False),
        sa.Column('qwk_threshold', sa.Float(), nullable=False),
        sa.Column('updated_by', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['school_id'], ['schools.id'], name=op.f('fk_agreement_settings_school_id_schools'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['updated_by'], ['users.id'], name=op.f('fk_agreement_settings_updated_by_users'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('school_id', name=op.f('pk_agreement_settings')),
    )


def downgrade() -> None:
    op.drop_table('agreement_settings')
    op.drop_table('calibrations')
    with op.batch_alter_table('double_mark_cases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_double_mark_cases_status'))
        batch_op.drop_index(batch_op.f('ix_double_mark_cases_assignment_id'))
    op.drop_table('double_mark_cases')
    with op.batch_alter_table('classroom_roles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_classroom_roles_user_id'))
        batch_op.drop_index(batch_op.f('ix_classroom_roles_classroom_id'))
    op.drop_table('classroom_roles')
    with op.batch_alter_table('grades', schema=None) as batch_op:
        batch_op.drop_column('confidence')
        batch_op.drop_column('reading')
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.drop_column('double_marking_share')
        batch_op.drop_column('double_marking')
