"""Sending work to the workers by task name, after the database commit; a broker outage is reported, not raised."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from services.web.context import db, settings, task_sender
from shared.queueing import enqueue_assignment, enqueue_essays

logger = logging.getLogger(__name__)


def queue_assignment(assignment_id: int) -> bool:
    """Queue every waiting essay of an assignment; False when the broker could not be reached."""
    try:
        enqueue_assignment(db(), task_sender(), assignment_id, settings().batch_token_budget)
    except Exception:
        logger.exception("could not enqueue assignment %s", assignment_id)
        return False
    return True


def queue_essays(essays: Sequence[tuple[int, int]]) -> bool:
    try:
        enqueue_essays(task_sender(), essays, settings().batch_token_budget)
    except Exception:
        logger.exception("could not enqueue essays %s", [essay_id for essay_id, _ in essays])
        return False
    return True


def send_report_task(task_name: str, report_job_id: int) -> bool:
    try:
        task_sender().send_task(task_name, args=[report_job_id])
    except Exception:
        logger.exception("could not send %s for report job %s", task_name, report_job_id)
        return False
    return True


BROKER_DOWN = "已保存，但暂时无法连接任务队列；队列恢复后几秒内会自动开始评分，也可在作业页面点击“重新排队”。"
