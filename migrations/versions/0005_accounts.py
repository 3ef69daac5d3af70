"""accounts and sessions: session version, password policy, token expiry (issue 15/16)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08 02:30:00.000000
"""
from collections.abc import Sequence

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
