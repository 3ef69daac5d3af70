"""Grading and report tasks reach exactly their own queue (one exchange per queue)."""

from __future__ import annotations

from shared.celery_app import make_celery
from shared.settings import Settings
from shared.tasks import GPU_QUEUE, REPORTS_QUEUE


def test_each_task_family_routes_to_its_own_queue_only() -> None:
    app = make_celery(Settings(broker_url="memory://"))
    queues = {q.name: q for q in app.conf.task_queues}
    assert queues[GPU_QUEUE].exchange.name != queues[REPORTS_QUEUE].exchange.name
    for task, expected in (("grading.grade_batch", GPU_QUEUE), ("reports.class_workbook", REPORTS_QUEUE)):
        route = app.amqp.router.route({}, task)
        queue = route["queue"]
        assert queue.name == expected
        bound_elsewhere = [
            q.name for q in queues.values()
            if q.name != expected and q.exchange.name == queue.exchange.name and q.routing_key == queue.routing_key
        ]
        assert bound_elsewhere == []
