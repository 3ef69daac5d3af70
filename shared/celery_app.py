"""The Celery application, configured from the settings (Redis in production, SQLite when embedded): the web
sends tasks by name through it, workers consume from it."""

from __future__ import annotations

from celery import Celery
from kombu import Exchange, Queue

from shared.file_modes import make_private_dir
from shared.queueing import PRIORITY_STEPS
from shared.settings import Settings, load_settings
from shared.tasks import CHAT_QUEUE, GPU_QUEUE, REPORTS_QUEUE


def make_celery(settings: Settings | None = None) -> Celery:
    """Build a Celery app; the web sends tasks by name through it, workers consume from it."""
    settings = settings or load_settings()
    if settings.uses_embedded_broker():
        make_private_dir(settings.data_dir)
    app = Celery("yuejuan", broker=settings.resolved_broker_url(), set_as_current=False)
    soft_limit = max(settings.task_time_limit_s - 30, int(settings.task_time_limit_s * 0.9))
    if settings.broker_visibility_timeout_s <= settings.task_time_limit_s:
        raise ValueError("broker_visibility_timeout_s must be well above task_time_limit_s")
    app.conf.update(
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=settings.task_time_limit_s,
        task_soft_time_limit=soft_limit,
        # The SQLite transport passes its options to create_engine and has no visibility timeout.
        # Redis: one list per priority, 0 served first (see shared.queueing.enqueue_essays: classes take turns).
        broker_transport_options=(
            {} if settings.uses_embedded_broker() else {
                "visibility_timeout": settings.broker_visibility_timeout_s, "priority_steps": PRIORITY_STEPS,
                "queue_order_strategy": "priority",
            }
        ),
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        # Each queue on its own direct exchange: a grading task must never land in the reports queue too.
        task_queues=[
            Queue(GPU_QUEUE, Exchange(GPU_QUEUE, type="direct"), routing_key=GPU_QUEUE),
            Queue(REPORTS_QUEUE, Exchange(REPORTS_QUEUE, type="direct"), routing_key=REPORTS_QUEUE),
            Queue(CHAT_QUEUE, Exchange(CHAT_QUEUE, type="direct"), routing_key=CHAT_QUEUE),
        ],
        task_default_queue=GPU_QUEUE,
        task_routes={
            "grading.*": {"queue": GPU_QUEUE}, "reports.*": {"queue": REPORTS_QUEUE},
            "maintenance.*": {"queue": REPORTS_QUEUE}, "chat.*": {"queue": CHAT_QUEUE},
        },
        worker_hijack_root_logger=False,
        worker_proc_alive_timeout=900,  # a large model loads in worker_process_init
        worker_cancel_long_running_tasks_on_connection_loss=False,
        task_serializer="json",
        accept_content=["json"],
    )
    app.conf.yuejuan_settings = settings
    return app
