"""Celery tasks, registered by name on a given app; they take ids and are safe to run twice."""

from __future__ import annotations

import logging

import redis.exceptions
from celery import Celery, Task
from celery.exceptions import SoftTimeLimitExceeded
from kombu.exceptions import OperationalError as BrokerOperationalError
from sqlalchemy.exc import DBAPIError, OperationalError

from services.worker import runtime
from services.worker.batch import (
    PROCESS_LOST,
    TIME_LIMIT,
    BatchRules,
    EssayWriter,
    close_batch,
    open_batch,
    recover_claim,
)
from services.worker.chat.task import register_chat_tasks
from services.worker.evaluation.job import register_eval_tasks
from services.worker.lease import lease_kept
from services.worker.maintenance import register_maintenance_tasks
from services.worker.plans.tasks import register_plan_tasks
from services.worker.reports.tasks import register_report_tasks
from services.worker.teaching.tasks import register_teaching_tasks
from services.worker.training.tasks import register_training_tasks
from shared.adapters import adapters_dir
from shared.queueing import GRADE_TASK

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS = (OperationalError, DBAPIError, redis.exceptions.ConnectionError, BrokerOperationalError)
RETRY_DELAY_S = 5


def register_tasks(app: Celery) -> None:
    @app.task(
        name=GRADE_TASK, bind=True, autoretry_for=TRANSIENT_ERRORS, retry_backoff=2, retry_backoff_max=120,
        retry_jitter=True, max_retries=50,
    )
    def grade_batch(self: Task, essay_ids: list[int]) -> dict[str, int]:
        """Claim, grade as one batch, write each essay as its answer is complete, release the failures."""
        return run_grade_batch(app, essay_ids, token=self.request.id, is_retry=bool(self.request.retries))

    register_plan_tasks(app)
    register_eval_tasks(app)
    register_report_tasks(app)
    register_teaching_tasks(app)
    register_training_tasks(app)
    register_maintenance_tasks(app)
    register_chat_tasks(app)


def run_grade_batch(app: Celery, essay_ids: list[int], *, token: str, is_retry: bool) -> dict[str, int]:
    from services.worker.pipeline import grade_jobs

    settings = runtime.settings()
    sessions = runtime.sessions()
    engine = runtime.engine()  # before claiming: a worker without a model must leave the essays queued
    rules = BatchRules(max_attempts=settings.max_grading_attempts, token_budget=settings.batch_token_budget,
                       lease_s=settings.lease_s)
    recovered: set[int] = set()
    if not is_retry:
        # Essays still `grading` under this very task's id: it ran before and its process died mid-batch.
        recovered = set(recover_claim(app, sessions, token, rules, PROCESS_LOST).essay_ids)
    jobs = open_batch(sessions, [i for i in essay_ids if i not in recovered], token, rules, is_retry=is_retry)
    writer = EssayWriter(sessions, token)  # each essay written as it is graded: progress moves essay by essay
    try:
        with lease_kept(sessions, token, rules.lease_s):
            outcomes = grade_jobs(engine, jobs, writer, adapters_dir=adapters_dir(settings.data_dir)) if jobs else []
    except SoftTimeLimitExceeded:
        recovery = recover_claim(app, sessions, token, rules, TIME_LIMIT)
        logger.warning("task %s: batch of %s essays hit the time limit", token, len(jobs))
        return {"claimed": len(jobs), "graded": 0, "requeued": len(recovery.essay_ids) - len(recovery.failed),
                "failed": len(recovery.failed)}
    except BaseException:
        # Whatever stopped the batch, its essays must not wait for their lease to run out.
        recover_claim(app, sessions, token, rules, PROCESS_LOST)
        raise
    counts = close_batch(app, _Delayed(app, RETRY_DELAY_S), sessions, essay_ids, jobs, outcomes, token, rules,
                         writer.written)
    if jobs:
        runtime.heartbeat()
    logger.info("task %s: %s", token, counts)
    return counts


class _Delayed:
    """A task sender that adds a countdown."""

    def __init__(self, app: Celery, countdown: int) -> None:
        self.app, self.countdown = app, countdown

    def send_task(self, name: str, args: object = (), **options: object) -> object:
        return self.app.send_task(name, args=args, countdown=self.countdown, **options)
