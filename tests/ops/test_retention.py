"""Retention: backdated essays, grades, plans and reports are purged (rows and files); recent ones stay."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from services.cli import main
from services.worker import runtime
from services.worker.maintenance import PURGE_TASK, beat_schedule
from services.worker.tasks import register_tasks
from shared.celery_app import make_celery
from shared.models import (
    Assignment,
    AuditLog,
    Deduction,
    ErrorAnnotation,
    Essay,
    EssayStatus,
    Grade,
    ReportJob,
    Student,
    TrainingPlan,
    transaction,
)
from shared.models.base import utcnow
from shared.retention import PURGE_ACTION, retention_cutoff, run_retention
from shared.settings import Settings
from shared.tasks import REPORTS_QUEUE
from shared.upload_previews import PREVIEW_TTL_S, claim_preview, new_token, write_preview
from tests.factories.people import People, database_mentions, disk_mentions, rows
from tests.ops.conftest import PeopleFactory

OLD = timedelta(days=400)


def _essay_ids(people: People) -> list[int]:
    return [p.essay for p in people.students.values()]


def _assert_purged(sessions: sessionmaker[Session], people: People) -> None:
    essays = _essay_ids(people)
    assert rows(sessions, Essay, Essay.id.in_(essays)) == []
    assert rows(sessions, Grade, Grade.essay_id.in_(essays)) == []
    students = [p.id for p in people.students.values()]
    assert rows(sessions, TrainingPlan, TrainingPlan.student_id.in_(students)) == []
    assert rows(sessions, ReportJob, ReportJob.school_id.in_([people.school, people.bystander_school])) == []
    assert rows(sessions, Assignment, Assignment.id.in_([people.assignment_a, people.assignment_b])) == []
    assert not any(path.exists() for path in people.report_files.values())
    assert people.school_report_file is not None and not people.school_report_file.exists()
    assert len(rows(sessions, Student, Student.id.in_(students))) == 4, "rosters stay until erased explicitly"
    assert database_mentions(sessions, [people.person(k).text for k in ("甲", "乙", "丙", "丁")]) == []


def _assert_kept(sessions: sessionmaker[Session], people: People) -> None:
    essays = _essay_ids(people)
    assert len(rows(sessions, Essay, Essay.id.in_(essays))) == 4
    assert len(rows(sessions, Grade, Grade.essay_id.in_(essays))) == 8
    grades = select(Grade.id).where(Grade.essay_id.in_(essays))
    assert len(rows(sessions, ErrorAnnotation, ErrorAnnotation.grade_id.in_(grades))) == 8
    assert len(rows(sessions, Deduction, Deduction.grade_id.in_(grades))) == 8
    assert all(path.is_file() for path in people.report_files.values())


def test_expired_data_is_purged_and_recent_data_kept(
    make_people: PeopleFactory, db_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    old = make_people(db_sessions, tmp_path / "old", created_at=utcnow() - OLD)
    recent = make_people(db_sessions, tmp_path / "recent")
    result = run_retention(db_sessions, tmp_path / "old", 365, actor="pytest")
    assert result is not None and result["essays"] >= 4 and result["files"] >= 5
    _assert_purged(db_sessions, old)
    _assert_kept(db_sessions, recent)
    with db_sessions() as session:
        row = session.scalar(select(AuditLog).where(AuditLog.action == PURGE_ACTION).order_by(AuditLog.id.desc()))
    assert row is not None and row.actor == "pytest" and row.details["retention_days"] == 365
    assert row.details["essays"] == result["essays"], "the audit row has counts only"


def _abandoned_preview(data_dir: Path, people: People) -> list[Path]:
    """A preview of 甲's essay and its confirm claim, as a teacher who never came back leaves them."""
    jia, token = people.person("甲"), new_token()
    write_preview(data_dir, token, {"token": token, "user_id": people.teacher, "assignment_id": people.assignment_a,
                                    "items": [{"student_id": jia.id, "student_name": jia.name, "text": jia.text}]})
    assert claim_preview(data_dir, token, user_id=people.teacher, assignment_id=people.assignment_a)
    return [data_dir / "uploads" / f"{token}.json", data_dir / "uploads" / f"{token}.confirmed.json"]


def _age(paths: list[Path], seconds: float) -> None:
    then = time.time() - seconds
    for path in paths:
        os.utime(path, (then, then))


