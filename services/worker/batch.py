"""Everything a grading task does around the model call: claim and load before it, write and follow up after.

Kept apart from the Celery task so `bench/platform.py` measures exactly this code with the model left out.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from services.worker import store
from services.worker.completion import on_essays_finished
from services.worker.jobs import EssayJob, EssayOutcome
from shared.models import EssayStatus
from shared.queueing import GRADE_TASK, TaskSender, enqueue_essays

logger = logging.getLogger(__name__)


# Why a claim was given up: the task's process died (or its lease ran out), or its batch hit the time limit.
PROCESS_LOST = "process_lost"
TIME_LIMIT = "time_limit"
# What a teacher reads when an essay that was graded alone kept ending its attempt this way.
ALONE_FAILURE_REASONS = {
    PROCESS_LOST: "评分进程在单独处理这篇作文时已中断 {attempts} 次（进程崩溃或内存不足），很可能与这篇作文的内容有关："
                  "请检查文本（异常长的段落、乱码、大量重复）后点击“重新评分”，或联系管理员。",
    TIME_LIMIT: "单独评分这篇作文已 {attempts} 次超过时间限制：请检查文本（异常长或大量重复的内容）后点击“重新评分”，"
                "或联系管理员。",
}


@dataclass(frozen=True)
class BatchRules:
    max_attempts: int
    token_budget: int
    lease_s: int = 60


def open_batch(
    sessions: sessionmaker[Session], essay_ids: Sequence[int], token: str, rules: BatchRules, *, is_retry: bool
) -> list[EssayJob]:
    """Claim what is still to grade of these essays and load the pipeline's input for it (empty: nothing to do)."""
    jobs = store.claim_and_load(sessions, essay_ids, token, lease_s=rules.lease_s, is_retry=is_retry)
    if not jobs:
        logger.info("task %s: nothing left to claim of %s", token, list(essay_ids))
    return jobs


class EssayWriter:
    """Writes each graded essay as soon as its outcome is known (its own transaction), so progress moves essay by
    essay; one that cannot be written now is left for ``close_batch``."""

    def __init__(self, sessions: sessionmaker[Session], token: str) -> None:
        self.sessions, self.token = sessions, token
        self.written: set[int] = set()

    def __call__(self, outcome: EssayOutcome) -> None:
        if outcome.error is not None:
            return
        try:
            self.written.update(store.save_outcomes(self.sessions, [outcome], self.token))
        except Exception:
            logger.warning("task %s: essay %s not written yet; retried with its batch", self.token,
                           outcome.essay_id, exc_info=True)


def close_batch(
    sender: TaskSender,
    retry_sender: TaskSender,
    sessions: sessionmaker[Session],
    essay_ids: Sequence[int],
    jobs: Sequence[EssayJob],
    outcomes: Sequence[EssayOutcome],
    token: str,
    rules: BatchRules,
    written: Collection[int] = (),
) -> dict[str, int]:
    """Write the graded that are not ``written`` yet, release the failed (requeued alone through `retry_sender`, or
    failed at the attempt limit), and queue report work for assignments this task finished. Returns the task's
    counts."""
    rest = [o for o in outcomes if o.error is None and o.essay_id not in written]
    graded = len(set(written)) + len(store.save_outcomes(sessions, rest, token))
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
        # Retried alone, after a pause, so a poison essay cannot hold its batch-mates back; first in line, not
        # behind the whole backlog.
        for essay_id in requeue:
            enqueue_essays(retry_sender, [(essay_id, chars[essay_id])], rules.token_budget, priority=0)
    # All of the task's essays, whatever became of them: failures at claim time can finish an assignment too.
    on_essays_finished(sender, sessions, essay_ids)
    return {"claimed": len(jobs), "graded": graded, "requeued": len(requeue), "failed": failed}


def recover_claim(
    sender: TaskSender, sessions: sessionmaker[Session], token: str, rules: BatchRules, cause: str
) -> store.Recovery:
    """Take back the essays of a claim whose task is gone (``cause``: ``PROCESS_LOST`` or ``TIME_LIMIT``).

    A batch goes back as two halves, sent first in line with no attempt charged, so repeated faults narrow down
    to the one essay that causes them while its batch-mates are graded; an essay that was alone is charged (and
    fails at the limit with a reason a teacher can act on). Assignments this finishes get their reports.
    """
    reason = ALONE_FAILURE_REASONS[cause].format(attempts=rules.max_attempts)
    recovery = store.recover_claim(sessions, token, max_attempts=rules.max_attempts, cause=cause,
                                   failure_reason=reason)
    for batch in recovery.resend:
        sender.send_task(GRADE_TASK, args=[[essay_id for essay_id, _ in batch]], priority=0)
    if recovery.essay_ids:
        logger.warning("task %s is gone (%s): %s essays sent again in %s tasks, %s failed", token, cause,
                       len(recovery.essay_ids) - len(recovery.failed), len(recovery.resend), len(recovery.failed))
    if recovery.failed:
        on_essays_finished(sender, sessions, recovery.failed)
    return recovery
