"""The banner administrators see on every page while no grading worker can load its model (a fresh `yuejuan up`
without weights, a wrong YUEJUAN_MODEL): what is wrong and how to provide a model; the essays wait in the queue."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session

from services.web.progress_view import worker_health

logger = logging.getLogger(__name__)

GRADING_QUEUE = "gpu"
HOW_TO = (
    "提供模型的方法：把模型目录（含 config.json 与权重文件）复制到服务器上 YUEJUAN_MODEL 所指的位置"
    "（未设置时使用 Hugging Face 缓存中的默认模型），评分进程会自动重试加载，放好后无需重启；"
    "若要改用其他目录，设置 YUEJUAN_MODEL=/path/to/model 后重新启动（yuejuan up 或评分进程）。"
    "也可用 yuejuan model check 在命令行检查模型能否加载。"
)


@dataclass(frozen=True)
class ModelBanner:
    workers: tuple[str, ...]
    detail: str
    how_to: str = HOW_TO


def model_banner(session: Session, *, lost_after_s: float) -> ModelBanner | None:
    """A banner when a live grading worker failed to load its model and no live grading worker is ready."""
    try:
        health = worker_health(session, lost_after_s=lost_after_s)
    except Exception:  # an error page must still render while the database is away
        logger.warning("could not read worker status for the model banner", exc_info=True)
        session.rollback()
        return None
    failing = [w for w in health if w.current_fault and GRADING_QUEUE in w.queues]
    if not failing:
        return None
    return ModelBanner(tuple(w.id for w in failing), (failing[0].detail or "")[:2000])
