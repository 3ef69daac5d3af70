"""The training task on the gpu queue: trains in the worker process that holds the model, which then measures the
new adapter on the held-out students with that same model."""

from __future__ import annotations

from typing import Any

from celery import Celery

from services.worker import runtime
from services.worker.engine.interface import EngineConfig
from shared.tasks import GPU_QUEUE, TRAIN_ADAPTER_TASK

# Training a 7B adapter takes hours, far beyond a grading batch's limit. A redelivery (the broker's visibility
# timeout) finds the adapter no longer queued and does nothing.
TRAINING_TIME_LIMIT_S = 12 * 3600


def register_training_tasks(app: Celery) -> None:
    @app.task(name=TRAIN_ADAPTER_TASK, queue=GPU_QUEUE, soft_time_limit=TRAINING_TIME_LIMIT_S,
              time_limit=TRAINING_TIME_LIMIT_S + 60)
    def train_adapter(adapter_id: int) -> dict[str, Any]:
        """Train, evaluate and (if it passes the gate) promote one queued adapter."""
        from services.worker.training.job import run_training_job

        settings = runtime.settings()
        config = EngineConfig.from_settings(settings)
        card = run_training_job(runtime.sessions(), runtime.engine(), adapter_id, config=config,
                                data_dir=settings.data_dir, token_budget=settings.batch_token_budget,
                                margin=settings.adapter_promotion_margin)
        return {"adapter_id": adapter_id, "promoted": bool(card.get("validation", {}).get("promoted"))}
