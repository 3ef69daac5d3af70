"""Exporting everything held about one student (subject access request): complete, only theirs, audited."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from services.cli import main
from services.web.state import app_state
from shared.models import AuditLog
from shared.subject_export import EXPORT_ACTION, EXPORT_FORMAT, export_student
from tests.factories.people import People
from tests.ops.conftest import PeopleFactory
from tests.web.conftest import client_as


def _check_export(data: dict[str, Any], people: People) -> None:
    jia = people.person("甲")
    assert data["format"] == EXPORT_FORMAT
    assert data["student"]["name"] == jia.name and data["student"]["student_number"] == f"{people.tag}甲"
    assert data["student"]["classroom"]["id"] == people.classroom_a
    assert data["student"]["school"]["name"] == people.school_name
    [essay] = data["essays"]
    assert essay["text"] == jia.text and essay["assignment"]["id"] == people.assignment_a
    assert [g["version"] for g in essay["grades"]] == [1, 2]
    assert [g["source"] for g in essay["grades"]] == ["model", "teacher"]
    assert essay["grades"][0]["errors"][0]["original"] == "梦想"
    assert essay["grades"][0]["deductions"] == [{"rule": "length", "points": -2, "detail": f"{jia.name}字数不足"}]
    assert [p["narrative"] for p in data["training_plans"]] == [f"{jia.name}需要加强用词训练。"]
    actions = {(row["action"], row["object_type"]) for row in data["audit"]}
    assert {("student.add", "classroom"), ("essay.view", "essay")} <= actions
    assert all("ip" not in row for row in data["audit"])
    text = json.dumps(data, ensure_ascii=False)
    for other in ("乙", "丙", "丁"):
        assert people.person(other).name not in text, f"{other}'s data leaked into 甲's export"


def test_the_export_holds_everything_about_the_student_and_nothing_else(
    make_people: PeopleFactory,
    db_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    people = make_people(db_sessions, tmp_path)
    with db_sessions() as session:
        data = export_student(session, people.person("甲").id)
        assert export_student(session, -1) is None
    assert data is not None
    _check_export(json.loads(json.dumps(data)), people)


def test_an_admin_downloads_the_export_and_it_is_audited(
    make_people: PeopleFactory, ops_app: Flask, ops_sessions: sessionmaker[Session]
) -> None:
    people = make_people(ops_sessions, app_state(ops_app).settings.data_dir)
    jia = people.person("甲")
    url = f"/admin/students/{jia.id}/export"
    assert client_as(ops_app, people.teacher).get(url).status_code == 403
    response = client_as(ops_app, people.admin).get(url)
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Content-Disposition"] == f"attachment; filename=student-{jia.id}.json"
    assert response.headers["Cache-Control"] == "no-store"
    _check_export(response.get_json(), people)
    with ops_sessions() as session:
        row = session.scalar(select(AuditLog).where(AuditLog.action == EXPORT_ACTION, AuditLog.object_id == jia.id))
    assert row is not None and row.object_type == "student" and row.actor_id == people.admin
    assert row.details == {"essays": 1, "audit_rows": len(response.get_json()["audit"])}


def test_yuejuan_export_student_writes_a_private_file(
    make_people: PeopleFactory,
    pg_url: str, pg_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    people = make_people(pg_sessions, tmp_path)
    jia = people.person("甲")
    out = tmp_path / "export.json"
    env = {"YUEJUAN_DATABASE_URL": pg_url, "YUEJUAN_DATA_DIR": str(tmp_path)}
    result = CliRunner().invoke(main, ["export", "student", str(jia.id), "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    _check_export(json.loads(out.read_text(encoding="utf-8")), people)
    with pg_sessions() as session:
        row = session.scalar(select(AuditLog).where(AuditLog.action == EXPORT_ACTION, AuditLog.object_id == jia.id))
    assert row is not None and row.actor == "cli"
    missing = CliRunner().invoke(main, ["export", "student", "0", "--out", str(tmp_path / "x.json")], env=env)
    assert missing.exit_code == 1 and not (tmp_path / "x.json").exists()
