"""essay lease: a grading claim holds its essays until lease_until; the worker renews it while it works

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 12:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('essays', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('essays', schema=None) as batch_op:
        batch_op.drop_column('lease_until')
