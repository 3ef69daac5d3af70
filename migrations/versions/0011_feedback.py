"""feedback sheets and training plans (issue 16): no schema change

Feedback sheets are built on request from the grades and plans already stored, and a plan's per-area target
(``goal``) lives in the existing ``training_plans.focus_areas`` JSON, so this revision only keeps the chain linear.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 02:30:00.000000
"""
from collections.abc import Sequence

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
