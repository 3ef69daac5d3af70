"""Enqueue grading: group queued essays of similar length into batch tasks sent by name (no torch here)."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.models import Essay, EssayStatus
from shared.tasks import GRADE_TASK

logger = logging.getLogger(__name__)

# Planning estimates only (the engine re-batches by real token counts): Qwen's tokenizer needs about
# 0.7 tokens per Chinese character; the rubric prompt and the JSON answer add roughly fixed amounts.
PROMPT_OVERHEAD_TOKENS = 700
ANSWER_TOKENS = 700
MAX_ESSAYS_PER_TASK = 16
# Redis keeps one list per priority and serves 0 first; the broker options and the scan below use these steps.
PRIORITY_STEPS = list(range(10))
LOWEST_PRIORITY = PRIORITY_STEPS[-1]


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


def enqueue_essays(
    sender: TaskSender, essays: Sequence[tuple[int, int]], token_budget: int, *, priority: int | None = None
) -> int:
    """Send one grading task per planned batch; returns the number of tasks sent.

    The n-th batch of a call gets priority n (0 is served first, capped at ``LOWEST_PRIORITY``), so classes sent
    at about the same time take turns: every class's first batch before anyone's second. ``priority`` gives
    every batch the same one (retries and recovered batches go first). The embedded broker ignores priorities.
    """
    batches = plan_batches(essays, token_budget)
    for index, batch in enumerate(batches):
        sender.send_task(GRADE_TASK, args=[batch],
                         priority=min(index, LOWEST_PRIORITY) if priority is None else priority)
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


def essays_in_broker(
    broker_url: str, queue: str, *, delivered_within_s: float, timeout_s: float = 3.0
) -> set[int]:
    """Ids of the essays that a grading task waiting in ``queue``, or delivered within ``delivered_within_s`` and
    not yet acknowledged, holds.

    What the sweep compares the database with, so that an essay whose task the broker lost is sent again while
    other classes' tasks are still waiting. A message delivered longer ago whose essays are still queued sits
    with a worker that is gone (Redis would hand it back only after its visibility timeout, hours later) or
    that is busy with another batch: either way sending those essays again is right, since claims dedupe.
    Redis: the queue's priority lists and the unacknowledged hash; the embedded SQLite transport: the queue's
    visible messages (delivered ones are never handed back). An unreachable broker raises.
    """
    return {int(essay_id) for args in task_args_in_broker(broker_url, queue, {GRADE_TASK}, delivered_within_s,
                                                               timeout_s) for essay_id in args[0]}


def task_args_in_broker(
    broker_url: str, queue: str, task_names: set[str], delivered_within_s: float, timeout_s: float = 3.0
) -> list[list[Any]]:
    """The positional arguments of every task named in ``task_names`` waiting in ``queue``, or delivered within
    ``delivered_within_s`` and not yet acknowledged (see ``essays_in_broker``)."""
    if broker_url.startswith("sqla+"):
        payloads = _sqla_payloads(broker_url.removeprefix("sqla+"), queue)
    else:
        payloads = _redis_payloads(broker_url, queue, delivered_within_s, timeout_s)
    return [args for payload in payloads if (args := _task_args(payload, task_names)) is not None]


def _redis_payloads(broker_url: str, queue: str, delivered_within_s: float, timeout_s: float) -> list[dict[str, Any]]:
    import time

    from kombu import Connection

    options = {"priority_steps": PRIORITY_STEPS}
    with Connection(broker_url, connect_timeout=timeout_s, transport_options=options) as connection:
        connection.ensure_connection(max_retries=1, timeout=timeout_s)
        channel: Any = connection.default_channel
        client = channel.client
        payloads = [
            json.loads(raw) for pri in channel.priority_steps
            for raw in client.lrange(channel._q_for_pri(queue, pri), 0, -1)
        ]
        # Unacknowledged entries are [payload, exchange, routing key], indexed by delivery time.
        recent = client.zrangebyscore(channel.unacked_index_key, time.time() - delivered_within_s, "+inf")
        for raw in client.hmget(channel.unacked_key, recent) if recent else []:
            if raw is None:  # acknowledged meanwhile
                continue
            payload, _exchange, routing_key = json.loads(raw)
            if routing_key == queue:
                payloads.append(payload)
    return payloads


def _sqla_payloads(url: str, queue: str) -> list[dict[str, Any]]:
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("kombu_message"):
                return []
            rows = connection.execute(text(
                "SELECT m.payload FROM kombu_message m JOIN kombu_queue q ON m.queue_id = q.id "
                "WHERE q.name = :queue AND m.visible"
            ), {"queue": queue}).scalars().all()
    finally:
        engine.dispose()
    return [json.loads(raw) for raw in rows]


def _task_args(payload: dict[str, Any], task_names: set[str]) -> list[Any] | None:
    """A message's positional arguments if it is one of ``task_names`` (Celery protocol 2: body is
    [args, kwargs, embed])."""
    if payload.get("headers", {}).get("task") not in task_names:
        return None
    body = payload.get("body", "")
    if payload.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    args = json.loads(body)[0]
    return list(args) if args else None
