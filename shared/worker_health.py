"""Which workers are alive, which faults are current, and what teachers and admins see of them.

Pure functions of the ``worker_status`` rows and a clock, so the progress page, the API, ``/metrics`` and the
tests all read a row the same way. Every worker process rewrites its row's ``updated_at`` every
``worker_heartbeat_s``; a row older than ``worker_lost_after_s`` belongs to a process that is gone.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

# A dead or stopped worker leaves teachers' pages this long after its last beat; admins see it until it is deleted.
HIDE_FROM_TEACHERS_AFTER = timedelta(minutes=10)
# Rows not written for this long are deleted when a worker starts, so restarts do not pile up rows.
FORGET_AFTER = timedelta(days=1)

class WorkerState(enum.StrEnum):
    """``WorkerStatus.state`` as a worker records it, and ``lost`` for a row that stopped beating."""

    loading = "loading"
    ready = "ready"
    failed = "failed"
    stopped = "stopped"
    lost = "lost"


LOST = WorkerState.lost
STATE_NAMES = {
    WorkerState.loading: "正在加载模型", WorkerState.ready: "就绪", WorkerState.failed: "模型加载失败",
    WorkerState.stopped: "已停止", WorkerState.lost: "失联",
}
FAULT_NOTICE = "评分服务暂不可用：模型无法加载。作文会保留在队列中，请联系管理员。"
NO_WORKER_NOTICE = "尚未检测到运行中的评分进程。作文会保留在队列中，评分进程启动后自动开始评分。"


class WorkerRow(Protocol):
    """The columns of ``shared.models.WorkerStatus`` that are read here."""

    id: str
    queues: str
    state: str
    model: str | None
    device: str | None
    detail: str | None
    memory_mb: int | None
    updated_at: datetime


@dataclass(frozen=True)
class WorkerHealth:
    id: str
    queues: tuple[str, ...]
    recorded_state: str  # what the worker last wrote
    state: str  # what to show: the recorded state, or "lost" once the row stopped beating
    model: str | None
    device: str | None
    detail: str | None
    memory_mb: int | None
    updated_at: datetime
    age_s: float
    live: bool  # still beating and not stopped
    current_fault: bool  # a live failed worker with no live ready worker on any of its queues
    shown_to_teachers: bool

    @property
    def ready(self) -> bool:
        return self.live and self.recorded_state == WorkerState.ready

    @property
    def state_name(self) -> str:
        return STATE_NAMES.get(self.state, self.state)


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite returns naive UTC


def classify_workers(rows: Iterable[WorkerRow], now: datetime, *, lost_after_s: float) -> list[WorkerHealth]:
    """Each row's health at ``now``, in the rows' order."""
    rows = list(rows)
    ages = [max(0.0, (now - aware(row.updated_at)).total_seconds()) for row in rows]
    live = [row.state != WorkerState.stopped and age <= lost_after_s for row, age in zip(rows, ages, strict=True)]
    ready_queues = {
        queue for row, is_live in zip(rows, live, strict=True) if is_live and row.state == WorkerState.ready
        for queue in _queues(row.queues)
    }
    hide_after_s = HIDE_FROM_TEACHERS_AFTER.total_seconds()
    return [
        WorkerHealth(
            id=row.id, queues=_queues(row.queues), recorded_state=row.state,
            state=row.state if is_live or row.state == WorkerState.stopped else LOST,
            model=row.model, device=row.device, detail=row.detail, memory_mb=row.memory_mb,
            updated_at=aware(row.updated_at), age_s=age, live=is_live,
            current_fault=is_live and row.state == WorkerState.failed and not ready_queues & set(_queues(row.queues)),
            shown_to_teachers=is_live or age <= hide_after_s,
        )
        for row, age, is_live in zip(rows, ages, live, strict=True)
    ]


def service_notice(workers: Sequence[WorkerHealth], queue: str = "gpu") -> str | None:
    """The one line a teacher reads about grading: a current fault, no live grading worker, or nothing."""
    if any(w.current_fault for w in workers):
        return FAULT_NOTICE
    if not any(w.live and queue in w.queues for w in workers):
        return NO_WORKER_NOTICE
    return None


def _queues(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())
