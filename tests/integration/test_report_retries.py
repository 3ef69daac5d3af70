"""Report jobs that meet a full or unwritable disk, or a database that is away, retry with back-off and succeed.

The eager tests run the registered tasks through Celery's own retry path (``apply`` re-runs a retried task at
once, so no test waits for the countdown); the last test sends the task to a real report worker over Redis.
"""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from celery import Celery
from celery.exceptions import Reject
from kombu.exceptions import OperationalError as KombuOperationalError
from openpyxl import load_workbook
from openpyxl.workbook.workbook import Workbook
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from services.worker import runtime
from services.worker.reports import class_workbook
from services.worker.reports.tasks import REPORT_MAX_RETRIES, register_report_tasks, retry_delay, run_report_task
from shared.celery_app import make_celery
from shared.failures import BROKER_UNAVAILABLE, DATABASE_UNAVAILABLE, DISK_FULL, INTERNAL, STORAGE_UNWRITABLE, classify
from shared.models import AuditLog, JobStatus, ReportJob, make_engine, make_session_factory
from shared.report_jobs import parse_error
from shared.settings import Settings
from shared.tasks import CLASS_WORKBOOK_TASK, SCHOOL_WORKBOOK_TASK, ReportKind
from tests.factories import ClassFixture, make_class, make_report_job
from tests.processes import PrivateRedis, wait_for, worker_env, worker_process

CLASS_REPORT, SCHOOL_REPORT = ReportKind.class_workbook, ReportKind.school_workbook
UNREACHABLE_PG = "postgresql+psycopg://postgres@127.0.0.1:1/nobody_listens_here"


@pytest.fixture()
def fixture_class(pg_sessions: sessionmaker[Session], schools: list[int]) -> ClassFixture:
    fixture = make_class(pg_sessions, ["读书" * 200, "作文" * 300, "文章" * 400], tag=uuid.uuid4().hex[:6])
    schools.append(fixture.school_id)
    return fixture


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture()
def app(pg_url: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Celery]:
    """The report tasks on a Celery app, with the worker runtime configured as in a report worker."""
    settings = Settings(database_url=pg_url, broker_url="memory://", data_dir=data_dir)
    celery = make_celery(settings)
    register_report_tasks(celery)
    monkeypatch.setattr(runtime, "_state", runtime._State())
    runtime.configure(settings, worker_id="test-report-retries", queues=["reports"], load_model=False)
    yield celery
    runtime.sessions().kw["bind"].dispose()


def _state(sessions: sessionmaker[Session], job_id: int) -> tuple[JobStatus, str | None]:
    with sessions() as session:
        job = session.get(ReportJob, job_id)
        assert job is not None
        return job.status, job.error


