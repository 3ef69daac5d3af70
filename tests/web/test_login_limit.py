"""The login limit holds under concurrency: each attempt claims its slot with one conditional UPDATE, so of 24
guesses arriving at once exactly 5 get a password check, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

from flask import Flask
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from services.web.login_limit import MAX_FAILURES, attempts_left, claim_attempt, clear_attempts
from shared.models import LoginThrottle
from tests.factories.world import World
from tests.web.conftest import CSRF, PASSWORD, form

GUESSES = 24


def _concurrent_claims(sessions: sessionmaker[Session], username: str, ip: str) -> list[bool]:
    barrier = threading.Barrier(GUESSES)

    def guess(_: int) -> bool:
        with sessions() as session:
            barrier.wait()
            return claim_attempt(session, username, ip)

    with ThreadPoolExecutor(GUESSES) as pool:
        return list(pool.map(guess, range(GUESSES)))


def test_24_concurrent_claims_let_exactly_five_through(db_sessions: sessionmaker[Session]) -> None:
    username, ip = f"victim-{uuid.uuid4().hex[:8]}", "203.0.113.9"
    try:
        results = _concurrent_claims(db_sessions, username, ip)
        assert results.count(True) == MAX_FAILURES and results.count(False) == GUESSES - MAX_FAILURES
        with db_sessions() as session:
            assert attempts_left(session, username, ip) == 0
            # The same username in another case is the same account: still blocked.
            assert not claim_attempt(session, username.upper(), ip)
            # Another address has its own count.
            assert claim_attempt(session, username, "198.51.100.1")
            clear_attempts(session, username, ip)
            session.commit()
            assert attempts_left(session, username, ip) == MAX_FAILURES
    finally:
        with db_sessions() as session, session.begin():
            session.execute(delete(LoginThrottle).where(LoginThrottle.username_key == username))


def test_concurrent_wrong_passwords_through_the_web_app(
    app: Flask, world: World, sessions: sessionmaker[Session]
) -> None:
    """24 concurrent wrong guesses at a real account through the login view: 5 are checked (401), 19 refused
    (429); the right password is refused too until the window passes."""
    username = world.usernames["outsider"]
    barrier = threading.Barrier(GUESSES)

    def guess(i: int) -> int:
        client = app.test_client()
        with client.session_transaction() as sess:
            sess["csrf"] = CSRF
        barrier.wait()
        return client.post("/login", data=form(username=username, password=f"wrong-guess-{i}"),
                           environ_base={"REMOTE_ADDR": "192.0.2.77"}).status_code

    try:
        with ThreadPoolExecutor(GUESSES) as pool:
            statuses = list(pool.map(guess, range(GUESSES)))
        assert statuses.count(401) == MAX_FAILURES and statuses.count(429) == GUESSES - MAX_FAILURES
        client = app.test_client()
        with client.session_transaction() as sess:
            sess["csrf"] = CSRF
        right = client.post("/login", data=form(username=username, password=PASSWORD),
                            environ_base={"REMOTE_ADDR": "192.0.2.77"})
        assert right.status_code == 429
    finally:
        with sessions() as session, session.begin():
            session.execute(delete(LoginThrottle).where(LoginThrottle.username_key == username.casefold()))
