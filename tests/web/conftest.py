"""Web fixtures: the app on the test PostgreSQL database, a task recorder instead of the broker, a test world."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from services.web.app import create_app
from services.web.guards import session_fingerprint
from services.web.state import app_state
from shared.models import User
from shared.settings import Settings
from tests.factories.world import World, build_world, destroy_world

PASSWORD = "correct-horse-battery"
SECRET = "web-test-secret-key"
CSRF = "test-csrf-token-0123456789"


class TaskRecorder:
    """Stands in for the Celery app: records the tasks the web would have sent by name."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[Any]]] = []

    def send_task(self, name: str, args: Any = (), **_options: Any) -> None:
        self.sent.append((name, list(args)))

    def names(self) -> list[str]:
        return [name for name, _ in self.sent]


def make_app(database_url: str, broker_url: str, data_dir: Path, **overrides: Any) -> Flask:
    app = create_app(Settings(database_url=database_url, broker_url=broker_url, data_dir=data_dir,
                              secret_key=SECRET, **overrides))
    app.config["TESTING"] = True
    app_state(app).sender = TaskRecorder()
    return app


@pytest.fixture(scope="session")
def password_hash() -> str:
    """A real argon2 hash with small cost parameters (verification reads them from the hash), so logins are fast."""
    return PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)


@pytest.fixture(scope="module")
def web_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("web-data")


@pytest.fixture(scope="module")
def app(pg_url: str, redis_url: str, web_data_dir: Path) -> Iterator[Flask]:
    application = make_app(pg_url, redis_url, web_data_dir)
    yield application
    app_state(application).engine.dispose()


@pytest.fixture()
def sessions(app: Flask) -> sessionmaker[Session]:
    return app_state(app).sessions


@pytest.fixture()
def tasks(app: Flask) -> TaskRecorder:
    recorder: TaskRecorder = app_state(app).sender
    recorder.sent.clear()
    return recorder


@pytest.fixture()
def world(app: Flask, password_hash: str, web_data_dir: Path) -> Iterator[World]:
    sessions = app_state(app).sessions
    built = build_world(sessions, password_hash, web_data_dir)
    yield built
    destroy_world(sessions, built)


def client_as(app: Flask, user_id: int | None) -> FlaskClient:
    """A test client signed in as ``user_id`` (through the session, as a real login leaves it)."""
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["csrf"] = CSRF
        if user_id is not None:
            with app_state(app).sessions() as session:
                account = session.get(User, user_id)
                assert account is not None
                sess["uid"] = account.id
                sess["fp"] = session_fingerprint(account)
    return client


@pytest.fixture()
def login(app: Flask, world: World):  # type: ignore[no-untyped-def]
    """``login("owner")`` → a client signed in as that world user."""

    def _login(key: str) -> FlaskClient:
        return client_as(app, world.users[key])

    return _login


def form(**fields: Any) -> dict[str, Any]:
    """Form data with the test session's CSRF token."""
    return {"csrf_token": CSRF, **fields}
