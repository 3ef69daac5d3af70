"""One Celery worker process: prefork with a single child that loads the model after the fork."""

from __future__ import annotations

import logging

from shared.settings import Settings
from shared.worker_health import WorkerState

logger = logging.getLogger(__name__)

MODEL_LOAD_FAILED_EXIT = 3


def run_worker_process(settings: Settings, queues: list[str], hostname: str) -> int:
    from services.worker import runtime
    from services.worker.tasks import register_tasks
    from shared.celery_app import make_celery

    app = make_celery(settings)
    register_tasks(app)
    runtime.configure(settings, worker_id=hostname, queues=queues, load_model="gpu" in queues)
    runtime.forget_dead_workers()
    # The gpu queue gets one child (one model per GPU); report building is CPU work and may use two.
    concurrency = 1 if "gpu" in queues else 2
    argv = [
        "worker", "--queues", ",".join(queues), "--hostname", hostname, "--pool", "prefork",
        "--concurrency", str(concurrency), "--loglevel", "INFO", "--without-gossip", "--without-mingle",
    ]
    code = 0
    try:
        app.worker_main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    if runtime.mark_stopped() == WorkerState.failed:
        logger.critical("worker %s stopped because its model could not be loaded", hostname)
        return MODEL_LOAD_FAILED_EXIT
    return code
