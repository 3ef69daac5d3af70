"""One Celery worker process: prefork with a single child that loads the model after the fork."""

from __future__ import annotations

import logging

from shared.settings import Settings
from shared.tasks import CHAT_QUEUE, GPU_QUEUE
from shared.worker_health import WorkerState

logger = logging.getLogger(__name__)

MODEL_LOAD_FAILED_EXIT = 3


def consumed_queues(queues: list[str]) -> list[str]:
    """A grading worker also answers chat turns, and takes them first: with Redis the queues are polled in this
    order (``queue_order_strategy=priority``), so a chat turn waits at most for the batch being graded."""
    if GPU_QUEUE not in queues:
        return [q for q in queues if q != CHAT_QUEUE] + ([CHAT_QUEUE] if CHAT_QUEUE in queues else [])
    return [CHAT_QUEUE, *(q for q in queues if q != CHAT_QUEUE)]


def _needs_model(queues: list[str]) -> bool:
    return GPU_QUEUE in queues or CHAT_QUEUE in queues


def run_worker_process(settings: Settings, queues: list[str], hostname: str) -> int:
    from services.worker import runtime
    from services.worker.tasks import register_tasks
    from shared.celery_app import make_celery

    app = make_celery(settings)
    register_tasks(app)
    queues = consumed_queues(queues)
    runtime.configure(settings, worker_id=hostname, queues=queues, load_model=_needs_model(queues))
    runtime.forget_dead_workers()
    # The gpu queue gets one child (one model per GPU); report building is CPU work and may use two.
    concurrency = 1 if _needs_model(queues) else 2
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
