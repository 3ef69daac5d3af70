"""Login rate limiting: at most 5 failed logins per username and IP address in 15 minutes.

The count comes from the audit log in the database (``auth.login_failed`` rows since the last success),
so the limit holds across web processes and restarts and needs no extra table.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.models import AuditLog
from shared.models.base import utcnow

MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)
LOGIN_FAILED = "auth.login_failed"
LOGIN_SUCCESS = "auth.login_success"


def _same_attempt(username: str, ip: str | None) -> list:  # type: ignore[type-arg]
    ip_match = AuditLog.ip.is_(None) if ip is None else AuditLog.ip == ip
    return [AuditLog.actor == username[:120], ip_match]


def recent_failures(session: Session, username: str, ip: str | None) -> int:
    """Failed logins for this username from this address within the window and after the last success."""
    since = utcnow() - WINDOW
    last_success = session.scalar(
        select(func.max(AuditLog.at)).where(AuditLog.action == LOGIN_SUCCESS, *_same_attempt(username, ip))
    )
    if last_success is not None:
        if last_success.tzinfo is None:  # SQLite gives naive UTC datetimes back
            last_success = last_success.replace(tzinfo=since.tzinfo)
        since = max(since, last_success)
    return session.scalar(
        select(func.count()).select_from(AuditLog).where(
            AuditLog.action == LOGIN_FAILED, AuditLog.at > since, *_same_attempt(username, ip)
        )
    ) or 0


def is_blocked(session: Session, username: str, ip: str | None) -> bool:
    return recent_failures(session, username, ip) >= MAX_FAILURES
