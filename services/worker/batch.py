"""Everything a grading task does around the model call: claim and load before it, write and follow up after.

Kept apart from the Celery task so `bench/platform.py` measures exactly this code with the model left out.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from services.worker import store
from services.worker.completion import on_essays_finished
from services.worker.jobs import EssayJob, EssayOutcome
from shared.models import EssayStatus
from shared.queueing import TaskSender, enqueue_essays

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchRules:
    max_attempts: int
    token_budget: int


def open_batch(
    sessions: sessionmaker[Session], essay_ids: Sequence[int], token: str, rules: BatchRules, *, is_retry: bool
) -> list[EssayJob]:
    """Claim what is still to grade of these essays and load the pipeline's input for it (empty: nothing to do)."""
    jobs = store.claim_and_load(sessions, essay_ids, token, max_attempts=rules.max_attempts, is_retry=is_retry)
    if not jobs:
        logger.info("task %s: nothing left to claim of %s", token, list(essay_ids))
    return jobs


def close_batch(
    sender: TaskSender,
    retry_sender: TaskSender,
    sessions: sessionmaker[Session],
    essay_ids: Sequence[int],
    jobs: Sequence[EssayJob],
    outcomes: Sequence[EssayOutcome],
    token: str,
    rules: BatchRules,
) -> dict[str, int]:
    """Write the graded, release the failed (requeued alone through `retry_sender`, or failed at the attempt
    limit), and queue report work for assignments this task finished. Returns the task's counts."""
    graded = len(store.save_outcomes(sessions, [o for o in outcomes if o.error is None], token))
    requeue, failed = [], 0
    for outcome in (o for o in outcomes if o.error is not None):
        status = store.release_failure(sessions, outcome.essay_id, token, outcome.error or "",
                                       max_attempts=rules.max_attempts)
        if status == EssayStatus.queued:
            requeue.append(outcome.essay_id)
        elif status == EssayStatus.failed:
            failed += 1
    if requeue:
        chars = {job.essay_id: len(job.text) for job in jobs}
        # Retried alone, after a pause, so a poison essay cannot hold its batch-mates back.
        for essay_id in requeue:
            enqueue_essays(retry_sender, [(essay_id, chars[essay_id])], rules.token_budget)
    # All of the task's essays, whatever became of them: failures at claim time can finish an assignment too.
    on_essays_finished(sender, sessions, essay_ids)
    return {"claimed": len(jobs), "graded": graded, "requeued": len(requeue), "failed": failed}
