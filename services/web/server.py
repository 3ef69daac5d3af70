"""Serving the app factory: waitress (default, any platform) or gunicorn (the production image, several processes)."""

from __future__ import annotations

import logging
from typing import Any

from shared.settings import Settings

logger = logging.getLogger(__name__)

# Long enough for parsing a large upload; nginx in front buffers slow clients, so workers are not held by them.
GUNICORN_TIMEOUT_S = 180


def serve_waitress(settings: Settings, host: str, port: int, threads: int) -> None:
    from waitress import serve

    from services.web.app import create_app

    serve(create_app(settings), host=host, port=port, threads=threads)


def serve_gunicorn(settings: Settings, host: str, port: int, workers: int, threads: int) -> None:
    """Run gunicorn in this process (it forks ``workers`` processes, each building its own app and engine)."""
    from gunicorn.app.base import BaseApplication

    class _Gunicorn(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            options: dict[str, Any] = {
                "bind": f"{host}:{port}", "workers": workers, "threads": threads, "worker_class": "gthread",
                "timeout": GUNICORN_TIMEOUT_S, "graceful_timeout": 30, "accesslog": "-", "errorlog": "-",
                "preload_app": False,
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            from services.web.app import create_app

            return create_app(settings)

    logger.info("gunicorn on %s:%s with %s workers × %s threads", host, port, workers, threads)
    _Gunicorn().run()
