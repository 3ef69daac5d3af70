"""teaching assistant: 立意 analyses, 素材 picks and a school's own 素材, 教案 with versions (issue 20)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08 03:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('topic_analyses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cache_key', sa.String(length=64), nullable=False),
    sa.Column('prompt_text', sa.Text(), nullable=False),
    sa.Column('rubric_ref', sa.String(length=500), nullable=False),
    sa.Column('rubric_version', sa.String(length=40), nullable=False),
    sa.Column('status', sa.Enum('queued', 'running', 'done', 'failed', name='jobstatus', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('angles', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('model_name', sa.String(length=200), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_topic_analyses')),
    sa.UniqueConstraint('cache_key', name=op.f('uq_topic_analyses_cache_key'))
    )
    op.create_table('material_picks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cache_key', sa.String(length=64), nullable=False),
    sa.Column('school_id', sa.Integer(), nullable=True),
    sa.Column('prompt_text', sa.Text(), nullable=False),
    sa.Column('angle', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('candidates', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.Enum('queued', 'running', 'done', 'failed', name='jobstatus', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('picks', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('model_name', sa.String(length=200), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['school_id'], ['schools.id'], name=op.f('fk_material_picks_school_id_schools'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_material_picks')),
    sa.UniqueConstraint('cache_key', name=op.f('uq_material_picks_cache_key'))
    )
    with op.batch_alter_table('material_picks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_material_picks_school_id'), ['school_id'], unique=False)

    op.create_table('school_materials',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('school_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('themes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('origin', sa.String(length=300), nullable=False),
    sa.Column('source', sa.String(length=500), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_school_materials_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['school_id'], ['schools.id'], name=op.f('fk_school_materials_school_id_schools'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_school_materials')),
    sa.UniqueConstraint('school_id', 'title', name=op.f('uq_school_materials_school_id_title'))
    )
    with op.batch_alter_table('school_materials', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_school_materials_school_id'), ['school_id'], unique=False)

    op.create_table('assignment_topics',
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('analysis_id', sa.Integer(), nullable=True),
    sa.Column('edited_angles', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('chosen', sa.Integer(), nullable=True),
    sa.Column('pick_id', sa.Integer(), nullable=True),
    sa.Column('updated_by', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['analysis_id'], ['topic_analyses.id'], name=op.f('fk_assignment_topics_analysis_id_topic_analyses'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignments.id'], name=op.f('fk_assignment_topics_assignment_id_assignments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['pick_id'], ['material_picks.id'], name=op.f('fk_assignment_topics_pick_id_material_picks'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['updated_by'], ['users.id'], name=op.f('fk_assignment_topics_updated_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('assignment_id', name=op.f('pk_assignment_topics'))
    )
    op.create_table('lesson_plans',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('school_id', sa.Integer(), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('goal', sa.Text(), nullable=False),
    sa.Column('facts', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.Enum('queued', 'running', 'done', 'failed', name='jobstatus', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('model_name', sa.String(length=200), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignments.id'], name=op.f('fk_lesson_plans_assignment_id_assignments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_lesson_plans_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['school_id'], ['schools.id'], name=op.f('fk_lesson_plans_school_id_schools'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lesson_plans'))
    )
    with op.batch_alter_table('lesson_plans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lesson_plans_assignment_id'), ['assignment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_lesson_plans_school_id'), ['school_id'], unique=False)

    op.create_table('lesson_plan_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('content', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_lesson_plan_versions_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['plan_id'], ['lesson_plans.id'], name=op.f('fk_lesson_plan_versions_plan_id_lesson_plans'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lesson_plan_versions')),
    sa.UniqueConstraint('plan_id', 'version', name=op.f('uq_lesson_plan_versions_plan_id_version'))
    )
    with op.batch_alter_table('lesson_plan_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lesson_plan_versions_plan_id'), ['plan_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('lesson_plan_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lesson_plan_versions_plan_id'))

    op.drop_table('lesson_plan_versions')
    with op.batch_alter_table('lesson_plans', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lesson_plans_school_id'))
        batch_op.drop_index(batch_op.f('ix_lesson_plans_assignment_id'))

    op.drop_table('lesson_plans')
    op.drop_table('assignment_topics')
    with op.batch_alter_table('school_materials', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_school_materials_school_id'))

    op.drop_table('school_materials')
    with op.batch_alter_table('material_picks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_material_picks_school_id'))

    op.drop_table('material_picks')
    op.drop_table('topic_analyses')
