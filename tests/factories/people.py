"""A school full of personal data for the privacy tests, and a scan of every table and file for what should be gone.

Every name and text carries the test's tag, so a scan of the whole database (shared with other tests on
PostgreSQL) finds exactly this test's leftovers. A bystander school must survive every erasure untouched.
"""

from __future__ import annotations

import html
import json
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from services.web.ingest import EssayPreview, PreviewItem, RosterEntry
from services.web.upload_store import save_preview
from shared import audit
from shared.models import (
    Assignment,
    Base,
    Essay,
    EssayStatus,
    Grade,
    GradeSource,
    JobStatus,
    ReportJob,
    Role,
    TrainingPlan,
    transaction,
)
from shared.storage import school_rubric_dir
from tests.factories.builders import (
    add_assignment,
    add_classroom,
    add_essay,
    add_grade,
    add_report_job,
    add_school,
    add_student,
    add_training_plan,
    add_user,
    write_report_file,
)


@dataclass
class Person:
    id: int
    name: str
    classroom: int
    essay: int
    text: str


@dataclass
class People:
    tag: str
    data_dir: Path
    school: int
    school_name: str
    bystander_school: int
    admin: int
    teacher: int
    classroom_a: int
    classroom_b: int
    classroom_a_name: str
    bystander_classroom: int
    assignment_a: int
    assignment_b: int
    students: dict[str, Person] = field(default_factory=dict)
    report_files: dict[int, Path] = field(default_factory=dict)
    school_report_file: Path | None = None
    bystander_report_file: Path | None = None
    previews: dict[str, Path] = field(default_factory=dict)
    rubric_dir: Path | None = None

    def person(self, key: str) -> Person:
        return self.students[key]


def _essay_text(name: str, tag: str) -> str:
    return (f"我的梦想\n我叫{name}，今年十七岁。我的梦想是成为一名医生，秘密标记{tag}{name}。"
            "为了这个梦想，我每天认真学习，坚持锻炼身体。")


def _add_grades(session: Session, essay_id: int, text: str, name: str) -> None:
    """The model's reading and a teacher's override, each naming the student in its comment, error and deduction."""
    for version, source in ((1, GradeSource.model), (2, GradeSource.teacher)):
        add_grade(
            session, essay_id, {"content": 14, "expression": 13, "development": 9}, version=version, source=source,
            total=36 + version, comment=f"{name}同学的文章立意明确。", text=text,
            errors=[("用词不当", "梦想", "理想", f"{name}此处用词可再斟酌")],
            deductions=[("length", -2, f"{name}字数不足")], mark_graded=False,
            prompt_version="v1", bands={"content": "二等", "expression": "二等", "development": "三等"},
            evidence={"content": [text[:12]]}, model_name="tiny", latency_ms=1200, prompt_tokens=900,
            generated_tokens=300, reason=f"复核{name}" if source == GradeSource.teacher else None,
        )


