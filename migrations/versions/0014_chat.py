"""student Q&A chat (issue 21)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08 03:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_ROLES = ('teacher', 'school_admin', 'sysadmin')
NEW_ROLES = (*OLD_ROLES, 'student')
TURN_STATUSES = ('queued', 'streaming', 'done', 'blocked', 'refused', 'failed')
JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), 'postgresql')


def _role(values: tuple[str, ...]) -> sa.Enum:
    return sa.Enum(*values, name='role', native_enum=False, create_constraint=True, length=20)


def upgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.alter_column('role', existing_type=_role(OLD_ROLES), type_=_role(NEW_ROLES), existing_nullable=False)
        batch.add_column(sa.Column('student_id', sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f('fk_users_student_id_students'), 'students', ['student_id'], ['id'],
                                 ondelete='CASCADE')
        batch.create_unique_constraint(op.f('uq_users_student_id'), ['student_id'])
    op.create_table(
        'student_access',
        sa.Column('classroom_id', sa.Integer(), nullable=False),
        sa.Column('grades_open', sa.Boolean(), nullable=False),
        sa.Column('chat_open', sa.Boolean(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['classroom_id'], ['classrooms.id'],
                                name=op.f('fk_student_access_classroom_id_classrooms'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('classroom_id', name=op.f('pk_student_access')),
    )
    op.create_table(
        'student_codes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('student_id', sa.Integer(), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_student_codes_created_by_id_users'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['student_id'], ['students.id'], name=op.f('fk_student_codes_student_id_students'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_student_codes')),
        sa.UniqueConstraint('code_hash', name=op.f('uq_student_codes_code_hash')),
    )
    op.create_index(op.f('ix_student_codes_student_id'), 'student_codes', ['student_id'])
    op.create_table(
        'chat_sessions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('student_id', sa.Integer(), nullable=False),
        sa.Column('last_active_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['student_id'], ['students.id'], name=op.f('fk_chat_sessions_student_id_students'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_chat_sessions')),
    )
    op.create_index(op.f('ix_chat_sessions_student_id'), 'chat_sessions', ['student_id'])
    op.create_index(op.f('ix_chat_sessions_last_active_at'), 'chat_sessions', ['last_active_at'])
    op.create_table(
        'chat_turns',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('session_id', sa.Integer(), nullable=False),
        sa.Column('student_id', sa.Integer(), nullable=False),
        sa.Column('classroom_id', sa.Integer(), nullable=False),
        sa.Column('question', sa.Text(), nullable=False),
        sa.Column('answer', sa.Text(), nullable=False),
        sa.Column('status', sa.Enum(*TURN_STATUSES, name='turnstatus', native_enum=False, create_constraint=True,
                                    length=20), nullable=False),
        sa.Column('notice', sa.String(length=200), nullable=True),
        sa.Column('topic', sa.String(length=40), nullable=False),
        sa.Column('sources', JSON, nullable=False),
        sa.Column('new_tokens', sa.Integer(), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['classroom_id'], ['classrooms.id'], name=op.f('fk_chat_turns_classroom_id_classrooms'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['session_id'], ['chat_sessions.id'],
                                name=op.f('fk_chat_turns_session_id_chat_sessions'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['student_id'], ['students.id'], name=op.f('fk_chat_turns_student_id_students'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_chat_turns')),
    )
    for column in ('session_id', 'student_id', 'classroom_id'):
        op.create_index(op.f(f'ix_chat_turns_{column}'), 'chat_turns', [column])
    op.create_table(
        'chat_materials',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('classroom_id', sa.Integer(), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('uploaded_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['classroom_id'], ['classrooms.id'],
                                name=op.f('fk_chat_materials_classroom_id_classrooms'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['uploaded_by_id'], ['users.id'], name=op.f('fk_chat_materials_uploaded_by_id_users'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_chat_materials')),
    )
    op.create_index(op.f('ix_chat_materials_classroom_id'), 'chat_materials', ['classroom_id'])
    op.create_table(
        'chat_chunks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('material_id', sa.Integer(), nullable=False),
        sa.Column('ordinal', sa.Integer(), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('tokens', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['material_id'], ['chat_materials.id'],
                                name=op.f('fk_chat_chunks_material_id_chat_materials'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_chat_chunks')),
    )
    op.create_index(op.f('ix_chat_chunks_material_id'), 'chat_chunks', ['material_id'])
    op.create_table(
        'chat_blocked_words',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('school_id', sa.Integer(), nullable=False),
        sa.Column('word', sa.String(length=50), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['school_id'], ['schools.id'], name=op.f('fk_chat_blocked_words_school_id_schools'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_chat_blocked_words')),
        sa.UniqueConstraint('school_id', 'word', name=op.f('uq_chat_blocked_words_school_id_word')),
    )
    op.create_index(op.f('ix_chat_blocked_words_school_id'), 'chat_blocked_words', ['school_id'])


def downgrade() -> None:
    for table in ('chat_blocked_words', 'chat_chunks', 'chat_materials', 'chat_turns', 'chat_sessions',
                  'student_codes', 'student_access'):
        op.drop_table(table)
    op.execute("DELETE FROM users WHERE role = 'student'")
    with op.batch_alter_table('users') as batch:
        batch.drop_constraint(op.f('uq_users_student_id'), type_='unique')
        batch.drop_constraint(op.f('fk_users_student_id_students'), type_='foreignkey')
        batch.drop_column('student_id')
        batch.alter_column('role', existing_type=_role(NEW_ROLES), type_=_role(OLD_ROLES), existing_nullable=False)
