"""Report endpoints of the API (list, request, read, download; school workbooks for admins), their access rules, and
the API's times (ISO 8601 with the configured zone's offset, from PostgreSQL and SQLite alike) and UTF-8 JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from services.web.state import app_state
from shared.models import AuditLog, JobStatus, ReportJob, transaction
from tests.factories.world import World
from tests.web.conftest import TaskRecorder, make_app

STORED = datetime(2026, 3, 1, 20, 30, 5, tzinfo=UTC)


def _api(app: Flask, world: World, who: str) -> Any:
    client = app.test_client()
    headers = {"Authorization": f"Bearer {world.tokens[who]}"}
    return lambda method, url: getattr(client, method)(f"/api/v1{url}", headers=headers)


def test_a_teacher_lists_requests_and_downloads_class_workbooks(
    app: Flask, world: World, sessions: sessionmaker[Session], tasks: TaskRecorder
) -> None:
    api = _api(app, world, "owner")
    with transaction(sessions) as session:
        session.execute(update(ReportJob).where(ReportJob.id == world.class_report).values(
            created_at=STORED, finished_at=STORED))
    listed = api("get", f"/assignments/{world.assignment}/reports")
    assert listed.status_code == 200
    (job,) = listed.json["reports"]
    assert job == {
        "id": world.class_report, "kind": "class_workbook", "status": "done", "status_name": "已完成",
        "problem": None, "school_id": world.school_a, "classroom_id": world.classroom,
        "assignment_id": world.assignment, "created_at": "2026-03-02T04:30:05+08:00",
        "finished_at": "2026-03-02T04:30:05+08:00", "ready": True,
        "download_url": f"/api/v1/reports/{world.class_report}/download",
    }
    assert [j["id"] for j in api("get", f"/classes/{world.classroom}/reports").json["reports"]] == [world.class_report]
    assert api("get", f"/reports/{world.class_report}").json == job
    progress = api("get", f"/assignments/{world.assignment}/progress").json["workbook"]
    assert (progress["ready"], progress["download_url"]) == (True, f"/api/v1/reports/{world.class_report}/download")
    download = api("get", f"/reports/{world.class_report}/download")
    assert download.status_code == 200 and download.data == b"PK fake class workbook"
    assert "attachment" in download.headers["Content-Disposition"]

    requested = api("post", f"/assignments/{world.assignment}/reports")
    assert requested.status_code == 202
    new = requested.json
    assert (new["status"], new["status_name"], new["ready"], new["download_url"]) == ("queued", "排队中", False, None)
    assert new["created_at"].endswith("+08:00")
    assert tasks.sent[-1] == ("reports.class_workbook", [new["id"]])
    assert [j["id"] for j in api("get", f"/assignments/{world.assignment}/reports").json["reports"]] == [
        new["id"], world.class_report]
    assert api("get", f"/reports/{new['id']}/download").status_code == 404  # not written yet
    with sessions() as session:
        actions = session.scalars(select(AuditLog.action).where(AuditLog.object_type == "report",
                                                                AuditLog.object_id.in_([world.class_report,
                                                                                        new["id"]]))).all()
    assert sorted(actions) == ["report.download", "report.request"]


def test_report_endpoints_keep_to_the_callers_classes_and_school(app: Flask, world: World) -> None:
    outsider = _api(app, world, "outsider")
    for url in (f"/assignments/{world.assignment}/reports", f"/classes/{world.classroom}/reports",
                f"/reports/{world.class_report}", f"/reports/{world.class_report}/download",
                f"/reports/{world.school_report}", f"/schools/{world.school_a}/reports"):
        assert outsider("get", url).status_code == 404, url
    assert outsider("post", f"/assignments/{world.assignment}/reports").status_code == 404
    teacher = _api(app, world, "owner")
    assert teacher("get", f"/schools/{world.school_a}/reports").status_code == 404  # teachers: no school reports
    assert teacher("post", f"/schools/{world.school_a}/reports").status_code == 404
    assert teacher("get", f"/reports/{world.school_report}").status_code == 404
    other_admin = _api(app, world, "other_admin")
    assert other_admin("get", f"/schools/{world.school_a}/reports").status_code == 404
    assert other_admin("get", f"/reports/{world.school_report}/download").status_code == 404
    assert app.test_client().get(f"/api/v1/reports/{world.class_report}").status_code == 401


def test_a_school_admin_lists_and_requests_school_workbooks(
    app: Flask, world: World, tasks: TaskRecorder
) -> None:
    admin = _api(app, world, "admin")
    listed = admin("get", f"/schools/{world.school_a}/reports").json["reports"]
    assert [j["id"] for j in listed] == [world.school_report] and listed[0]["detail"] is None
    assert admin("get", f"/reports/{world.school_report}/download").data == b"PK fake school workbook"
    requested = admin("post", f"/schools/{world.school_a}/reports")
    assert requested.status_code == 202 and requested.json["kind"] == "school_workbook"
    assert tasks.sent[-1] == ("reports.school_workbook", [requested.json["id"]])
    assert _api(app, world, "sysadmin")("get", f"/schools/{world.school_a}/reports").status_code == 200


def test_api_json_is_utf8_and_times_follow_the_configured_zone(
    pg_url: str, redis_url: str, web_data_dir: Path, world: World, sessions: sessionmaker[Session]
) -> None:
    with transaction(sessions) as session:
        session.execute(update(ReportJob).where(ReportJob.id == world.class_report).values(created_at=STORED))
    utc_app = make_app(pg_url, redis_url, web_data_dir, timezone="UTC")
    try:
        job = _api(utc_app, world, "owner")("get", f"/reports/{world.class_report}")
        assert job.json["created_at"] == "2026-03-01T20:30:05+00:00"
        essay = _api(utc_app, world, "owner")("get", f"/essays/{world.essay}")
        raw = essay.get_data()
        assert "张三".encode() in raw and b"\\u" not in raw  # UTF-8, no \u escapes
        assert essay.json["grade"]["created_at"].endswith("+00:00")
    finally:
        app_state(utc_app).engine.dispose()


def test_sqlite_times_carry_the_offset_too(tmp_path: Path, password_hash: str) -> None:
    from shared.models import make_engine, make_session_factory
    from shared.models.migrate import upgrade
    from tests.factories.world import build_world

    url = f"sqlite:///{tmp_path / 'api.sqlite'}"
    upgrade(url)
    sessions = make_session_factory(make_engine(url))
    world = build_world(sessions, password_hash, tmp_path)
    with transaction(sessions) as session:
        session.execute(update(ReportJob).where(ReportJob.id == world.class_report).values(
            created_at=STORED, status=JobStatus.done))
    app = make_app(url, "memory://", tmp_path)
    try:
        api = _api(app, world, "owner")
        assert api("get", f"/reports/{world.class_report}").json["created_at"] == "2026-03-02T04:30:05+08:00"
        assignment = api("get", f"/assignments/{world.assignment}").json
        assert assignment["created_at"].endswith("+08:00")
    finally:
        app_state(app).engine.dispose()
