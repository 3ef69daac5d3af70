"""A school full of personal data for the privacy tests, and a scan of every table and file for what should be gone.

Every name and text carries the test's tag, so a scan of the whole database (shared with other tests on
PostgreSQL) finds exactly this test's leftovers. A bystander school must survive every erasure untouched.
"""

from __future__ import annotations

import json
import uuid
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
    Classroom,
    Deduction,
    ErrorAnnotation,
    Essay,
    EssayStatus,
    Grade,
    GradeSource,
    JobStatus,
    ReportJob,
    Role,
    School,
    Student,
    TrainingPlan,
    User,
    transaction,
)
from shared.storage import school_rubric_dir


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


def _grade(essay_id: int, text: str, name: str, version: int, source: GradeSource) -> Grade:
    start = text.index("梦想")
    grade = Grade(
        essay_id=essay_id, version=version, rubric_id="gaokao-national", rubric_version="2024.1", prompt_version="v1",
        dimension_scores={"content": 14, "expression": 13, "development": 9},
        bands={"content": "二等", "expression": "二等", "development": "三等"},
        evidence={"content": [text[:12]]}, raw_total=36, total=36 + version, caps=[],
        comment=f"{name}同学的文章立意明确。", source=source, model_name="tiny", latency_ms=1200,
        prompt_tokens=900, generated_tokens=300, reason=f"复核{name}" if source == GradeSource.teacher else None,
    )
    grade.errors = [ErrorAnnotation(type="用词不当", start_offset=start, end_offset=start + 2, original="梦想",
                                    suggestion="理想", explanation=f"{name}此处用词可再斟酌", origin="model")]
    grade.deductions = [Deduction(rule="length", points=-2, detail=f"{name}字数不足")]
    return grade


def _report(session: Session, data_dir: Path, name: str, text: str, **columns: Any) -> tuple[int, Path]:
    path = data_dir / "reports" / f"{name}.xlsx"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    job = ReportJob(status=JobStatus.done, file_path=str(path), **columns)
    session.add(job)
    session.flush()
    return job.id, path


def build_people(sessions: sessionmaker[Session], data_dir: Path, *, created_at: datetime | None = None) -> People:
    """Two classes (甲 and 乙 in A, 丙 in B) of one school, and a bystander school with 丁."""
    tag = uuid.uuid4().hex[:8]
    with transaction(sessions) as session:
        school, bystander = School(name=f"隐私测试中学-{tag}"), School(name=f"旁观中学-{tag}")
        session.add_all([school, bystander])
        session.flush()
        admin = User(username=f"adm-{tag}", display_name=f"教务-{tag}", role=Role.school_admin, school_id=school.id,
                     password_hash="x")
        teacher = User(username=f"tch-{tag}", display_name=f"班主任-{tag}", role=Role.teacher, school_id=school.id,
                       password_hash="x")
        other = User(username=f"by-{tag}", display_name=f"旁观老师-{tag}", role=Role.teacher,
                     school_id=bystander.id, password_hash="x")
        session.add_all([admin, teacher, other])
        session.flush()
        rooms = {
            "A": Classroom(school_id=school.id, teacher_id=teacher.id, name=f"高三隐私A班-{tag}"),
            "B": Classroom(school_id=school.id, teacher_id=teacher.id, name=f"高三隐私B班-{tag}"),
            "X": Classroom(school_id=bystander.id, teacher_id=other.id, name=f"旁观班-{tag}"),
        }
        session.add_all(rooms.values())
        session.flush()
        assignments = {
            key: Assignment(classroom_id=room.id, title=f"期中作文-{key}", prompt_text="以“梦想”为题。",
                            rubric_id="gaokao-national", rubric_version="2024.1", created_by=room.teacher_id)
            for key, room in rooms.items()
        }
        session.add_all(assignments.values())
        session.flush()
        people = People(
            tag=tag, data_dir=data_dir, school=school.id, school_name=school.name, bystander_school=bystander.id,
            admin=admin.id, teacher=teacher.id, classroom_a=rooms["A"].id, classroom_b=rooms["B"].id,
            classroom_a_name=rooms["A"].name, bystander_classroom=rooms["X"].id,
            assignment_a=assignments["A"].id, assignment_b=assignments["B"].id,
        )
        for key, room_key in (("甲", "A"), ("乙", "A"), ("丙", "B"), ("丁", "X")):
            name = f"{key}{tag}"
            student = Student(classroom_id=rooms[room_key].id, name=name, student_number=f"{tag}{key}")
            session.add(student)
            session.flush()
            text = _essay_text(name, tag)
            essay = Essay(assignment_id=assignments[room_key].id, student_id=student.id, text=text,
                          char_count=len(text), title="我的梦想", status=EssayStatus.graded,
                          source_filename=f"{name}.docx", failure_reason=None, flags=[])
            session.add(essay)
            session.flush()
            session.add_all([_grade(essay.id, text, name, 1, GradeSource.model),
                             _grade(essay.id, text, name, 2, GradeSource.teacher)])
            session.add(TrainingPlan(student_id=student.id, essay_ids=[essay.id], focus_areas=["用词"],
                                     narrative=f"{name}需要加强用词训练。", model_name="tiny"))
            audit.record(session, "student.add", actor=f"tch-{tag}", object_type="classroom",
                         object_id=rooms[room_key].id, student_id=student.id)
            audit.record(session, "essay.view", actor=f"tch-{tag}", object_type="essay", object_id=essay.id)
            people.students[key] = Person(student.id, name, rooms[room_key].id, essay.id, text)
        for key in ("A", "B", "X"):
            names = "、".join(p.name for p in people.students.values() if p.classroom == rooms[key].id)
            job_id, path = _report(session, data_dir, f"class-{key}-{tag}", f"班级成绩 {names}", kind="class_workbook",
                                   school_id=rooms[key].school_id, classroom_id=rooms[key].id,
                                   assignment_id=assignments[key].id)
            people.report_files[job_id] = path
        _, people.school_report_file = _report(session, data_dir, f"school-{tag}", "全校汇总",
                                               kind="school_workbook", school_id=school.id)
        _, people.bystander_report_file = _report(session, data_dir, f"school-by-{tag}", "旁观学校汇总",
                                                  kind="school_workbook", school_id=bystander.id)
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


def disk_mentions(data_dir: Path, needles: list[str]) -> list[str]:
    """Every file under ``data_dir`` whose content contains one of ``needles``."""
    found = []
    for path in data_dir.rglob("*"):
        if path.is_file():
            text = path.read_bytes().decode("utf-8", errors="replace")
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
