"""Workbooks: request (a ReportJob plus a task sent by name), download when done (audited), admins' school report."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from services.web.state import app_state
from shared.failures import DATABASE_UNAVAILABLE, DISK_FULL, STORAGE_UNWRITABLE
from shared.models import AuditLog, JobStatus, ReportJob
from shared.report_jobs import ReportError
from tests.factories.world import World
from tests.web.conftest import TaskRecorder, client_as, form


def test_request_a_class_workbook_and_see_its_state(
    app: Flask, world: World, sessions: sessionmaker[Session], tasks: TaskRecorder
) -> None:
    client = client_as(app, world.users["owner"])
    assert client.post(f"/assignments/{world.assignment}/report", data=form()).status_code == 303
    with sessions() as session:
        job = session.scalar(select(ReportJob).where(ReportJob.assignment_id == world.assignment,
                                                     ReportJob.status == JobStatus.queued))
    assert job is not None and job.kind == "class_workbook" and job.requested_by == world.users["owner"]
    assert job.school_id == world.school_a and job.classroom_id == world.classroom
    assert tasks.sent == [("reports.class_workbook", [job.id])]
    page = client.get(f"/assignments/{world.assignment}/report").get_data(as_text=True)
    assert "排队中" in page and f'id="download-{world.class_report}"' in page


def test_download_a_finished_workbook_is_audited(app: Flask, world: World, sessions: sessionmaker[Session]) -> None:
    client = client_as(app, world.users["owner"])
    response = client.get(f"/reports/{world.class_report}/download")
    assert response.status_code == 200 and response.data == b"PK fake class workbook"
    assert "attachment" in response.headers["Content-Disposition"]
    assert "filename*=UTF-8''" in response.headers["Content-Disposition"]
    with sessions() as session:
        row = session.scalar(select(AuditLog).where(AuditLog.action == "report.download",
                                                    AuditLog.object_id == world.class_report))
    assert row is not None and row.actor_id == world.users["owner"] and row.details["kind"] == "class_workbook"


def test_a_workbook_that_is_not_ready_is_404_with_a_message(
    app: Flask, world: World, sessions: sessionmaker[Session]
) -> None:
    with sessions() as session, session.begin():
        session.execute(update(ReportJob).where(ReportJob.id == world.class_report)
                        .values(status=JobStatus.running))
    response = client_as(app, world.users["owner"]).get(f"/reports/{world.class_report}/download")
    assert response.status_code == 404 and "尚未生成完成" in response.get_data(as_text=True)


def test_school_workbook_for_admins(
    app: Flask, world: World, sessions: sessionmaker[Session], tasks: TaskRecorder
) -> None:
    admin = client_as(app, world.users["admin"])
    assert admin.get("/admin/reports").status_code == 200
    assert admin.post("/admin/reports", data=form(school_id=world.school_b)).status_code == 404
    assert admin.post("/admin/reports", data=form()).status_code == 303
    with sessions() as session:
        jobs = session.scalars(select(ReportJob).where(ReportJob.kind == "school_workbook",
                                                       ReportJob.requested_by == world.users["admin"])).all()
    assert [job.school_id for job in jobs] == [world.school_a]
    assert tasks.sent == [("reports.school_workbook", [jobs[0].id])]
    assert admin.get(f"/reports/{world.school_report}/download").data == b"PK fake school workbook"
    sysadmin = client_as(app, world.users["sysadmin"])
    assert sysadmin.post("/admin/reports", data=form(school_id=world.school_b)).status_code == 303
    assert tasks.sent[-1][0] == "reports.school_workbook"
    assert client_as(app, world.users["owner"]).get("/admin/reports").status_code == 403


SERVER_PATH = "/srv/yuejuan/data/reports/class_workbook-1.xlsx"


def _set_job(sessions: sessionmaker[Session], job_id: int, status: JobStatus, error: str | None) -> None:
    with sessions() as session, session.begin():
        session.execute(update(ReportJob).where(ReportJob.id == job_id).values(status=status, error=error))


def test_a_failed_job_shows_teachers_its_category_and_admins_the_detail(
    app: Flask, world: World, sessions: sessionmaker[Session]
) -> None:
    detail = f"OSError: [Errno 28] No space left on device: '{SERVER_PATH}'"
    _set_job(sessions, world.class_report, JobStatus.failed,
             ReportError(DISK_FULL, detail).to_text())
    url = f"/assignments/{world.assignment}/report"
    teacher = client_as(app, world.users["owner"]).get(url).get_data(as_text=True)
    assert "失败：磁盘空间不足" in teacher and f'id="retry-{world.class_report}"' in teacher
    assert SERVER_PATH not in teacher and "OSError" not in teacher and "Errno" not in teacher
    for key in ("admin", "sysadmin"):
        page = client_as(app, world.users[key]).get(url).get_data(as_text=True)
        assert "失败：磁盘空间不足" in page and SERVER_PATH in page and "No space left on device" in page

    # Errors stored before categories existed read as a generic error, their text for admins only.
    _set_job(sessions, world.class_report, JobStatus.failed, f"PermissionError: [Errno 13] {SERVER_PATH}")
    teacher = client_as(app, world.users["owner"]).get(url).get_data(as_text=True)
    assert "失败：生成报表时出错" in teacher and SERVER_PATH not in teacher
    assert SERVER_PATH in client_as(app, world.users["admin"]).get(url).get_data(as_text=True)


def test_a_job_waiting_for_a_retry_reads_as_retrying_not_failed(
    app: Flask, world: World, sessions: sessionmaker[Session]
) -> None:
    error = ReportError(STORAGE_UNWRITABLE, f"NotADirectoryError: [Errno 20] Not a directory: '{SERVER_PATH}'",
                        retry=2, max_retries=10)
    _set_job(sessions, world.class_report, JobStatus.queued, error.to_text())
    page = client_as(app, world.users["owner"]).get(f"/assignments/{world.assignment}/report").get_data(as_text=True)
    assert "重试中：存储目录不可写，将自动重试（第 2/10 次）" in page
    assert "失败" not in page and f'id="retry-{world.class_report}"' not in page and SERVER_PATH not in page

    school_error = ReportError(DATABASE_UNAVAILABLE, "OperationalError: connection refused", retry=1, max_retries=10)
    _set_job(sessions, world.school_report, JobStatus.queued, school_error.to_text())
    page = client_as(app, world.users["admin"]).get("/admin/reports").get_data(as_text=True)
    assert "重试中：数据库暂时不可用，将自动重试（第 1/10 次）" in page and "connection refused" in page


def test_regenerate_a_failed_job_resends_its_task_once(
    app: Flask, world: World, sessions: sessionmaker[Session], tasks: TaskRecorder
) -> None:
    owner = client_as(app, world.users["owner"])
    retry_url = f"/reports/{world.class_report}/retry"
    # A job that has not failed is not re-sent.
    refused = owner.post(retry_url, data=form(), follow_redirects=True)
    assert "无需重新生成" in refused.get_data(as_text=True) and tasks.sent == []

    _set_job(sessions, world.class_report, JobStatus.failed, ReportError(DISK_FULL, "OSError: disk").to_text())
    assert client_as(app, world.users["outsider"]).post(retry_url, data=form()).status_code == 404
    response = owner.post(retry_url, data=form())
    assert response.status_code == 303
    assert response.headers["Location"] == f"/assignments/{world.assignment}/report"
    assert tasks.sent == [("reports.class_workbook", [world.class_report])]
    assert owner.post(retry_url, data=form()).status_code == 303  # a double click: already queued, not re-sent
    assert tasks.sent == [("reports.class_workbook", [world.class_report])]
    with sessions() as session:
        job = session.get(ReportJob, world.class_report)
        assert (job.status, job.error, job.finished_at) == (JobStatus.queued, None, None)
        audited = session.scalars(select(AuditLog).where(AuditLog.action == "report.retry",
                                                         AuditLog.object_id == world.class_report)).all()
    assert [row.actor_id for row in audited] == [world.users["owner"]]

    # A school job is retried by its admins only.
    _set_job(sessions, world.school_report, JobStatus.failed, ReportError(DISK_FULL, "OSError: disk").to_text())
    assert owner.post(f"/reports/{world.school_report}/retry", data=form()).status_code == 404
    admin = client_as(app, world.users["admin"])
    assert admin.post(f"/reports/{world.school_report}/retry", data=form()).headers["Location"] == "/admin/reports"
    assert tasks.sent[-1] == ("reports.school_workbook", [world.school_report])


def test_a_job_whose_task_cannot_be_sent_is_failed_so_it_can_be_regenerated(
    app: Flask, world: World, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broker_down(name: str, args: Any = (), **_options: Any) -> None:
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(app_state(app).sender, "send_task", broker_down)
    owner = client_as(app, world.users["owner"])
    page = owner.post(f"/assignments/{world.assignment}/report", data=form(), follow_redirects=True)
    text = page.get_data(as_text=True)
    assert "暂时无法连接任务队列" in text and "失败：任务队列暂时不可用" in text
    with sessions() as session:
        job = session.scalars(select(ReportJob).where(ReportJob.assignment_id == world.assignment)
                              .order_by(ReportJob.id.desc())).first()
    assert job is not None and job.status == JobStatus.failed and f'id="retry-{job.id}"' in text
