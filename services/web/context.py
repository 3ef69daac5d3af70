"""Per-request access to the database session, the settings, the task sender and the client address."""

from __future__ import annotations

from typing import Any

from flask import g, request
from sqlalchemy.orm import Session, sessionmaker

from services.web.state import app_state
from shared.settings import Settings


def db() -> Session:
    """The request's database session, opened on first use and closed when the request ends."""
    if "db" not in g:
        g.db = app_state().sessions()
    return g.db


def close_db(_exc: BaseException | None = None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()


def settings() -> Settings:
    return app_state().settings


def task_sender() -> Any:
    """Something with ``send_task(name, args=...)``: the Celery app (tests may put a recorder in its place)."""
    return app_state().task_sender()


def client_ip() -> str | None:
    """The peer address as the WSGI server saw it (put ProxyFix in front when behind a reverse proxy)."""
    return (request.remote_addr or "")[:64] or None


def session_factory() -> sessionmaker[Session]:
    """For work that needs its own transaction beside the request's session."""
    return app_state().sessions