def test_the_nightly_purge_sweeps_expired_upload_previews_and_keeps_fresh_ones(
    make_people: PeopleFactory, db_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    people = make_people(db_sessions, tmp_path)  # its two previews were just made: a teacher is looking at them
    expired, ancient, recent = (_abandoned_preview(tmp_path, people) for _ in range(3))
    half_written = tmp_path / "uploads" / ".tmp-crashed.json"
    half_written.write_text(people.person("甲").name, encoding="utf-8")
    _age([*expired, half_written], PREVIEW_TTL_S + 60)
    _age(ancient, timedelta(days=400).total_seconds())
    _age(recent, PREVIEW_TTL_S - 60)
    fresh = [*people.previews.values(), *recent]

    result = run_retention(db_sessions, tmp_path, 365, actor="pytest")
    assert result is not None and result["upload_previews"] == 5
    assert [path for path in [*expired, *ancient, half_written] if path.exists()] == []
    assert all(path.is_file() for path in fresh), "a preview still within its two hours stays"
    _assert_kept(db_sessions, people)
    with db_sessions() as session:
        row = session.scalar(select(AuditLog).where(AuditLog.action == PURGE_ACTION).order_by(AuditLog.id.desc()))
    assert row is not None and row.details["upload_previews"] == 5, "the audit row counts the previews"

    _age(fresh, PREVIEW_TTL_S + 1)
    again = run_retention(db_sessions, tmp_path, 365, actor="pytest")
    assert again is not None and again["upload_previews"] == len(fresh)
    assert disk_mentions(tmp_path / "uploads", [people.person("甲").name]) == []


def test_an_essay_being_graded_is_left_for_the_next_run_unless_its_task_is_gone(
    make_people: PeopleFactory, db_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    old = make_people(db_sessions, tmp_path, created_at=utcnow() - OLD)
    busy, abandoned = old.person("甲").essay, old.person("乙").essay
    with transaction(db_sessions) as session:
        session.execute(update(Essay).where(Essay.id == busy).values(
            status=EssayStatus.grading, lease_until=utcnow() + timedelta(seconds=60)))
        session.execute(update(Essay).where(Essay.id == abandoned).values(
            status=EssayStatus.grading, lease_until=utcnow() - timedelta(seconds=1)))
    run_retention(db_sessions, tmp_path, 365, actor="pytest")
    assert rows(db_sessions, Essay, Essay.id == busy)
    assert rows(db_sessions, Essay, Essay.id == abandoned) == [], "a lease that ran out holds nothing back"


def test_zero_days_disables_retention(
    make_people: PeopleFactory, db_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    old = make_people(db_sessions, tmp_path, created_at=utcnow() - timedelta(days=4000))
    assert retention_cutoff(0) is None
    assert run_retention(db_sessions, tmp_path, 0, actor="pytest") is None
    _assert_kept(db_sessions, old)


def test_beat_sends_the_purge_nightly_to_the_reports_queue() -> None:
    entry = beat_schedule(Settings())["purge-expired"]
    assert entry["task"] == PURGE_TASK and entry["options"]["queue"] == REPORTS_QUEUE
    assert entry["schedule"].hour == {3} and entry["schedule"].minute == {0}
    app = make_celery(Settings())
    assert app.amqp.router.route({}, PURGE_TASK)["queue"].name == REPORTS_QUEUE


def test_the_purge_task_on_a_reports_worker(
    make_people: PeopleFactory,
    pg_url: str, pg_sessions: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = make_people(pg_sessions, tmp_path, created_at=utcnow() - OLD)
    settings = Settings(database_url=pg_url, data_dir=tmp_path, retention_days=30)
    app = make_celery(settings)
    register_tasks(app)
    monkeypatch.setattr(runtime, "_state", runtime._State())
    runtime.configure(settings, worker_id="pytest-reports", queues=[REPORTS_QUEUE], load_model=False)
    result = app.tasks[PURGE_TASK]()
    assert result["essays"] >= 4
    _assert_purged(pg_sessions, old)


def test_yuejuan_purge(
    make_people: PeopleFactory, pg_url: str, pg_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    old = make_people(pg_sessions, tmp_path, created_at=utcnow() - OLD)
    abandoned = _abandoned_preview(tmp_path, old)
    _age(abandoned, PREVIEW_TTL_S + 60)
    env = {"YUEJUAN_DATABASE_URL": pg_url, "YUEJUAN_DATA_DIR": str(tmp_path), "YUEJUAN_RETENTION_DAYS": "0"}
    disabled = CliRunner().invoke(main, ["purge"], env=env)
    assert disabled.exit_code == 0 and "没有删除" in disabled.output
    _assert_kept(pg_sessions, old)
    assert old.previews["A"].is_file() and all(path.is_file() for path in abandoned)
    result = CliRunner().invoke(main, ["purge", "--days", "365"], env=env)
    assert result.exit_code == 0, result.output
    assert "过期上传预览 2 个" in result.output and not any(path.exists() for path in abandoned)
    _assert_purged(pg_sessions, old)
