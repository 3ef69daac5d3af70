"""Flask application factory: extensions and blueprints are wired in one place."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from shared.models import make_engine, make_session_factory
from shared.settings import Settings, load_settings

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_upload_mb * 1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    engine = make_engine(settings.resolved_database_url())
    app.extensions["yuejuan"] = {
        "settings": settings,
        "engine": engine,
        "sessions": make_session_factory(engine),
        "celery": None,
    }

    from services.web.health import bp as health_bp

    app.register_blueprint(health_bp)
    return app


def ext(app: Flask) -> dict[str, Any]:
    return app.extensions["yuejuan"]


def celery_for(app: Flask):  # type: ignore[no-untyped-def]
    """The Celery app used only to send tasks by name (created lazily; no torch is imported)."""
    state = ext(app)
    if state["celery"] is None:
        from services.worker.celery_app import make_celery

        state["celery"] = make_celery(state["settings"])
    return state["celery"]