def _record_countdowns(celery: Celery, name: str, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The countdown of every retry the task asks Celery for."""
    task, countdowns = celery.tasks[name], []
    original = task.retry

    def retry(*args: Any, **kwargs: Any) -> Any:
        countdowns.append(kwargs["countdown"])
        return original(*args, **kwargs)

    monkeypatch.setattr(task, "retry", retry)
    return countdowns


def _only_file(directory: Path) -> Path:
    files = sorted(directory.iterdir())
    assert len(files) == 1, f"expected exactly one file in {directory}, found {[f.name for f in files]}"
    return files[0]


def test_back_off_doubles_from_5_s_to_10_minutes_and_spans_more_than_several_minutes() -> None:
    delays = [retry_delay(n) for n in range(REPORT_MAX_RETRIES)]
    assert delays == [5, 10, 20, 40, 80, 160, 320, 600, 600, 600]
    assert sum(delays) > 30 * 60


def test_an_unwritable_reports_directory_is_retried_until_it_is_fixed(
    app: Celery, pg_sessions: sessionmaker[Session], fixture_class: ClassFixture, data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A regular file where the reports directory should be: every write under it fails, for root too.
    blocker = data_dir / "reports"
    blocker.write_text("not a directory")
    job_id = make_report_job(pg_sessions, CLASS_REPORT, assignment_id=fixture_class.assignment_id,
                             school_id=fixture_class.school_id)
    real_save, seen = class_workbook.save_atomically, []

    def save(workbook: Workbook, path: Path) -> Path:
        seen.append(_state(pg_sessions, job_id))
        if len(seen) == 3:  # the administrator frees the directory before the third attempt writes
            blocker.unlink()
        return real_save(workbook, path)

    monkeypatch.setattr(class_workbook, "save_atomically", save)
    countdowns = _record_countdowns(app, CLASS_WORKBOOK_TASK, monkeypatch)

    result = app.tasks[CLASS_WORKBOOK_TASK].apply(args=[job_id])

    assert result.successful(), result.traceback
    assert countdowns == [5, 10]
    # While retries remain the job is queued again (running once the retry starts), never failed.
    assert [status for status, _ in seen] == [JobStatus.running] * 3
    errors = [parse_error(error) for _, error in seen]
    assert errors[0] is None
    assert [(e.category, e.retry, e.max_retries) for e in errors[1:] if e] == [
        (STORAGE_UNWRITABLE, 1, REPORT_MAX_RETRIES), (STORAGE_UNWRITABLE, 2, REPORT_MAX_RETRIES)]
    assert all(e is not None and "Errno" in e.detail for e in errors[1:])
    status, error = _state(pg_sessions, job_id)
    assert (status, error) == (JobStatus.done, None)
    path = _only_file(data_dir / "reports")
    assert path.name == f"class_workbook-{job_id}.xlsx" and result.get() == str(path)
    assert load_workbook(path).sheetnames[0] == "概览"
    with pg_sessions() as session:
        built = session.scalars(select(AuditLog).where(AuditLog.action == "report.built",
                                                       AuditLog.object_id == job_id)).all()
    assert len(built) == 1


def _disk_full_saves(monkeypatch: pytest.MonkeyPatch, failures: int) -> list[str]:
    """Workbook.save writes part of the file, then fails as a full disk does, ``failures`` times."""
    real_save, targets = Workbook.save, []

    def save(self: Workbook, filename: str) -> None:
        targets.append(str(filename))
        if len(targets) <= failures:
            Path(filename).write_bytes(b"PK\x03\x04 half a workbook")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(filename))
        real_save(self, filename)

    monkeypatch.setattr(Workbook, "save", save)
    return targets


def test_a_full_disk_is_retried_and_leaves_exactly_one_workbook(
    app: Celery, pg_sessions: sessionmaker[Session], fixture_class: ClassFixture, data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job_id = make_report_job(pg_sessions, SCHOOL_REPORT, school_id=fixture_class.school_id)
    targets = _disk_full_saves(monkeypatch, failures=3)
    countdowns = _record_countdowns(app, SCHOOL_WORKBOOK_TASK, monkeypatch)

    result = app.tasks[SCHOOL_WORKBOOK_TASK].apply(args=[job_id])

    assert result.successful(), result.traceback
    assert len(targets) == 4 and countdowns == [5, 10, 20]
    assert _state(pg_sessions, job_id) == (JobStatus.done, None)
    path = _only_file(data_dir / "reports")  # no half-written temporary file is left behind
    assert path.name == f"school_workbook-{job_id}.xlsx"
    assert load_workbook(path).sheetnames[0] == "概览"


def test_a_disk_that_stays_full_fails_the_job_after_the_last_retry(
    app: Celery, pg_sessions: sessionmaker[Session], fixture_class: ClassFixture, data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job_id = make_report_job(pg_sessions, CLASS_REPORT, assignment_id=fixture_class.assignment_id,
                             school_id=fixture_class.school_id)
    targets = _disk_full_saves(monkeypatch, failures=10**6)
    countdowns = _record_countdowns(app, CLASS_WORKBOOK_TASK, monkeypatch)

    result = app.tasks[CLASS_WORKBOOK_TASK].apply(args=[job_id])

    assert result.failed() and isinstance(result.result, OSError)
    assert len(targets) == REPORT_MAX_RETRIES + 1
    assert countdowns == [retry_delay(n) for n in range(REPORT_MAX_RETRIES)]
    status, error = _state(pg_sessions, job_id)
    parsed = parse_error(error)
    assert status == JobStatus.failed and parsed is not None
    assert (parsed.category, parsed.retrying) == (DISK_FULL, False)
    assert "No space left on device" in parsed.detail
    assert list((data_dir / "reports").iterdir()) == []


def test_a_programming_error_fails_at_once_without_retrying(
    app: Celery, pg_sessions: sessionmaker[Session], fixture_class: ClassFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    job_id = make_report_job(pg_sessions, CLASS_REPORT, school_id=fixture_class.school_id)  # no assignment
    countdowns = _record_countdowns(app, CLASS_WORKBOOK_TASK, monkeypatch)
    result = app.tasks[CLASS_WORKBOOK_TASK].apply(args=[job_id])
    assert result.failed() and isinstance(result.result, ValueError)
    assert countdowns == []
    status, error = _state(pg_sessions, job_id)
    parsed = parse_error(error)
    assert status == JobStatus.failed and parsed is not None
    assert (parsed.category, parsed.retrying, parsed.label) == (INTERNAL, False, "生成报表时出错")
    assert "assignment_id" in parsed.detail


def test_a_database_that_is_away_is_retried_until_it_answers(
    app: Celery, pg_sessions: sessionmaker[Session], fixture_class: ClassFixture, data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job_id = make_report_job(pg_sessions, CLASS_REPORT, assignment_id=fixture_class.assignment_id,
                             school_id=fixture_class.school_id)
    unreachable = make_engine(UNREACHABLE_PG)
    real_sessions, calls = runtime.sessions, []

    def sessions() -> sessionmaker[Session]:
        calls.append(1)
        return make_session_factory(unreachable) if len(calls) <= 2 else real_sessions()

    monkeypatch.setattr(runtime, "sessions", sessions)
    countdowns = _record_countdowns(app, CLASS_WORKBOOK_TASK, monkeypatch)
    try:
        result = app.tasks[CLASS_WORKBOOK_TASK].apply(args=[job_id])
    finally:
        unreachable.dispose()
    assert result.successful(), result.traceback
    assert countdowns == [5, 10]
    assert _state(pg_sessions, job_id) == (JobStatus.done, None)
    assert _only_file(data_dir / "reports").name == f"class_workbook-{job_id}.xlsx"


def test_a_lost_database_is_categorised_for_the_teacher() -> None:
    from sqlalchemy.exc import OperationalError

    engine = make_engine(UNREACHABLE_PG)
    try:
        with pytest.raises(OperationalError) as caught, engine.connect():
            pass
    finally:
        engine.dispose()
    assert classify(caught.value) == DATABASE_UNAVAILABLE


@pytest.mark.slow
@pytest.mark.processes
def test_a_real_report_worker_retries_a_blocked_directory_and_finishes_once_it_is_free(
    pg_url: str, pg_sessions: sessionmaker[Session], fixture_class: ClassFixture, data_dir: Path, tmp_path: Path,
) -> None:
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    broker = PrivateRedis(redis_dir)
    broker.start()
    blocker = data_dir / "reports"
    blocker.write_text("not a directory")
    job_id = make_report_job(pg_sessions, CLASS_REPORT, assignment_id=fixture_class.assignment_id,
                             school_id=fixture_class.school_id)
    worker = worker_process(worker_env(database_url=pg_url, broker_url=broker.url, data_dir=str(data_dir)),
                            tmp_path / "reports-worker.log", queues="reports").start()
    try:
        make_celery(Settings(database_url=pg_url, broker_url=broker.url)).send_task(CLASS_WORKBOOK_TASK,
                                                                                   args=[job_id])

        def retrying() -> bool:
            status, error = _state(pg_sessions, job_id)
            parsed = parse_error(error)
            return status == JobStatus.queued and parsed is not None and parsed.retrying

        wait_for(retrying, timeout=120, what="the job to wait for a retry")
        status, error = _state(pg_sessions, job_id)
        parsed = parse_error(error)
        assert parsed is not None and parsed.category == STORAGE_UNWRITABLE and (parsed.retry or 0) >= 1
        blocker.unlink()  # the disk is fine again
        wait_for(lambda: _state(pg_sessions, job_id)[0] == JobStatus.done, timeout=120,
                 what="the retried job to finish")
    finally:
        worker.stop()
        broker.stop()
    assert _state(pg_sessions, job_id) == (JobStatus.done, None)
    path = _only_file(data_dir / "reports")
    assert path.name == f"class_workbook-{job_id}.xlsx" and load_workbook(path).sheetnames[0] == "概览"
    assert "retry 1 of 10 in 5 s" in worker.log()


class _TaskWhoseRetryCannotBePublished:
    """Stands in for the bound task when the broker refuses the retry message (Celery raises Reject)."""

    max_retries = REPORT_MAX_RETRIES

    def __init__(self) -> None:
        self.request = SimpleNamespace(retries=0)

    def retry(self, *, exc: BaseException, countdown: int) -> None:
        raise Reject(KombuOperationalError("[Errno 111] Connection refused"), requeue=False)


def test_a_retry_that_cannot_be_sent_fails_the_job_so_it_can_be_regenerated(
    app: Celery, pg_sessions: sessionmaker[Session], fixture_class: ClassFixture, data_dir: Path,
) -> None:
    (data_dir / "reports").write_text("not a directory")
    job_id = make_report_job(pg_sessions, CLASS_REPORT, assignment_id=fixture_class.assignment_id,
                             school_id=fixture_class.school_id)
    with pytest.raises(Reject):
        run_report_task(_TaskWhoseRetryCannotBePublished(), job_id, CLASS_REPORT)  # type: ignore[arg-type]
    status, error = _state(pg_sessions, job_id)
    parsed = parse_error(error)
    assert status == JobStatus.failed and parsed is not None
    assert (parsed.category, parsed.retrying) == (BROKER_UNAVAILABLE, False)
