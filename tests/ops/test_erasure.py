"""Erasing a student, a class or a school: no row in any table and no file on disk still mentions them.

The audit log keeps a row about the erasure (ids and counts) and nothing else: the scans below include it.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from services.cli import main
from services.web.state import app_state
from shared.erasure import ERASE_ACTION, ErasureRefused, erase
from shared.models import (
    AuditLog,
    Classroom,
    Essay,
    Grade,
    ReportJob,
    Role,
    School,
    Student,
    TrainingPlan,
    User,
    transaction,
)
from tests.factories import add_classroom, add_user
from tests.factories.people import People, database_mentions, disk_mentions, rows
from tests.ops.conftest import PeopleFactory
from tests.web.conftest import TaskRecorder, client_as, form

ADMIN = "pytest-admin"


def _erase_audit(sessions: sessionmaker[Session], target: str, object_id: int) -> AuditLog:
    with sessions() as session:
        row = session.scalar(select(AuditLog).where(
            AuditLog.action == ERASE_ACTION, AuditLog.object_type == target, AuditLog.object_id == object_id
        ))
    assert row is not None, f"no {ERASE_ACTION} audit row for {target} {object_id}"
    return row


def _assert_survives(sessions: sessionmaker[Session], people: People, *keys: str) -> None:
    for key in keys:
        person = people.person(key)
        assert rows(sessions, Student, Student.id == person.id), f"{key} was erased too"
        assert len(rows(sessions, Grade, Grade.essay_id == person.essay)) == 2
        assert rows(sessions, TrainingPlan, TrainingPlan.student_id == person.id)
    assert people.bystander_report_file is not None and people.bystander_report_file.is_file()
    assert people.previews["X"].is_file(), "another school's pending upload was removed"


def test_erasing_a_student_leaves_nothing_about_them(
    make_people: PeopleFactory, db_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    people = make_people(db_sessions, tmp_path)
    jia = people.person("甲")
    erased = erase(db_sessions, tmp_path, "student", jia.id, actor=ADMIN)
    assert erased is not None

    assert database_mentions(db_sessions, [jia.name]) == []
    assert disk_mentions(tmp_path, [jia.name]) == []
    assert rows(db_sessions, Essay, Essay.student_id == jia.id) == []
    assert rows(db_sessions, Grade, Grade.essay_id == jia.essay) == []
    assert rows(db_sessions, ReportJob, ReportJob.assignment_id == people.assignment_a) == []
    assert not people.previews["A"].exists()
    _assert_survives(db_sessions, people, "乙", "丙", "丁")
    # The school workbook counted 甲's scores: it goes (a bystander school's stays, see _assert_survives).
    assert people.school_report_file is not None and not people.school_report_file.exists()
    row = _erase_audit(db_sessions, "student", jia.id)
    assert row.details["essays"] == 1 and row.details["grades"] == 2 and row.details["training_plans"] == 1
    assert row.details["error_annotations"] == 2 and row.details["deductions"] == 2
    assert erase(db_sessions, tmp_path, "student", jia.id, actor=ADMIN) is None, "a second erasure finds nothing"


def test_erasing_a_class_leaves_nothing_about_it(
    make_people: PeopleFactory, db_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    people = make_people(db_sessions, tmp_path)
    jia, yi = people.person("甲"), people.person("乙")
    assert erase(db_sessions, tmp_path, "classroom", people.classroom_a, actor=ADMIN) is not None

    needles = [jia.name, yi.name, people.classroom_a_name]
    assert database_mentions(db_sessions, needles) == []
    assert disk_mentions(tmp_path, needles) == []
    assert rows(db_sessions, Classroom, Classroom.id == people.classroom_a) == []
    _assert_survives(db_sessions, people, "丙", "丁")
    assert _erase_audit(db_sessions, "classroom", people.classroom_a).details["students"] == 2


def test_erasing_a_school_leaves_nothing_about_it(
    make_people: PeopleFactory, db_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    people = make_people(db_sessions, tmp_path)
    needles = [people.person(k).name for k in ("甲", "乙", "丙")] + [people.school_name, people.classroom_a_name]
    assert erase(db_sessions, tmp_path, "school", people.school, actor=ADMIN) is not None

    assert database_mentions(db_sessions, needles) == []
    assert disk_mentions(tmp_path, needles) == []
    assert rows(db_sessions, School, School.id == people.school) == []
    assert rows(db_sessions, User, User.id.in_([people.admin, people.teacher])) == []
    assert rows(db_sessions, ReportJob, ReportJob.school_id == people.school) == []
    assert people.school_report_file is not None and not people.school_report_file.exists()
    assert people.rubric_dir is not None and not people.rubric_dir.exists()
    _assert_survives(db_sessions, people, "丁")
    details = _erase_audit(db_sessions, "school", people.school).details
    assert details["users"] == 2 and details["classrooms"] == 2 and details["schools"] == 1
    with db_sessions() as session:
        assert session.scalar(select(AuditLog.id).where(AuditLog.action == "student.add",
                                                        AuditLog.object_id == people.classroom_a)), \
            "earlier audit rows (ids only) are kept"


def test_a_school_whose_teacher_teaches_elsewhere_is_not_half_erased(
    make_people: PeopleFactory,
    db_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    people = make_people(db_sessions, tmp_path)
    with transaction(db_sessions) as session:
        add_classroom(session, people.bystander_school, people.teacher, f"借调-{people.tag}")
    with pytest.raises(ErasureRefused):
        erase(db_sessions, tmp_path, "school", people.school, actor=ADMIN)
    assert rows(db_sessions, School, School.id == people.school)
    assert rows(db_sessions, Student, Student.id == people.person("甲").id)
    assert people.school_report_file is not None and people.school_report_file.is_file()


# --- the admin pages -------------------------------------------------------------------------------------------


def _other_admin(sessions: sessionmaker[Session], people: People) -> int:
    with transaction(sessions) as session:
        return add_user(session, f"oadm-{people.tag}", "旁观教务", role=Role.school_admin,
                        school_id=people.bystander_school).id


def test_the_erase_pages_need_an_admin_of_the_school_csrf_and_the_typed_name(
    make_people: PeopleFactory,
    ops_app: Flask, ops_sessions: sessionmaker[Session]
) -> None:
    data_dir = app_state(ops_app).settings.data_dir
    people = make_people(ops_sessions, data_dir)
    jia = people.person("甲")
    url = f"/admin/students/{jia.id}/erase"
    assert client_as(ops_app, people.teacher).get(url).status_code == 403
    assert client_as(ops_app, _other_admin(ops_sessions, people)).post(url, data=form(confirm_name=jia.name)
                                                                       ).status_code == 404
    admin = client_as(ops_app, people.admin)
    page = admin.get(url)
    assert page.status_code == 200 and jia.name in page.get_data(as_text=True) and "不可撤销" in page.get_data(
        as_text=True)
    assert admin.post(url, data={"confirm_name": jia.name}).status_code == 400, "no CSRF token"
    assert admin.post(url, data=form(confirm_name="别的名字")).status_code == 400
    assert rows(ops_sessions, Student, Student.id == jia.id), "nothing erased without confirmation"

    done = admin.post(url, data=form(confirm_name=jia.name))
    assert done.status_code == 303 and done.headers["Location"] == f"/classes/{people.classroom_a}"
    assert rows(ops_sessions, Student, Student.id == jia.id) == []
    row = _erase_audit(ops_sessions, "student", jia.id)
    assert row.actor_id == people.admin and row.actor == f"adm-{people.tag}"
    assert database_mentions(ops_sessions, [jia.name]) == [] and disk_mentions(data_dir, [jia.name]) == []


def test_the_class_and_school_pages_erase_and_an_admin_of_an_erased_school_is_signed_out(
    make_people: PeopleFactory,
    ops_app: Flask, ops_sessions: sessionmaker[Session]
) -> None:
    data_dir = app_state(ops_app).settings.data_dir
    people = make_people(ops_sessions, data_dir)
    admin = client_as(ops_app, people.admin)
    page = admin.get(f"/admin/classes/{people.classroom_a}/erase").get_data(as_text=True)
    assert "学生：2" in page and "作文：2" in page
    page = admin.get(f"/admin/schools/{people.school}/erase").get_data(as_text=True)
    assert "班级：2" in page and "作文：3" in page and "账户：2" in page
    classes = admin.post(f"/admin/classes/{people.classroom_a}/erase", data=form(confirm_name=people.classroom_a_name))
    assert classes.status_code == 303 and rows(ops_sessions, Classroom, Classroom.id == people.classroom_a) == []
    assert people.school_name in admin.get("/admin/privacy").get_data(as_text=True)
    school = admin.post(f"/admin/schools/{people.school}/erase", data=form(confirm_name=people.school_name))
    assert school.status_code == 303 and school.headers["Location"] == "/login"
    assert rows(ops_sessions, School, School.id == people.school) == []
    assert admin.get("/classes").status_code == 302, "the erased account's session no longer works"


def test_uploads_and_rosters_leave_no_names_in_the_audit_log_and_erasure_removes_the_rest(
    make_people: PeopleFactory,
    ops_app: Flask, ops_sessions: sessionmaker[Session]
) -> None:
    app_state(ops_app).sender = TaskRecorder()
    data_dir = app_state(ops_app).settings.data_dir
    people = make_people(ops_sessions, data_dir)
    newcomer = f"戊{people.tag}"
    teacher = client_as(ops_app, people.teacher)
    roster = f"姓名,学号\n{newcomer},{people.tag}9\n".encode()
    assert teacher.post(f"/classes/{people.classroom_a}/roster", content_type="multipart/form-data",
                        data=form(file=(io.BytesIO(roster), f"{newcomer}名单.csv"))).status_code == 303
    essay = f"我的梦想\n我是{newcomer}，" + "我想当一名老师，因为老师可以帮助很多学生成长。" * 4
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr(f"{newcomer}.txt", essay.encode())
    preview = teacher.post(f"/assignments/{people.assignment_a}/upload", content_type="multipart/form-data",
                           data=form(files=[(io.BytesIO(archive.getvalue()), f"{newcomer}的作文.zip")]))
    assert preview.status_code == 303, preview.get_data(as_text=True)[-1500:]
    token = preview.headers["Location"].rsplit("/", 1)[1]
    assert teacher.post(f"/uploads/{token}/confirm", data=form()).status_code == 303
    rejected = teacher.post(f"/assignments/{people.assignment_a}/upload", content_type="multipart/form-data",
                            data=form(files=[(io.BytesIO(b"PK\x03\x04broken"), f"{newcomer}.zip")]))
    assert rejected.status_code == 400
    with ops_sessions() as session:
        logged = session.scalars(select(AuditLog).where(
            AuditLog.object_type.in_(["assignment", "classroom"]),
            AuditLog.object_id.in_([people.assignment_a, people.classroom_a]),
        )).all()
    assert {"roster.import", "upload.preview", "upload.confirm", "upload.rejected"} <= {r.action for r in logged}
    details = " ".join(str(r.details) for r in logged)
    assert newcomer not in details, "file names carry students' names: the audit log must not keep them"

    admin = client_as(ops_app, people.admin)
    assert admin.post(f"/admin/classes/{people.classroom_a}/erase",
                      data=form(confirm_name=people.classroom_a_name)).status_code == 303
    assert database_mentions(ops_sessions, [newcomer]) == []
    assert disk_mentions(data_dir, [newcomer]) == []


# --- the command line ------------------------------------------------------------------------------------------


def test_yuejuan_delete_asks_then_erases(
    make_people: PeopleFactory, pg_url: str, pg_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    people = make_people(pg_sessions, tmp_path)
    jia = people.person("甲")
    env = {"YUEJUAN_DATABASE_URL": pg_url, "YUEJUAN_DATA_DIR": str(tmp_path)}
    runner = CliRunner()
    declined = runner.invoke(main, ["delete", "student", str(jia.id)], input="n\n", env=env)
    assert declined.exit_code != 0 and rows(pg_sessions, Student, Student.id == jia.id)
    done = runner.invoke(main, ["delete", "student", str(jia.id), "--yes"], env=env)
    assert done.exit_code == 0, done.output
    assert database_mentions(pg_sessions, [jia.name]) == [] and disk_mentions(tmp_path, [jia.name]) == []
    assert _erase_audit(pg_sessions, "student", jia.id).actor == "cli"
    school = runner.invoke(main, ["delete", "school", str(people.school), "--yes"], env=env)
    assert school.exit_code == 0, school.output
    assert rows(pg_sessions, School, School.id == people.school) == []
    missing = runner.invoke(main, ["delete", "class", str(people.classroom_a), "--yes"], env=env)
    assert missing.exit_code == 1 and "没有编号" in missing.output
