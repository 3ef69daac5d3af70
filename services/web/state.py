"""The web app's state in one typed place: settings, database engine and sessions, the task sender.

Built once by the app factory; blueprints and helpers read it through ``app_state()`` and never import the
factory module back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from shared.settings import Settings

EXTENSION = "yuejuan"


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    # Anything with ``send_task(name, args=...)``: the Celery app, made on first use (tests put a recorder here).
    sender: Any = None

    def task_sender(self) -> Any:
        if self.sender is None:
            from shared.celery_app import make_celery

            self.sender = make_celery(self.settings)
        return self.sender


def app_state(app: Flask | None = None) -> AppState:
    """The state of ``app``, or of the app handling the current request."""
    state: AppState = (app or current_app).extensions[EXTENSION]
    return state
