"""Classes take turns on Redis: the n-th batch of every class before anyone's (n+1)-th, retries first in line.

Messages are taken from a private Redis in the order a worker takes them (kombu's priority lists, 0 first)."""

from __future__ import annotations

from kombu import Connection

from shared.celery_app import make_celery
from shared.queueing import PRIORITY_STEPS, enqueue_essays
from shared.settings import Settings
from shared.tasks import GPU_QUEUE
from tests.processes import PrivateRedis

BUDGET = 4000  # one 1,000-character essay per batch: 700 + 700 + 1000 tokens planned each


def _delivery_order(broker_url: str) -> list[list[int]]:
    order: list[list[int]] = []
    with Connection(broker_url, transport_options={"priority_steps": PRIORITY_STEPS}) as connection:
        channel = connection.default_channel
        while (message := channel.basic_get(GPU_QUEUE, no_ack=True)) is not None:
            order.append(message.decode()[0][0])
    return order


def test_classes_sent_together_are_served_in_turns_and_a_retry_jumps_the_backlog(
    private_redis: PrivateRedis,
) -> None:
    celery = make_celery(Settings(broker_url=private_redis.url))
    classes = {name: [(base + n, 1000) for n in range(3)] for name, base in (("A", 100), ("B", 200), ("C", 300))}
    for essays in classes.values():
        assert enqueue_essays(celery, essays, BUDGET) == 3
    enqueue_essays(celery, [(999, 1000)], BUDGET, priority=0)  # a retry sent after the whole backlog

    order = _delivery_order(private_redis.url)

    assert order[:4] == [[100], [200], [300], [999]], "every class's first batch (and the retry) first"
    assert order[4:] == [[101], [201], [301], [102], [202], [302]], "then the second batches, then the third"


def test_a_class_sent_later_waits_one_batch_not_the_whole_backlog(private_redis: PrivateRedis) -> None:
    celery = make_celery(Settings(broker_url=private_redis.url))
    enqueue_essays(celery, [(n, 1000) for n in range(1, 13)], BUDGET)  # a big class: 12 batches
    enqueue_essays(celery, [(500, 1000), (501, 1000)], BUDGET)  # a small class confirmed just after

    order = [batch[0] for batch in _delivery_order(private_redis.url)]

    assert order.index(500) == 1 and order.index(501) == 3
    assert sorted(order) == [*range(1, 13), 500, 501], "nothing lost or doubled"
