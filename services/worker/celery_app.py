"""Kept while worker modules move their imports to ``shared.celery_app`` (the Celery app is part of the contract)."""

from shared.celery_app import make_celery
from shared.tasks import GPU_QUEUE, REPORTS_QUEUE

__all__ = ["GPU_QUEUE", "REPORTS_QUEUE", "make_celery"]
