"""Ops fixtures: the web app on the test PostgreSQL database with the real Redis broker and its own data dir."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from services.web.app import create_app
from services.web.state import app_state
from shared.settings import Settings
from tests.factories.people import People, build_people, remove_people

SECRET = "ops-test-secret-key"
AppFactory = Callable[..., Flask]
PeopleFactory = Callable[..., People]


@pytest.fixture()
def make_ops_app(pg_url: str, redis_url: str, tmp_path: Path) -> Iterator[AppFactory]:
    """Build apps (PostgreSQL, Redis, ``tmp_path/data``) with settings overrides; engines are disposed after."""
    built: list[Flask] = []

    def _make(**overrides: Any) -> Flask:
        values: dict[str, Any] = {"database_url": pg_url, "broker_url": redis_url, "data_dir": tmp_path / "data",
                                  "secret_key": SECRET, **overrides}
        app = create_app(Settings(**values))
        app.config["TESTING"] = True
        built.append(app)
        return app

    yield _make
    for app in built:
        app_state(app).engine.dispose()


@pytest.fixture()
def ops_app(make_ops_app: AppFactory) -> Flask:
    return make_ops_app()


@pytest.fixture()
def ops_sessions(ops_app: Flask) -> sessionmaker[Session]:
    return app_state(ops_app).sessions


@pytest.fixture()
def make_people() -> Iterator[PeopleFactory]:
    """``make_people(sessions, data_dir, **kw)`` builds a test school; every one built is removed afterwards."""
    built: list[tuple[sessionmaker[Session], People]] = []

    def _make(sessions: sessionmaker[Session], data_dir: Path, **kwargs: Any) -> People:
        people = build_people(sessions, data_dir, **kwargs)
        built.append((sessions, people))
        return people

    yield _make
    for sessions, people in built:
        remove_people(sessions, people)
