"""Workbooks: request (a ReportJob plus a task sent by name), download when done (audited), admins' school report."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from shared.models import AuditLog, JobStatus, ReportJob
from tests.web.conftest import TaskRecorder, client_as, form
from tests.web.world import World


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
