"""The Prometheus collector: queue depths, essays by status, grading latency and throughput, worker state and
audit counters, read from the database and the broker at each scrape."""


from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, sessionmaker

from shared.models import AuditLog, Essay, EssayStatus, Grade, GradeSource, JobStatus, ReportJob, WorkerStatus
from shared.models.base import utcnow
from shared.queueing import queue_depths
from shared.worker_health import classify_workers

logger = logging.getLogger(__name__)

QUEUES = ("gpu", "reports", "chat")
LATENCY_BUCKETS_S = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
THROUGHPUT_WINDOW = timedelta(minutes=15)
AUDIT_COUNTERS = {
    "model.grade": ("yuejuan_essays_graded", "Essays graded by the model (one per grade version written)."),
    "essay.failed": ("yuejuan_grading_failures", "Essays marked failed after their last attempt."),
    "essay.retry": ("yuejuan_grading_retries", "Failed grading attempts that were queued again."),
}


class YuejuanCollector:
    """Collects every metric on each scrape; nothing is kept between scrapes."""

    def __init__(self, sessions: sessionmaker[Session], broker_url: str, *, worker_lost_after_s: float) -> None:
        self.sessions, self.broker_url, self.worker_lost_after_s = sessions, broker_url, worker_lost_after_s

    def collect(self) -> Iterator[Metric]:
        now = utcnow()
        with self.sessions() as session:
            yield from self._essays(session)
            yield from self._audit_counters(session)
            yield from self._grades(session, now)
            yield from self._workers(session, now)
            yield from self._reports(session)
        yield from self._queues()

    def _essays(self, session: Session) -> Iterator[Metric]:
        counts = dict(session.execute(select(Essay.status, func.count()).group_by(Essay.status)).all())
        gauge = GaugeMetricFamily("yuejuan_essays", "Essays held, by status.", labels=["status"])
        for status in EssayStatus:
            gauge.add_metric([status.value], counts.get(status, 0))
        yield gauge

    def _audit_counters(self, session: Session) -> Iterator[Metric]:
        counts = dict(session.execute(
            select(AuditLog.action, func.count()).where(AuditLog.action.in_(AUDIT_COUNTERS)).group_by(AuditLog.action)
        ).all())
        for action, (name, documentation) in AUDIT_COUNTERS.items():
            yield CounterMetricFamily(name, documentation, value=counts.get(action, 0))

    def _grades(self, session: Session, now: datetime) -> Iterator[Metric]:
        model = (Grade.source == GradeSource.model) & Grade.latency_ms.is_not(None)
        buckets = [func.sum(case((Grade.latency_ms <= bound * 1000, 1), else_=0)) for bound in LATENCY_BUCKETS_S]
        row = session.execute(select(
            func.count(), func.coalesce(func.sum(Grade.latency_ms), 0), func.coalesce(func.sum(Grade.prompt_tokens), 0),
            func.coalesce(func.sum(Grade.generated_tokens), 0), *buckets,
        ).where(model)).one()
        count, latency_ms, prompt_tokens, generated_tokens = (int(v or 0) for v in row[:4])
        yield HistogramMetricFamily(
            "yuejuan_grading_latency_seconds",
            "Model time per essay (its share of the batch), over the grades still retained.",
            buckets=[*((floatToGoString(b), int(v or 0)) for b, v in zip(LATENCY_BUCKETS_S, row[4:], strict=True)),
                     ("+Inf", count)],
            sum_value=latency_ms / 1000,
        )
        yield CounterMetricFamily("yuejuan_prompt_tokens", "Prompt tokens of retained model grades.",
                                  value=prompt_tokens)
        yield CounterMetricFamily("yuejuan_generated_tokens", "Generated tokens of retained model grades.",
                                  value=generated_tokens)
        recent = session.execute(
            select(func.coalesce(func.sum(Grade.generated_tokens), 0), func.coalesce(func.sum(Grade.latency_ms), 0))
            .where(model, Grade.created_at >= now - THROUGHPUT_WINDOW)
        ).one()
        tokens, busy_ms = int(recent[0] or 0), int(recent[1] or 0)
        yield GaugeMetricFamily(
            "yuejuan_generation_tokens_per_second",
            "Generated tokens per second of model time over the last 15 minutes (0 when idle).",
            value=tokens / (busy_ms / 1000) if busy_ms else 0.0,
        )

    def _workers(self, session: Session, now: datetime) -> Iterator[Metric]:
        rows = session.scalars(select(WorkerStatus).order_by(WorkerStatus.id)).all()
        workers = classify_workers(rows, now, lost_after_s=self.worker_lost_after_s)
        ready = GaugeMetricFamily("yuejuan_worker_ready", "1 if the worker is ready and still beating, else 0.",
                                  labels=["worker", "queues"])
        info = GaugeMetricFamily("yuejuan_worker_info",
                                 "The worker's state (lost once it stops beating), model and device.",
                                 labels=["worker", "queues", "state", "model", "device"])
        age = GaugeMetricFamily("yuejuan_worker_last_report_age_seconds", "Seconds since the worker last reported.",
                                labels=["worker"])
        memory = GaugeMetricFamily("yuejuan_worker_memory_bytes",
                                   "Memory held by the worker's model (GPU allocated, or process RSS on CPU).",
                                   labels=["worker", "device"])
        for worker in workers:
            queues = ",".join(worker.queues)
            ready.add_metric([worker.id, queues], 1 if worker.ready else 0)
            info.add_metric([worker.id, queues, worker.state, worker.model or "", worker.device or ""], 1)
            age.add_metric([worker.id], worker.age_s)
            if worker.memory_mb is not None and worker.live:
                memory.add_metric([worker.id, worker.device or ""], worker.memory_mb * 2**20)
        yield from (ready, info, age, memory)

    def _reports(self, session: Session) -> Iterator[Metric]:
        counts = dict(session.execute(
            select(ReportJob.status, func.count()).group_by(ReportJob.status)
        ).all())
        gauge = GaugeMetricFamily("yuejuan_report_jobs", "Report jobs held, by status.", labels=["status"])
        for status in JobStatus:
            gauge.add_metric([status.value], counts.get(status, 0))
        yield gauge

    def _queues(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("yuejuan_broker_up", "1 if the broker answered this scrape.")
        depth = GaugeMetricFamily("yuejuan_queue_depth", "Tasks waiting in the queue (not yet taken by a worker).",
                                  labels=["queue"])
        try:
            depths = queue_depths(self.broker_url, QUEUES)
        except Exception as exc:  # a scrape reports the broker as down rather than failing
            logger.warning("metrics: broker unreachable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        for queue, count in depths.items():
            depth.add_metric([queue], count)
        yield from (up, depth)
