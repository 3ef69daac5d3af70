"""Enqueue grading: group queued essays of similar length into batch tasks sent by name (no torch here)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.models import Essay, EssayStatus

logger = logging.getLogger(__name__)

GRADE_TASK = "grading.grade_batch"
# Planning estimates only (the engine re-batches by real token counts): Qwen's tokenizer needs about
# 0.7 tokens per Chinese character; the rubric prompt and the JSON answer add roughly fixed amounts.
PROMPT_OVERHEAD_TOKENS = 700
ANSWER_TOKENS = 700
MAX_ESSAYS_PER_TASK = 16


class TaskSender(Protocol):
    def send_task(self, name: str, args: Sequence[object] = ..., **options: object) -> object: ...


def plan_batches(essays: Sequence[tuple[int, int]], token_budget: int) -> list[list[int]]:
    """Split (essay_id, char_count) pairs into batches of similar length whose estimated cost fits the budget."""
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for essay_id, chars in sorted(essays, key=lambda pair: (pair[1], pair[0])):
        cost = PROMPT_OVERHEAD_TOKENS + ANSWER_TOKENS + chars
        widest = max(longest, cost)
        if current and (widest * (len(current) + 1) > token_budget or len(current) >= MAX_ESSAYS_PER_TASK):
            batches.append(current)
            current, widest = [], cost
        current.append(essay_id)
        longest = widest
    if current:
        batches.append(current)
    return batches


def enqueue_essays(sender: TaskSender, essays: Sequence[tuple[int, int]], token_budget: int) -> int:
    """Send one grading task per planned batch; returns the number of tasks sent."""
    batches = plan_batches(essays, token_budget)
    for batch in batches:
        sender.send_task(GRADE_TASK, args=[batch])
    logger.info("enqueued %s essays in %s tasks", len(essays), len(batches))
    return len(batches)


def enqueue_assignment(session: Session, sender: TaskSender, assignment_id: int, token_budget: int) -> int:
    """Queue every essay of an assignment that is waiting; safe to call twice (claims dedupe)."""
    rows = session.execute(
        select(Essay.id, Essay.char_count).where(
            Essay.assignment_id == assignment_id, Essay.status == EssayStatus.queued
        )
    ).all()
    return enqueue_essays(sender, [(row.id, row.char_count) for row in rows], token_budget)


def queue_depths(broker_url: str, queues: Sequence[str], timeout_s: float = 3.0) -> dict[str, int]:
    """Messages waiting in each queue (Redis list length, or the SQLite transport's visible rows).

    A queue the broker has never seen counts as empty; an unreachable broker raises.
    """
    from kombu import Connection
    from kombu.exceptions import ChannelError

    depths: dict[str, int] = {}
    with Connection(broker_url, connect_timeout=timeout_s) as connection:
        connection.ensure_connection(max_retries=1, timeout=timeout_s)
        channel = connection.default_channel
        for queue in queues:
            try:
                depths[queue] = int(channel.queue_declare(queue, passive=True).message_count)
            except ChannelError:
                depths[queue] = 0
    return depths
