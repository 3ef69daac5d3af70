"""Flask application factory: extensions and blueprints are wired in one place."""

from __future__ import annotations

import logging

from flask import Flask

from services.web.state import EXTENSION, AppState
from shared.file_modes import make_private_dir, restrict_umask
from shared.models import make_engine, make_session_factory
from shared.settings import Settings, load_settings

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    restrict_umask()  # uploads, previews and the SQLite database are private to the service's user
    make_private_dir(settings.data_dir)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        # The whole request (every file of a multi-file upload plus the form) must fit; otherwise 413.
        MAX_CONTENT_LENGTH=settings.max_upload_mb * 1024 * 1024,
        MAX_FORM_MEMORY_SIZE=2 * 1024 * 1024,
    )
    engine = make_engine(settings.resolved_database_url())
    app.extensions[EXTENSION] = AppState(settings=settings, engine=engine, sessions=make_session_factory(engine))

    _wire(app, settings)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # JSON is UTF-8: 张三, not \u5f20\u4e09
    return app


def _wire(app: Flask, settings: Settings) -> None:
    """Security, errors, the per-request user and database session, template helpers and blueprints."""
    from services.web.context import close_db
    from services.web.errors import init_errors
    from services.web.guards import keep_students_to_their_pages, load_session_user
    from services.web.network import init_network
    from services.web.numbers import init_numbers
    from services.web.security import init_security
    from services.web.templating import init_templating
    from services.web.views import (
        accounts,
        adapters,
        admin,
        api,
        assignments,
        auth,
        classes,
        essays,
        evaluations,
        feedback,
        health,
        marking,
        marking_api,
        metrics,
        privacy,
        reports,
        reports_api,
        rubrics,
        student,
        student_admin,
        teaching,
        teaching_api,
        uploads,
    )

    init_numbers(app)
    init_network(app, settings)
    init_security(app, settings)
    init_errors(app)
    init_templating(app)
    app.before_request(load_session_user)
    app.before_request(keep_students_to_their_pages)
    app.teardown_appcontext(close_db)
    for module in (health, metrics, auth, classes, assignments, uploads, essays, reports, admin, evaluations, privacy,
                   rubrics, api, reports_api, accounts, feedback, marking, marking_api, adapters,
                   student, student_admin, teaching, teaching_api):
        app.register_blueprint(module.bp)
