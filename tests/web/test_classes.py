"""Classes and rosters: create, import from csv/xlsx (templates downloadable), add and remove students."""

from __future__ import annotations

import io

from flask import Flask
from openpyxl import Workbook, load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from shared.models import AuditLog, Classroom, Student
from tests.factories.world import World
from tests.web.conftest import client_as, form


def _roster(sessions: sessionmaker[Session], classroom_id: int) -> list[tuple[str, str | None]]:
    with sessions() as session:
        rows = session.execute(select(Student.name, Student.student_number).where(Student.classroom_id == classroom_id)
                               .order_by(Student.student_number)).all()
    return [(row.name, row.student_number) for row in rows]


def test_teacher_creates_a_class_and_duplicates_are_refused(
    app: Flask, world: World, sessions: sessionmaker[Session]
) -> None:
    client = client_as(app, world.users["colleague"])
    created = client.post("/classes/new", data=form(name=f"高二3班-{world.tag}"))
    assert created.status_code == 302
    with sessions() as session:
        classroom = session.scalar(select(Classroom).where(Classroom.name == f"高二3班-{world.tag}"))
    assert classroom is not None and classroom.teacher_id == world.users["colleague"]
    assert classroom.school_id == world.school_a
    again = client.post("/classes/new", data=form(name=f"高二3班-{world.tag}"))
    assert again.status_code == 400 and "已有名为" in again.get_data(as_text=True)
    assert client.post("/classes/new", data=form(name="")).status_code == 400
    listing = client.get("/classes").get_data(as_text=True)
    assert f"高二3班-{world.tag}" in listing and f"高三1班-{world.tag}" not in listing


def test_admin_creates_a_class_for_a_teacher_of_their_school_only(
    app: Flask, world: World, sessions: sessionmaker[Session]
) -> None:
    client = client_as(app, world.users["admin"])
    assert client.post("/classes/new", data=form(name=f"X-{world.tag}", teacher_id=world.users["outsider"])
                       ).status_code == 400
    assert client.post("/classes/new", data=form(name=f"Y-{world.tag}", teacher_id=world.users["colleague"])
                       ).status_code == 302
    with sessions() as session:
        assert session.scalar(select(Classroom.teacher_id).where(Classroom.name == f"Y-{world.tag}")) == \
            world.users["colleague"]


def test_roster_import_from_csv_adds_new_students_and_skips_known_ones(
    app: Flask, world: World, sessions: sessionmaker[Session]
) -> None:
    client = client_as(app, world.users["owner"])
    csv_data = "姓名,学号\n张三,001\n孙八,004\n周九,005\n".encode()
    response = client.post(f"/classes/{world.classroom}/roster", data=form(file=(io.BytesIO(csv_data), "名单.csv")),
                           content_type="multipart/form-data", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "新增 2 名学生" in page and "1 名已在名单中" in page
    assert ("孙八", "004") in _roster(sessions, world.classroom) and len(_roster(sessions, world.classroom)) == 5
    with sessions() as session:
        row = session.scalar(select(AuditLog).where(AuditLog.action == "roster.import",
                                                    AuditLog.object_id == world.classroom))
    assert row is not None and row.details["added"] == 2


def test_roster_import_from_the_xlsx_template(app: Flask, world: World, sessions: sessionmaker[Session]) -> None:
    client = client_as(app, world.users["owner"])
    template = client.get("/templates/roster.xlsx")
    assert template.status_code == 200 and "attachment" in template.headers["Content-Disposition"]
    workbook = load_workbook(io.BytesIO(template.data))
    sheet = workbook.worksheets[0]
    sheet.delete_rows(2, sheet.max_row)
    sheet.append(["吴十", "006"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    client.post(f"/classes/{world.classroom}/roster", data=form(file=(io.BytesIO(buffer.getvalue()), "名单.xlsx")),
                content_type="multipart/form-data")
    assert ("吴十", "006") in _roster(sessions, world.classroom)


def test_a_broken_roster_file_adds_nobody(app: Flask, world: World, sessions: sessionmaker[Session]) -> None:
    client = client_as(app, world.users["owner"])
    workbook = Workbook()
    workbook.worksheets[0].append(["无关", "列"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    for name, data in (("名单.xlsx", b"PK\x03\x04broken"), ("名单.xlsx", buffer.getvalue())):
        response = client.post(f"/classes/{world.classroom}/roster", data=form(file=(io.BytesIO(data), name)),
                               content_type="multipart/form-data", follow_redirects=True)
        assert "名单导入失败" in response.get_data(as_text=True)
    assert len(_roster(sessions, world.classroom)) == 3


def test_add_and_remove_students(app: Flask, world: World, sessions: sessionmaker[Session]) -> None:
    client = client_as(app, world.users["owner"])
    client.post(f"/classes/{world.classroom}/students", data=form(name="郑十一", student_number="007"))
    duplicate = client.post(f"/classes/{world.classroom}/students", data=form(name="别人", student_number="007"),
                            follow_redirects=True)
    assert "已有学号为 007" in duplicate.get_data(as_text=True)
    assert ("郑十一", "007") in _roster(sessions, world.classroom)
    refused = client.post(f"/classes/{world.classroom}/students/{world.students[0]}/delete", data=form(),
                          follow_redirects=True)
    assert "已有作文记录" in refused.get_data(as_text=True)
    client.post(f"/classes/{world.classroom}/students/{world.students[2]}/delete", data=form())
    names = [name for name, _ in _roster(sessions, world.classroom)]
    assert "王五" not in names and "张三" in names


def test_templates_download(app: Flask, world: World) -> None:
    client = client_as(app, world.users["owner"])
    for name in ("roster.xlsx", "roster.csv", "essays.xlsx", "essays.csv"):
        response = client.get(f"/templates/{name}")
        assert response.status_code == 200 and response.data, name
    assert client.get("/templates/other.txt").status_code == 404
