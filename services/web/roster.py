"""Adding a parsed roster file's students to a class: new students are added, known ones are skipped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.web.actor import Actor
from services.web.ingest import RosterEntry, RosterRow, UploadLimits
from services.web.ingest.names import display_filename
from services.web.ingest.sandbox import parse_bounded
from shared.audit import file_types
from shared.models import Classroom, Student


@dataclass
class RosterImport:
    added: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def read_roster_file(filename: str, data: bytes, limits: UploadLimits) -> list[RosterRow]:
    """``parse_roster`` in a separate process under the upload memory and time limits (``ingest.sandbox``)."""
    return parse_bounded(
        "services.web.ingest.roster:parse_roster", (filename, data, limits), limits,
        upload_name=display_filename(filename),
    )


def roster_entries(session: Session, classroom: Classroom) -> list[RosterEntry]:
    """The class roster in the form the upload parser matches names and numbers against."""
    students = session.scalars(
        select(Student).where(Student.classroom_id == classroom.id).order_by(Student.student_number, Student.name)
    )
    return [RosterEntry(student_id=s.id, name=s.name, student_number=s.student_number) for s in students]


def import_roster(
    session: Session, actor: Actor, classroom: Classroom, rows: Sequence[RosterRow], *, filename: str
) -> RosterImport:
    """Add every row not already on the roster (same student number, or same name when the row has none)."""
    existing = session.scalars(select(Student).where(Student.classroom_id == classroom.id)).all()
    numbers = {s.student_number for s in existing if s.student_number}
    names = {s.name for s in existing}
    result = RosterImport()
    for row in rows:
        label = f"{row.name}（{row.student_number}）" if row.student_number else row.name
        if (row.student_number and row.student_number in numbers) or (not row.student_number and row.name in names):
            result.skipped.append(label)
            continue
        session.add(Student(classroom_id=classroom.id, name=row.name, student_number=row.student_number))
        if row.student_number:
            numbers.add(row.student_number)
        names.add(row.name)
        result.added.append(label)
    session.flush()
    actor.record(session, "roster.import", object_type="classroom", object_id=classroom.id,
                 file_types=file_types([filename]), added=len(result.added), skipped=len(result.skipped))
    return result
