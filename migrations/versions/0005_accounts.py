"""accounts and sessions: session version, password policy, token expiry (issue 15/16)

users.session_version (bumped to end every session of a user), users.username_key (trimmed, case-folded username
with a unique index, so no case or space twins), users.api_token_expires_at, and login_throttles (the login
limit's atomic counter). Existing tokens get 90 days from the upgrade; existing case twins stop the upgrade with
their names, for an administrator to rename one of them first.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08 02:30:00.000000
"""
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EXISTING_TOKEN_DAYS = 90


def _key(username: str) -> str:
    return unicodedata.normalize("NFKC", username).strip().casefold()


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('username_key', sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column('api_token_expires_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('session_version', sa.Integer(), server_default='0', nullable=False))
    conn = op.get_bind()
    users = sa.table('users', sa.column('id', sa.Integer), sa.column('username', sa.String),
                     sa.column('username_key', sa.String), sa.column('api_token_hash', sa.String),
                     sa.column('api_token_expires_at', sa.DateTime(timezone=True)))
    seen: dict[str, str] = {}
    for user_id, username in conn.execute(sa.select(users.c.id, users.c.username)).all():
        key = _key(username)
        if key in seen:
            raise RuntimeError(f"用户名 {seen[key]!r} 与 {username!r} 只差大小写或空格：请先改名其中一个再升级")
        seen[key] = username
        conn.execute(sa.update(users).where(users.c.id == user_id).values(username=username.strip(), username_key=key))
    conn.execute(sa.update(users).where(users.c.api_token_hash.is_not(None))
                 .values(api_token_expires_at=datetime.now(UTC) + timedelta(days=EXISTING_TOKEN_DAYS)))
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('username_key', existing_type=sa.String(length=80), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_users_username_key'), ['username_key'])
    op.create_table(
        'login_throttles',
        sa.Column('username_key', sa.String(length=120), nullable=False),
        sa.Column('ip', sa.String(length=64), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('username_key', 'ip', name=op.f('pk_login_throttles')),
    )


def downgrade() -> None:
    op.drop_table('login_throttles')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_users_username_key'), type_='unique')
        batch_op.drop_column('session_version')
        batch_op.drop_column('api_token_expires_at')
        batch_op.drop_column('username_key')
