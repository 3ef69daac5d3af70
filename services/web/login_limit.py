"""Login rate limiting: at most 5 attempts per username and address in 15 minutes (counted from the first) until a
successful login clears the count.

An attempt claims its slot *before* the password is checked, with one conditional UPDATE
(``attempts = attempts + 1 WHERE attempts < 5``): the database serialises concurrent claims on the row, so however
many guesses arrive at once, exactly five get a password check. A success deletes the row; a failure keeps its
slot. Audit rows (``auth.login_failed``, ``auth.login_blocked``) still record every attempt.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import case, delete, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from shared.models import LoginThrottle
from shared.models.base import utcnow
from shared.models.org import username_key

MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)
LOGIN_FAILED = "auth.login_failed"
LOGIN_SUCCESS = "auth.login_success"


def _key(username: str, ip: str | None) -> tuple[str, str]:
    return username_key(username)[:120], (ip or "")[:64]


def claim_attempt(session: Session, username: str, ip: str | None) -> bool:
    """Take one of the window's attempts for (username, ip) and commit; False when none is left (blocked)."""
    name, address = _key(username, ip)
    now = utcnow()
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(LoginThrottle).values(username_key=name, ip=address, attempts=0, window_start=now)
                    .on_conflict_do_nothing())
    expired = LoginThrottle.window_start < now - WINDOW
    claimed = session.execute(
        update(LoginThrottle)
        .where(LoginThrottle.username_key == name, LoginThrottle.ip == address,
               (LoginThrottle.attempts < MAX_FAILURES) | expired)
        .values(attempts=case((expired, 1), else_=LoginThrottle.attempts + 1),
                window_start=case((expired, now), else_=LoginThrottle.window_start))
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    return claimed == 1


def clear_attempts(session: Session, username: str, ip: str | None) -> None:
    """After a successful login: the count for this username and address starts again (in the caller's commit)."""
    name, address = _key(username, ip)
    session.execute(delete(LoginThrottle).where(LoginThrottle.username_key == name, LoginThrottle.ip == address)
                    .execution_options(synchronize_session=False))


def attempts_left(session: Session, username: str, ip: str | None) -> int:
    name, address = _key(username, ip)
    row = session.get(LoginThrottle, (name, address))
    if row is None:
        return MAX_FAILURES
    start = row.window_start if row.window_start.tzinfo else row.window_start.replace(tzinfo=utcnow().tzinfo)
    if start < utcnow() - WINDOW:
        return MAX_FAILURES
    return max(0, MAX_FAILURES - row.attempts)
