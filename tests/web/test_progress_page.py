"""The progress page's JSON carries the class workbook's state, and its download link once the file is written, so
the page shows the link by itself; the page renders the same without its script."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import delete, update
from sqlalchemy.orm import Session, sessionmaker

from shared.models import JobStatus, ReportJob, transaction
from tests.factories import add_report_job
from tests.factories.world import World
from tests.web.conftest import client_as


def test_progress_json_shows_the_class_workbook_link_when_ready(
    app: Flask, world: World, sessions: sessionmaker[Session]
) -> None:
    teacher = client_as(app, world.users["owner"])
    url = f"/assignments/{world.assignment}/progress.json"
    data = teacher.get(url).json
    assert data["workbook"] == {
        "job_id": world.class_report, "status": "done", "status_name": "已完成", "ready": True,
        "download_url": f"/reports/{world.class_report}/download", "updating": False,
    }
    assert data["ahead"] == 0 and data["finished"] is True
    page = teacher.get(f"/assignments/{world.assignment}").get_data(as_text=True)
    assert f'id="workbook-link" href="/reports/{world.class_report}/download"' in page
    assert teacher.get(data["workbook"]["download_url"]).status_code == 200

    # The job that adds the training plans is queued: the written workbook stays offered meanwhile.
    with transaction(sessions) as session:
        newer = add_report_job(session, "class_workbook", school_id=world.school_a, classroom_id=world.classroom,
                               assignment_id=world.assignment).id
    updating = teacher.get(url).json["workbook"]
    assert (updating["job_id"], updating["status"], updating["ready"], updating["updating"]) == (
        newer, "queued", True, True)
    assert updating["download_url"] == f"/reports/{world.class_report}/download"
    assert "正在生成加入训练计划的新版本" in teacher.get(f"/assignments/{world.assignment}").get_data(as_text=True)
    with transaction(sessions) as session:
        session.execute(delete(ReportJob).where(ReportJob.id == newer))

    with transaction(sessions) as session:
        session.execute(update(ReportJob).where(ReportJob.id == world.class_report).values(status=JobStatus.running))
    running = teacher.get(url).json["workbook"]
    assert running["ready"] is False and running["download_url"] is None and running["status_name"] == "生成中"
    page = teacher.get(f"/assignments/{world.assignment}").get_data(as_text=True)
    assert 'id="workbook-link" href="#" hidden' in page and "生成中" in page

    # No workbook yet for the other class's assignment; other teachers and anonymous get nothing.
    assert client_as(app, world.users["outsider"]).get(f"/assignments/{world.assignment_b}/progress.json").json[
        "workbook"] is None
    assert client_as(app, world.users["outsider"]).get(url).status_code == 404
    assert client_as(app, None).get(url).status_code in (302, 401)
