"""Worker rows read at a given clock: live, lost (失联), stopped, hidden from teachers, and which fault is current."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.worker_health import (
    FAULT_NOTICE,
    NO_WORKER_NOTICE,
    WorkerHealth,
    classify_workers,
    service_notice,
)

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
LOST_AFTER_S = 45.0


@dataclass
class Row:
    id: str
    state: str
    age_s: float
    queues: str = "gpu"
    model: str | None = None
    device: str | None = None
    detail: str | None = None
    memory_mb: int | None = None
    naive: bool = False  # SQLite hands back naive UTC

    @property
    def updated_at(self) -> datetime:
        moment = NOW - timedelta(seconds=self.age_s)
        return moment.replace(tzinfo=None) if self.naive else moment


def health(*rows: Row, now: datetime = NOW) -> dict[str, WorkerHealth]:
    return {w.id: w for w in classify_workers(rows, now, lost_after_s=LOST_AFTER_S)}


def test_a_beating_ready_worker_is_live_and_ready_until_it_misses_three_beats() -> None:
    row = Row("gpu-1", "ready", age_s=10)
    fresh = health(row)["gpu-1"]
    assert (fresh.live, fresh.ready, fresh.state, fresh.state_name) == (True, True, "ready", "就绪")
    # The same row with the clock moved past worker_lost_after_s: the process stopped beating.
    later = health(row, now=NOW + timedelta(seconds=36))["gpu-1"]
    assert (later.live, later.ready, later.state, later.state_name) == (False, False, "lost", "失联")
    assert later.recorded_state == "ready" and later.age_s == 46


def test_teachers_stop_seeing_a_dead_or_stopped_worker_after_ten_minutes() -> None:
    rows = [Row("lost-recent", "ready", 9 * 60), Row("lost-old", "ready", 11 * 60),
            Row("stopped-recent", "stopped", 60), Row("stopped-old", "stopped", 11 * 60), Row("live", "ready", 1)]
    shown = {w.id: w.shown_to_teachers for w in health(*rows).values()}
    assert shown == {"lost-recent": True, "lost-old": False, "stopped-recent": True, "stopped-old": False,
                     "live": True}
    stopped = health(*rows)["stopped-recent"]
    assert (stopped.live, stopped.state_name) == (False, "已停止"), "a clean stop is not shown as 失联"


def test_a_failed_model_load_is_a_current_fault_only_while_it_beats_and_no_healthy_worker_shares_its_queue() -> None:
    failed = Row("gpu-2", "failed", age_s=5, detail="模型无法加载: " + "x" * 900)
    assert health(failed)["gpu-2"].current_fault
    assert service_notice(list(health(failed).values())) == FAULT_NOTICE

    gone = Row("gpu-2", "failed", age_s=LOST_AFTER_S + 1, detail=failed.detail)
    assert not health(gone)["gpu-2"].current_fault, "a worker that stopped beating has no current fault"
    assert health(gone)["gpu-2"].state == "lost"

    took_over = health(failed, Row("gpu-3", "ready", age_s=3))
    assert not took_over["gpu-2"].current_fault, "a healthy worker of the same queue took over"
    assert service_notice(list(took_over.values())) is None
    dead_helper = health(failed, Row("gpu-3", "ready", age_s=LOST_AFTER_S + 1))
    assert dead_helper["gpu-2"].current_fault, "a lost ready worker does not take over"
    other_queue = health(failed, Row("reports-1", "ready", age_s=3, queues="reports"))
    assert other_queue["gpu-2"].current_fault, "a reports worker grades nothing"


def test_the_notice_says_when_no_grading_worker_is_alive() -> None:
    assert service_notice([]) == NO_WORKER_NOTICE
    only_reports = health(Row("reports-1", "ready", 1, queues="reports"))
    assert service_notice(list(only_reports.values())) == NO_WORKER_NOTICE
    lost = health(Row("gpu-1", "ready", LOST_AFTER_S + 1))
    assert service_notice(list(lost.values())) == NO_WORKER_NOTICE
    loading = health(Row("gpu-1", "loading", 1, queues="gpu,reports"))
    assert service_notice(list(loading.values())) is None


def test_sqlite_naive_timestamps_are_read_as_utc() -> None:
    assert health(Row("gpu-1", "ready", 20, naive=True))["gpu-1"].age_s == 20