def build_people(sessions: sessionmaker[Session], data_dir: Path, *, created_at: datetime | None = None) -> People:
    """Two classes (甲 and 乙 in A, 丙 in B) of one school, and a bystander school with 丁."""
    tag = uuid.uuid4().hex[:8]
    with transaction(sessions) as session:
        school, bystander = add_school(session, f"隐私测试中学-{tag}"), add_school(session, f"旁观中学-{tag}")
        admin = add_user(session, f"adm-{tag}", f"教务-{tag}", role=Role.school_admin, school_id=school.id)
        teacher = add_user(session, f"tch-{tag}", f"班主任-{tag}", school_id=school.id)
        other = add_user(session, f"by-{tag}", f"旁观老师-{tag}", school_id=bystander.id)
        rooms = {
            "A": add_classroom(session, school.id, teacher.id, f"高三隐私A班-{tag}"),
            "B": add_classroom(session, school.id, teacher.id, f"高三隐私B班-{tag}"),
            "X": add_classroom(session, bystander.id, other.id, f"旁观班-{tag}"),
        }
        assignments = {
            key: add_assignment(session, room.id, title=f"期中作文-{key}", prompt_text="以“梦想”为题。",
                                created_by=room.teacher_id)
            for key, room in rooms.items()
        }
        people = People(
            tag=tag, data_dir=data_dir, school=school.id, school_name=school.name, bystander_school=bystander.id,
            admin=admin.id, teacher=teacher.id, classroom_a=rooms["A"].id, classroom_b=rooms["B"].id,
            classroom_a_name=rooms["A"].name, bystander_classroom=rooms["X"].id,
            assignment_a=assignments["A"].id, assignment_b=assignments["B"].id,
        )
        for key, room_key in (("甲", "A"), ("乙", "A"), ("丙", "B"), ("丁", "X")):
            name = f"{key}{tag}"
            student = add_student(session, rooms[room_key].id, name, f"{tag}{key}")
            text = _essay_text(name, tag)
            essay = add_essay(session, assignments[room_key].id, student.id, text, status=EssayStatus.graded,
                              title="我的梦想", source_filename=f"{name}.docx")
            _add_grades(session, essay.id, text, name)
            add_training_plan(session, student.id, essay_ids=[essay.id], focus_areas=["用词"],
                              narrative=f"{name}需要加强用词训练。", model_name="tiny")
            audit.record(session, "student.add", actor=f"tch-{tag}", object_type="classroom",
                         object_id=rooms[room_key].id, student_id=student.id)
            audit.record(session, "essay.view", actor=f"tch-{tag}", object_type="essay", object_id=essay.id)
            people.students[key] = Person(student.id, name, rooms[room_key].id, essay.id, text)
        for key in ("A", "B", "X"):
            names = "、".join(p.name for p in people.students.values() if p.classroom == rooms[key].id)
            path = write_report_file(data_dir, f"class-{key}-{tag}", f"班级成绩 {names}")
            job = add_report_job(session, "class_workbook", status=JobStatus.done, file=path,
                                 school_id=rooms[key].school_id, classroom_id=rooms[key].id,
                                 assignment_id=assignments[key].id)
            people.report_files[job.id] = path
        people.school_report_file = write_report_file(data_dir, f"school-{tag}", "全校汇总")
        add_report_job(session, "school_workbook", status=JobStatus.done, file=people.school_report_file,
                       school_id=school.id)
        people.bystander_report_file = write_report_file(data_dir, f"school-by-{tag}", "旁观学校汇总")
        add_report_job(session, "school_workbook", status=JobStatus.done, file=people.bystander_report_file,
                       school_id=bystander.id)
        if created_at is not None:
            _backdate(session, people, {a.id for a in assignments.values()}, created_at)
    jia, yi = people.person("甲"), people.person("乙")
    stored = save_preview(
        data_dir,
        EssayPreview(items=[PreviewItem(source=f"{jia.name}.txt", student_id=jia.id, student_name=jia.name,
                                        title="我的梦想", text=jia.text, char_count=len(jia.text))],
                     missing=[RosterEntry(yi.id, yi.name, None)]),
        user_id=people.teacher, assignment_id=people.assignment_a, filenames=[f"{jia.name}.txt"],
    )
    people.previews["A"] = data_dir / "uploads" / f"{stored.token}.json"
    ding = people.person("丁")
    other = save_preview(
        data_dir,
        EssayPreview(items=[PreviewItem(source="x.txt", student_id=ding.id, student_name=ding.name, title=None,
                                        text=ding.text, char_count=len(ding.text))]),
        user_id=people.teacher, assignment_id=0, filenames=["x.txt"],
    )
    people.previews["X"] = data_dir / "uploads" / f"{other.token}.json"
    people.rubric_dir = school_rubric_dir(data_dir, people.school)
    people.rubric_dir.mkdir(parents=True, exist_ok=True)
    (people.rubric_dir / "own@1.yaml").write_text("id: own\n", encoding="utf-8")
    return people


def _backdate(session: Session, people: People, assignment_ids: set[int], created_at: datetime) -> None:
    """Make everything this test created look ``created_at`` old (for the retention tests)."""
    essays = [p.essay for p in people.students.values()]
    students = [p.id for p in people.students.values()]
    for model, where in (
        (Essay, Essay.id.in_(essays)), (Grade, Grade.essay_id.in_(essays)),
        (TrainingPlan, TrainingPlan.student_id.in_(students)), (Assignment, Assignment.id.in_(assignment_ids)),
        (ReportJob, ReportJob.school_id.in_([people.school, people.bystander_school])),
    ):
        session.execute(update(model).where(where).values(created_at=created_at))


def _text(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


def database_mentions(sessions: sessionmaker[Session], needles: list[str]) -> list[str]:
    """Every row of every table (audit log included) whose values contain one of ``needles``."""
    found = []
    with sessions() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)).mappings():
                text = " ".join(_text(value) for value in row.values())
                hits = [needle for needle in needles if needle in text]
                if hits:
                    found.append(f"{table.name}: {hits} in {dict(row)}")
    return found


def _file_text(path: Path) -> str:
    """A file's bytes as text, and for a zip (a workbook: .xlsx) the text of every member too, since the names in
    a workbook are stored compressed and as XML character references."""
    data = path.read_bytes()
    parts = [data.decode("utf-8", errors="replace")]
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            # openpyxl writes CJK text as XML character references (&#29579;): read them as characters.
            parts += [html.unescape(archive.read(member).decode("utf-8", errors="replace"))
                      for member in archive.namelist()]
    return "\n".join(parts)


def disk_mentions(data_dir: Path, needles: list[str]) -> list[str]:
    """Every file under ``data_dir`` whose content (a zip's members included) contains one of ``needles``."""
    found = []
    for path in data_dir.rglob("*"):
        if path.is_file():
            text = _file_text(path)
            hits = [needle for needle in needles if needle in text or needle in path.name]
            if hits:
                found.append(f"{path}: {hits}")
    return found


def rows(sessions: sessionmaker[Session], model: Any, *where: Any) -> list[Any]:
    with sessions() as session:
        return list(session.scalars(select(model).where(*where)))


def remove_people(sessions: sessionmaker[Session], people: People) -> None:
    """Erase both schools of a test (the bystander first: it may hold a class taught from the other school)."""
    from shared.erasure import erase_school

    with transaction(sessions) as session:
        for school_id in (people.bystander_school, people.school):
            erase_school(session, school_id)
