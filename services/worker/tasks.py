"""Celery tasks, registered by name on a given app; they take ids and are safe to run twice."""

from __future__ import annotations

import logging

import redis.exceptions
from celery import Celery, Task
from kombu.exceptions import OperationalError as BrokerOperationalError
from sqlalchemy.exc import DBAPIError, OperationalError

from services.worker import runtime, store
from services.worker.completion import on_essays_finished
from services.worker.maintenance import register_maintenance_tasks
from services.worker.reports.tasks import register_report_tasks
from shared.models import EssayStatus
from shared.queueing import GRADE_TASK, enqueue_essays

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS = (OperationalError, DBAPIError, redis.exceptions.ConnectionError, BrokerOperationalError)
RETRY_DELAY_S = 5


def register_tasks(app: Celery) -> None:
    @app.task(
        name=GRADE_TASK, bind=True, autoretry_for=TRANSIENT_ERRORS, retry_backoff=2, retry_backoff_max=120,
        retry_jitter=True, max_retries=50,
    )
    def grade_batch(self: Task, essay_ids: list[int]) -> dict[str, int]:
        """Claim, grade as one batch, and write each essay's outcome in its own transaction."""
        return run_grade_batch(app, essay_ids, token=self.request.id, is_retry=bool(self.request.retries))

    register_report_tasks(app)
    register_maintenance_tasks(app)


def run_grade_batch(app: Celery, essay_ids: list[int], *, token: str, is_retry: bool) -> dict[str, int]:
    from services.worker.pipeline import grade_jobs

    settings = runtime.settings()
    sessions = runtime.sessions()
    engine = runtime.engine()
    claimed = store.claim(
        sessions, essay_ids, token, max_attempts=settings.max_grading_attempts, is_retry=is_retry
    )
    if not claimed:
        logger.info("task %s: nothing left to claim of %s", token, essay_ids)
        # Essays failed at claim time (attempts exhausted) may have been an assignment's last ones.
        on_essays_finished(app, sessions, essay_ids)
        return {"claimed": 0, "graded": 0, "requeued": 0, "failed": 0}
    jobs = store.load_jobs(sessions, claimed)
    outcomes = grade_jobs(engine, jobs)
    graded = len(store.save_outcomes(sessions, [o for o in outcomes if o.error is None], token))
    requeue, failed = [], 0
    for outcome in (o for o in outcomes if o.error is not None):
        status = store.release_failure(
            sessions, outcome.essay_id, token, outcome.error, max_attempts=settings.max_grading_attempts
        )
        if status == EssayStatus.queued:
            requeue.append(outcome.essay_id)
        elif status == EssayStatus.failed:
            failed += 1
    if requeue:
        chars = {job.essay_id: len(job.text) for job in jobs}
        # Retried alone, after a pause, so a poison essay cannot hold its batch-mates back.
        for essay_id in requeue:
            enqueue_essays(_Delayed(app, RETRY_DELAY_S), [(essay_id, chars[essay_id])], settings.batch_token_budget)
    on_essays_finished(app, sessions, essay_ids)
    runtime.heartbeat()
    logger.info("task %s: graded %s, requeued %s, failed %s", token, graded, len(requeue), failed)
    return {"claimed": len(claimed), "graded": graded, "requeued": len(requeue), "failed": failed}


class _Delayed:
    """A task sender that adds a countdown."""

    def __init__(self, app: Celery, countdown: int) -> None:
        self.app, self.countdown = app, countdown

    def send_task(self, name: str, args: object = (), **options: object) -> object:
        return self.app.send_task(name, args=args, countdown=self.countdown, **options)
