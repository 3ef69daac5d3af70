"""Faults end to end: kill, broker loss, a crashing essay, a batch past its time limit, and 20 classes at once.

    python bench/chaos.py [--scenarios fairness,kill,broker-loss,crash,time-limit] [--classes 20] [--essays 6]
                          [--gpu-workers 1] [--essays-from PATH|synthetic] [--time-limit-s 12] [--log-dir DIR]

Everything is real and private to the run: a scratch PostgreSQL database (migrated), a redis-server with AOF in
a temporary folder, the tiny random-weight model of the tests, `yuejuan worker --queues gpu` processes (one
pool child each, OMP_NUM_THREADS=1), one `--queues reports` worker and `yuejuan beat`, with short recovery
settings (YUEJUAN_LEASE_S 6, YUEJUAN_SWEEP_INTERVAL_S 2, YUEJUAN_STALE_AFTER_S 3; the rest at their defaults).
Classes are created as the tests create them and sent with `enqueue_assignment`, as the web sends them.

Scenarios, run in this order (a gpu worker is restarted when the next one needs another engine):
  fairness     --classes classes of --essays essays sent at once; per class, seconds from its enqueue to its
               first graded essay and to its last.
  kill         SIGKILL of a gpu worker's process group while it holds a batch, a new worker started at once;
               recovery_s: from the kill to the next essay graded (the new worker's start-up included).
  broker-loss  Redis stopped while a class is grading, its AOF files deleted (the waiting tasks are lost),
               started again; recovery_s: from Redis answering again to the first of the lost essays graded.
  crash        a class with one essay that SIGKILLs the worker's pool child (tests/faults.py CrashEngine).
  time-limit   a class with one essay that never finishes (HangEngine, YUEJUAN_TASK_TIME_LIMIT_S --time-limit-s).

Essays are real (`../shared/data/essays-acea`, read where they lie) unless the folder is missing or
`--essays-from synthetic` is given (tests/essays.py). The random-weight model cannot answer about one real essay
in five within the answer schema (its grammar lets a UTF-16 surrogate through that the validator then counts as
three characters); such an essay would fail for the model's sake, not a fault's, so each candidate is graded
once alone in this process with the same model and pipeline first, and only answerable ones are used.

At the end the run waits for quiescence, then counts over every essay of the database: graded, failed,
failed_innocent (failed and not marked), stuck (queued or grading), duplicates (more than one grade version),
and report_jobs_stuck (class workbook jobs still queued or running, after --reports-timeout-s); it ends with one
JSON line. Exit status 1 if failed_innocent, stuck, duplicates or report_jobs_stuck is not zero. Workers are
restarted between scenarios (and stopped at the end) the way `docker compose stop` does it: SIGTERM to the
main process, so the task in hand finishes.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder comes first on the import path, and bench/platform.py would shadow the standard
# library's `platform` for every import below: keep the folder off the path, put the repository on it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DEFAULT_ESSAYS = REPO.parent / "shared" / "data" / "essays-acea" / "data.json"
DEFAULT_PG_URL = os.environ.get("YUEJUAN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SCENARIOS = ("fairness", "kill", "broker-loss", "crash", "time-limit")  # the order they run in
RECOVERY = {"lease_s": "6", "sweep_interval_s": "2", "stale_after_s": "3"}
# What tests/factories.py make_class gives every assignment: the screening prompt must be the workers' prompt.
ASSIGNMENT = {"assignment_prompt": "以“读书”为题写一篇议论文。", "genre": "议论文", "required_length": 800,
              "rubric_id": "gaokao-national", "rubric_version": "2024.1"}


def say(line: str) -> None:
    print(line, flush=True)


def seconds_between(start: datetime, end: datetime | None) -> float | None:
    return None if end is None else round((end - start).total_seconds(), 2)


def now() -> datetime:
    return datetime.now(UTC)


def stop_gracefully(process: Any, timeout: float = 60) -> None:
    """SIGTERM to the main process only, as `docker compose stop` sends it: Celery's warm shutdown finishes the task
    in hand. (tests/processes.py's `stop` signals the whole group, which kills the pool child mid-task.) Whatever
    is left of the group after ``timeout`` is killed."""
    if process.proc is None:
        return
    if process.proc.poll() is None:
        process.proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.proc.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.proc.pid, signal.SIGKILL)
    process.proc.wait(timeout=30)


# --- essays ---------------------------------------------------------------------------------------------------


def candidate_texts(source: str, count: int) -> tuple[list[str], str]:
    """Up to ``count`` essays from the ACEA file (bench/platform.py's reader), or synthetic ones."""
    path = Path(source)
    if source == "synthetic" or not path.exists():
        from tests.essays import make_essays

        return make_essays(count, seed=12), "synthetic (tests/essays.py)"
    spec = importlib.util.spec_from_file_location("bench_platform", REPO / "bench" / "platform.py")
    assert spec is not None and spec.loader is not None
    platform_bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(platform_bench)
    texts, _ = platform_bench.load_texts(path, count)
    return list(dict.fromkeys(texts)), str(path)  # the reader cycles a short file: keep each essay once


def answerable(model_dir: Path, texts: Sequence[str], needed: int) -> tuple[list[str], int]:
    """The first ``needed`` texts the model answers within the schema, each graded alone as a lone retry would
    be; cycled if too few. Returns them and how many were screened out."""
    import torch

    from services.worker.jobs import EssayJob
    from services.worker.pipeline import grade_jobs
    from services.worker.runtime import load_engine
    from shared.settings import Settings

    torch.set_num_threads(1)  # as the workers (OMP_NUM_THREADS=1): same arithmetic, same answers
    engine = load_engine(Settings(model=str(model_dir), device="cpu"))
    kept: list[str] = []
    screened_out = 0
    for index, text in enumerate(texts):
        if len(kept) == needed:
            break
        (outcome,) = grade_jobs(engine, [EssayJob(essay_id=index, text=text, **ASSIGNMENT)])  # type: ignore[arg-type]
        if outcome.error is None:
            kept.append(text)
        else:
            screened_out += 1
    if not kept:
        raise SystemExit("the model answers none of the candidate essays within the schema")
    return [kept[i % len(kept)] for i in range(needed)], screened_out


# --- the installation under test ------------------------------------------------------------------------------


@dataclass
class ClassRun:
    name: str
    assignment_id: int
    essay_ids: list[int]
    marked: int | None = None
    enqueued_at: datetime | None = None


@dataclass
class Harness:
    """The scratch database, the private Redis and the processes of one run; `close` undoes all of it."""

    args: argparse.Namespace
    workdir: Path
    log_dir: Path
    db_url: str = ""
    model_dir: Path | None = None
    sessions: Any = None
    db_engine: Any = None
    redis: Any = None
    settings: Any = None
    texts: list[str] = field(default_factory=list)
    gpu: list[Any] = field(default_factory=list)
    gpu_engine: str | None = None
    others: list[Any] = field(default_factory=list)
    classes: list[ClassRun] = field(default_factory=list)
    started: int = 0

    def env(self, **extra: str) -> dict[str, str]:
        from tests.processes import worker_env

        return worker_env(database_url=self.db_url, broker_url=self.redis.url, model=str(self.model_dir),
                          data_dir=str(self.workdir / "data"), device="cpu",
                          batch_token_budget=str(self.args.batch_token_budget),
                          max_grading_attempts=str(self.args.max_attempts), **RECOVERY, **extra)

    def start_service(self) -> None:
        """The reports worker (it runs the sweep) and beat (it sends it)."""
        from tests.processes import ManagedProcess, worker_process

        self.others = [
            worker_process(self.env(), self.log_dir / "reports.log", queues="reports").start(),
            ManagedProcess([sys.executable, "-m", "services.cli", "beat"], self.env(), self.log_dir / "beat.log")
            .start(),
        ]

    def gpu_worker(self, engine: str | None) -> Any:
        from tests.processes import worker_process

        extra = {"engine_class": f"tests.faults:{engine}"} if engine else {}
        if engine == "HangEngine":
            extra["task_time_limit_s"] = str(self.args.time_limit_s)
        self.started += 1
        return worker_process(self.env(**extra), self.log_dir / f"gpu-{self.started}.log").start()

    def use_gpu_workers(self, engine: str | None) -> None:
        """Run --gpu-workers grading workers with this engine (None: the real one), started afresh if needed."""
        if self.gpu and self.gpu_engine == engine:
            return
        if self.gpu:  # a planned restart: let the plans and workbooks of finished classes through first
            self.settle_reports("report jobs before the gpu workers restart")
        for worker in self.gpu:
            stop_gracefully(worker)
        self.gpu_engine = engine
        self.gpu = [self.gpu_worker(engine) for _ in range(self.args.gpu_workers)]
        for worker in self.gpu:
            self.wait_ready(worker)

    def wait_ready(self, worker: Any, timeout: float = 300) -> None:
        from sqlalchemy import select

        from shared.models import WorkerStatus
        from tests.processes import wait_for

        # `yuejuan worker` names itself yuejuan-gpu-<its pid>@<host>; its pool child records "ready" once the
        # model is loaded and the answer grammar compiled.
        pattern = f"yuejuan-gpu-{worker.proc.pid}@%"

        def ready() -> bool:
            if not worker.running:
                raise RuntimeError(f"gpu worker exited:\n{worker.log()[-3000:]}")
            with self.sessions() as session:
                return session.scalar(select(WorkerStatus.state).where(WorkerStatus.id.like(pattern))) == "ready"

        wait_for(ready, timeout=timeout, what="a gpu worker to load its model", interval=0.2)

    def new_class(self, name: str, count: int, mark: str | None = None) -> ClassRun:
        from tests.factories import make_class

        texts, self.texts = self.texts[:count], self.texts[count:]
        marked_index = count // 2 if mark else None
        if mark:
            texts[count // 2] = texts[count // 2].replace("\n", f"\n{mark}", 1)
        fixture = make_class(self.sessions, texts, tag=uuid.uuid4().hex[:8])
        run = ClassRun(name, fixture.assignment_id, fixture.essay_ids,
                       fixture.essay_ids[marked_index] if marked_index is not None else None)
        self.classes.append(run)
        return run

    def enqueue(self, run: ClassRun) -> None:
        from tests.grading_run import enqueue_class

        run.enqueued_at = now()
        enqueue_class(self.settings, self.sessions, run.assignment_id)

    def counts(self, run: ClassRun) -> dict[str, int]:
        from tests.grading_run import status_counts

        return status_counts(self.sessions, run.assignment_id)

    def essays(self, ids: Sequence[int]) -> list[Any]:
        from sqlalchemy import select

        from shared.models import Essay

        with self.sessions() as session:
            return list(session.execute(
                select(Essay.id, Essay.status, Essay.finished_at, Essay.attempts, Essay.failure_reason)
                .where(Essay.id.in_(list(ids)))
            ))

    def unfinished(self, ids: Sequence[int] | None = None) -> int:
        from sqlalchemy import func, select

        from shared.models import Essay, EssayStatus

        query = select(func.count()).select_from(Essay).where(
            Essay.status.in_([EssayStatus.queued, EssayStatus.grading]))
        if ids is not None:
            query = query.where(Essay.id.in_(list(ids)))
        with self.sessions() as session:
            return int(session.scalar(query) or 0)

    def settle(self, runs: Sequence[ClassRun], what: str) -> bool:
        """Wait until these classes have nothing queued or grading; False (and say so) on the timeout."""
        from tests.processes import wait_for

        ids = [i for run in runs for i in run.essay_ids]
        try:
            wait_for(lambda: self.unfinished(ids) == 0, timeout=self.args.settle_timeout_s, what=what, interval=0.2)
        except AssertionError as exc:
            say(f"  !! {exc}: {self.unfinished(ids)} essays still queued or grading")
            return False
        return True

    def reports_unfinished(self) -> int:
        from sqlalchemy import func, select

        from shared.models import JobStatus, ReportJob

        with self.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(ReportJob).where(
                ReportJob.status.in_([JobStatus.queued, JobStatus.running]))) or 0)

    def settle_reports(self, what: str) -> bool:
        """Wait until no report job is queued or running (plans and workbooks take seconds at this size)."""
        from tests.processes import wait_for

        try:
            wait_for(lambda: self.reports_unfinished() == 0, timeout=self.args.reports_timeout_s, what=what)
        except AssertionError as exc:
            say(f"  !! {exc}: {self.reports_unfinished()} still queued or running")
            return False
        return True

    def close(self) -> None:
        for process in [*self.gpu, *self.others]:
            try:
                stop_gracefully(process, timeout=20)
            except Exception as exc:  # keep cleaning up
                say(f"could not stop {process.args[-1]}: {exc}")
        if self.redis is not None:
            self.redis.stop()
        if self.db_engine is not None:
            self.db_engine.dispose()
        if self.db_url:
            from shared.models.scratch import drop_database

            drop_database(self.args.pg_url, self.db_url)


# --- scenarios ------------------------------------------------------------------------------------------------


def class_times(run: ClassRun, rows: Sequence[Any]) -> tuple[float | None, float | None]:
    """Seconds from the class's enqueue to its first graded essay and to its last finished one."""
    assert run.enqueued_at is not None
    graded = [row.finished_at for row in rows if str(row.status) == "graded" and row.finished_at]
    finished = [row.finished_at for row in rows if row.finished_at]
    return (seconds_between(run.enqueued_at, min(graded, default=None)),
            seconds_between(run.enqueued_at, max(finished, default=None)))


def first_graded_after(rows: Sequence[Any], moment: datetime) -> datetime | None:
    return min((row.finished_at for row in rows if str(row.status) == "graded" and row.finished_at
                and row.finished_at > moment), default=None)


def fairness(h: Harness) -> dict[str, Any]:
    runs = [h.new_class(f"fairness-{c}", h.args.essays) for c in range(h.args.classes)]
    for run in runs:  # as twenty teachers pressing 确认导入 in the same second
        h.enqueue(run)
    settled = h.settle(runs, "the fairness classes to finish")
    firsts, completions = [], []
    for run in runs:
        first, done = class_times(run, h.essays(run.essay_ids))
        firsts.append(first)
        completions.append(done)
    known_firsts = [f for f in firsts if f is not None]
    known_done = [d for d in completions if d is not None]
    figures = {
        "classes": len(runs), "essays_per_class": h.args.essays, "settled": settled,
        "first_essay_s_max": max(known_firsts, default=None),
        "first_essay_s_median": round(statistics.median(known_firsts), 2) if known_firsts else None,
        "completion_s_max": max(known_done, default=None),
        "completion_s_median": round(statistics.median(known_done), 2) if known_done else None,
        "first_essay_s": firsts, "completion_s": completions,
    }
    say(f"  first essay: median {figures['first_essay_s_median']} s, max {figures['first_essay_s_max']} s; "
        f"class complete: median {figures['completion_s_median']} s, max {figures['completion_s_max']} s")
    return figures


def kill(h: Harness) -> dict[str, Any]:
    from tests.processes import wait_for

    run = h.new_class("kill", h.args.big_class)
    h.enqueue(run)

    def mid_batch() -> bool:
        counts = h.counts(run)
        return counts.get("graded", 0) >= 1 and counts.get("grading", 0) >= 1

    wait_for(mid_batch, timeout=h.args.settle_timeout_s, what="the kill class to be mid-run", interval=0.05)
    victim = h.gpu[0]
    killed_at = now()
    victim.kill()
    held = [row.id for row in h.essays(run.essay_ids) if str(row.status) == "grading"]
    h.gpu[0] = h.gpu_worker(h.gpu_engine)
    h.wait_ready(h.gpu[0])
    ready_s = seconds_between(killed_at, now())
    settled = h.settle([run], "the kill class to finish")
    rows = h.essays(run.essay_ids)
    held_done = [row.finished_at for row in rows if row.id in held and row.finished_at]
    figures = {
        "essays": len(run.essay_ids), "settled": settled, "held_at_kill": len(held),
        "recovery_s": seconds_between(killed_at, first_graded_after(rows, killed_at)),
        "new_worker_ready_s": ready_s,
        "held_essays_graded_s": seconds_between(killed_at, max(held_done)) if len(held_done) == len(held) else None,
        "completion_s": class_times(run, rows)[1],
    }
    say(f"  killed with {len(held)} essays in hand; new worker ready after {ready_s} s; next essay graded "
        f"{figures['recovery_s']} s after the kill; the held ones all graded after {figures['held_essays_graded_s']} s")
    return figures


def broker_loss(h: Harness) -> dict[str, Any]:
    from shared.queueing import essays_in_broker
    from tests.processes import wait_for

    run = h.new_class("broker-loss", h.args.big_class)
    h.enqueue(run)

    def grading_with_tasks_waiting() -> bool:
        counts = h.counts(run)
        return counts.get("graded", 0) >= 1 and counts.get("queued", 0) >= 1

    wait_for(grading_with_tasks_waiting, timeout=h.args.settle_timeout_s, what="the class to be mid-run",
             interval=0.05)
    stopped_at = now()
    h.redis.stop()
    lost = [row.id for row in h.essays(run.essay_ids) if str(row.status) == "queued"]
    shutil.rmtree(h.redis.directory / "appendonlydir", ignore_errors=True)
    for leftover in (*h.redis.directory.glob("*.aof"), *h.redis.directory.glob("*.rdb")):
        leftover.unlink()
    h.redis.start()
    back_at = now()
    held_after_restart = len(essays_in_broker(h.redis.url, "gpu", delivered_within_s=1e9))  # any message at all
    settled = h.settle([run], "the broker-loss class to finish")
    rows = h.essays(run.essay_ids)
    lost_done = [row.finished_at for row in rows if row.id in lost and row.finished_at]
    lost_rows = [row for row in rows if row.id in lost]
    figures = {
        "essays": len(run.essay_ids), "settled": settled, "queued_at_loss": len(lost),
        "held_by_broker_after_restart": held_after_restart,
        "gpu_workers_survived": all(worker.running for worker in h.gpu),
        "broker_down_s": seconds_between(stopped_at, back_at),
        "recovery_s": seconds_between(back_at, first_graded_after(lost_rows, back_at)),
        "lost_essays_graded_s": seconds_between(back_at, max(lost_done)) if len(lost_done) == len(lost) else None,
        "completion_s": class_times(run, rows)[1],
    }
    say(f"  Redis wiped with {len(lost)} essays waiting ({held_after_restart} held after the restart); first of "
        f"them graded {figures['recovery_s']} s after Redis was back, all after {figures['lost_essays_graded_s']} s")
    return figures


def marked(h: Harness, name: str, mark: str, expected_reason: str) -> dict[str, Any]:
    run = h.new_class(name, h.args.marked_class, mark=mark)
    h.enqueue(run)
    settled = h.settle([run], f"the {name} class to finish")
    rows = h.essays(run.essay_ids)
    bad = next(row for row in rows if row.id == run.marked)
    innocent = [row for row in rows if row.id != run.marked]
    figures = {
        "essays": len(rows), "settled": settled,
        "marked_failed": str(bad.status) == "failed" and expected_reason in (bad.failure_reason or ""),
        "marked_attempts": bad.attempts,
        "innocent_graded": sum(str(row.status) == "graded" for row in innocent),
        "innocent_charged": sum(row.attempts > 0 for row in innocent),
        "completion_s": class_times(run, rows)[1],
    }
    say(f"  marked essay {bad.status} after {bad.attempts} attempts ({(bad.failure_reason or '')[:40]}…); "
        f"{figures['innocent_graded']} of {len(innocent)} batch-mates graded, {figures['innocent_charged']} charged; "
        f"class done in {figures['completion_s']} s")
    return figures


def crash(h: Harness) -> dict[str, Any]:
    from tests.faults import CRASH_MARK

    h.use_gpu_workers("CrashEngine")
    return marked(h, "crash", CRASH_MARK, "进程崩溃或内存不足")


def time_limit(h: Harness) -> dict[str, Any]:
    from tests.faults import HANG_MARK

    h.use_gpu_workers("HangEngine")
    return marked(h, "time-limit", HANG_MARK, "超过时间限制")


RUNNERS: dict[str, Callable[[Harness], dict[str, Any]]] = {
    "fairness": fairness, "kill": kill, "broker-loss": broker_loss, "crash": crash, "time-limit": time_limit,
}


# --- the run --------------------------------------------------------------------------------------------------


def essays_needed(args: argparse.Namespace, scenarios: Sequence[str]) -> int:
    sizes = {"fairness": args.classes * args.essays, "kill": args.big_class, "broker-loss": args.big_class,
             "crash": args.marked_class, "time-limit": args.marked_class}
    return sum(sizes[name] for name in scenarios)


def totals(h: Harness) -> dict[str, Any]:
    from sqlalchemy import func, select

    from shared.models import Essay, JobStatus, ReportJob
    from tests.grading_run import grades_per_essay

    with h.sessions() as session:
        rows = session.execute(select(Essay.id, Essay.status, Essay.attempts, Essay.failure_reason)).all()
        jobs = dict(session.execute(select(ReportJob.status, func.count()).group_by(ReportJob.status)).all())
    marked_ids = {run.marked for run in h.classes if run.marked is not None}
    versions = grades_per_essay(h.sessions, [row.id for row in rows])
    failed_innocent = [row for row in rows if str(row.status) == "failed" and row.id not in marked_ids]
    for row in failed_innocent:
        say(f"  !! innocent essay {row.id} failed after {row.attempts} attempts: {row.failure_reason}")
    return {
        "essays": len(rows),
        "graded": sum(str(row.status) == "graded" for row in rows),
        "failed": sum(str(row.status) == "failed" for row in rows),
        "failed_marked": sum(str(row.status) == "failed" and row.id in marked_ids for row in rows),
        "failed_innocent": len(failed_innocent),
        "stuck": sum(str(row.status) in ("queued", "grading") for row in rows),
        "duplicates": sum(n > 1 for n in versions.values()),
        "charged_innocent": sum(row.attempts > 0 and row.id not in marked_ids for row in rows),
        "report_jobs": {str(status): n for status, n in jobs.items()},
        "report_jobs_stuck": sum(n for status, n in jobs.items() if status in (JobStatus.queued, JobStatus.running)),
    }


def run(args: argparse.Namespace, scenarios: Sequence[str], workdir: Path, log_dir: Path) -> dict[str, Any]:
    from shared.models import make_engine, make_session_factory
    from shared.models.migrate import upgrade
    from shared.models.scratch import create_database
    from shared.settings import Settings
    from tests.processes import PrivateRedis
    from tests.tiny_model import TINY_MODEL_TEXTS, build_tiny_qwen2

    started = time.monotonic()
    h = Harness(args, workdir, log_dir)
    try:
        h.db_url = create_database(args.pg_url, "yuejuan_chaos")
        upgrade(h.db_url)
        h.db_engine = make_engine(h.db_url)
        h.sessions = make_session_factory(h.db_engine)
        (workdir / "redis").mkdir()
        h.redis = PrivateRedis(workdir / "redis")
        h.redis.start()
        h.settings = Settings(database_url=h.db_url, broker_url=h.redis.url,
                              batch_token_budget=args.batch_token_budget)
        h.model_dir = build_tiny_qwen2(workdir / "model", TINY_MODEL_TEXTS)
        needed = essays_needed(args, scenarios)
        candidates, source = candidate_texts(args.essays_from, needed * 2 + 50)
        say(f"essays from {source}: screening for {needed} the random-weight model can answer")
        h.texts, screened_out = answerable(h.model_dir, candidates, needed)
        say(f"  {screened_out} screened out")
        h.start_service()
        h.use_gpu_workers(None)
        figures: dict[str, Any] = {}
        for name in scenarios:
            say(f"[{name}]")
            figures[name] = RUNNERS[name](h)
        say("[end] waiting for every essay and report job to settle")
        settled = h.settle(h.classes, "every essay to settle")
        h.settle_reports("every report job to settle")
        counts = totals(h)
    finally:
        h.close()
    recoveries = [figures[name]["recovery_s"] for name in ("kill", "broker-loss")
                  if name in figures and figures[name]["recovery_s"] is not None]
    fair = figures.get("fairness", {})
    return {
        **{key: counts[key] for key in ("essays", "graded", "failed_innocent", "stuck", "duplicates")},
        "recovery_s": max(recoveries, default=None),
        "fairness_first_essay_s_max": fair.get("first_essay_s_max"),
        "fairness_first_essay_s_median": fair.get("first_essay_s_median"),
        "fairness_completion_s_max": fair.get("completion_s_max"),
        "fairness_completion_s_median": fair.get("completion_s_median"),
        "failed": counts["failed"], "failed_marked": counts["failed_marked"],
        "charged_innocent": counts["charged_innocent"], "settled": settled,
        "report_jobs": counts["report_jobs"], "report_jobs_stuck": counts["report_jobs_stuck"],
        "gpu_workers": args.gpu_workers, "essay_source": source, "screened_out": screened_out,
        "wall_s": round(time.monotonic() - started, 1), "scenarios": figures,
    }


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated, of: " + ", ".join(SCENARIOS))
    parser.add_argument("--classes", type=int, default=20, help="classes sent at once in the fairness scenario")
    parser.add_argument("--essays", type=int, default=6, help="essays per fairness class")
    parser.add_argument("--big-class", type=int, default=None,
                        help="essays in the kill and broker-loss classes (default: 4 x --essays, at least 12)")
    parser.add_argument("--marked-class", type=int, default=6, help="essays in the crash and time-limit classes")
    parser.add_argument("--gpu-workers", type=int, default=1)
    parser.add_argument("--batch-token-budget", type=int, default=8192,
                        help="YUEJUAN_BATCH_TOKEN_BUDGET: 8192 puts about 3 real essays in a task, so each "
                        "class is several tasks, as a full class is at the default budget")
    parser.add_argument("--max-attempts", type=int, default=3, help="YUEJUAN_MAX_GRADING_ATTEMPTS")
    parser.add_argument("--time-limit-s", type=int, default=12,
                        help="YUEJUAN_TASK_TIME_LIMIT_S of the time-limit scenario's worker (soft limit 90%%)")
    parser.add_argument("--settle-timeout-s", type=float, default=600,
                        help="how long a scenario may take to settle before its essays count as stuck")
    parser.add_argument("--reports-timeout-s", type=float, default=120,
                        help="how long report jobs may take to finish before they count as stuck")
    parser.add_argument("--essays-from", default=str(DEFAULT_ESSAYS), help="an ACEA data.json, or 'synthetic'")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="admin database beside which a scratch one is made")
    parser.add_argument("--log-dir", type=Path, default=None, help="keep the processes' logs here")
    args = parser.parse_args(argv)
    scenarios = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown or not scenarios:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")
    if args.big_class is None:
        args.big_class = max(12, 4 * args.essays)
    args.marked_class = max(2, args.marked_class)
    return args, [name for name in SCENARIOS if name in scenarios]


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args, scenarios = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # clean up on `kill` as on Ctrl-C
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory(prefix="yuejuan-chaos-") as temp:
        log_dir = args.log_dir or Path(temp) / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        figures = run(args, scenarios, Path(temp), log_dir)
    for key, value in figures.items():
        if key != "scenarios":
            say(f"{key}: {value}")
    say(json.dumps(figures, ensure_ascii=False))
    bad = figures["failed_innocent"] or figures["stuck"] or figures["duplicates"] or figures["report_jobs_stuck"]
    return 1 if bad else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: processes stopped, scratch database dropped", file=sys.stderr)
        sys.exit(130)
