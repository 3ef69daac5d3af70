"""From uploaded files to Essay rows: run the ingest parser, then write a confirmed preview all or nothing."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from services.web.actor import Actor
from services.web.ingest import EssayPreview, RosterEntry, UploadLimits, UploadRejected
from services.web.ingest.names import display_filename
from services.web.ingest.sandbox import parse_bounded
from services.web.upload_store import StoredPreview
from shared.models import Assignment, Essay, EssayStatus, Student
from shared.settings import Settings

logger = logging.getLogger(__name__)

ACCEPTED_TYPES = (".xlsx", ".csv", ".docx", ".txt", ".zip")
UNCOMPRESSED_FACTOR = 10


class ImportRefused(Exception):
    """The confirmed preview cannot be written; nothing was written. ``message`` is shown to the teacher."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def upload_limits(settings: Settings) -> UploadLimits:
    max_bytes = settings.max_upload_mb * 1024 * 1024
    return UploadLimits(
        max_bytes=max_bytes, max_files=settings.max_upload_files,
        max_uncompressed_bytes=max_bytes * UNCOMPRESSED_FACTOR, max_essay_chars=settings.max_essay_chars,
        parse_memory_mb=settings.parse_memory_mb, parse_cpu_seconds=settings.parse_seconds,
        parse_wall_seconds=2 * settings.parse_seconds,
    )


def parse_uploaded_files(
    files: Sequence[tuple[str, bytes]], roster: Sequence[RosterEntry], limits: UploadLimits,
    existing: Collection[int] = (),
) -> EssayPreview:
    """The preview of an upload, parsed in a separate process under the memory and time limits (``sandbox``).

    ``missing`` lists the roster's students with no essay at all: neither in this upload nor among ``existing``
    (the student ids that already have an essay in the assignment)."""
    files = [(name, data) for name, data in files if name]
    if not files:
        raise UploadRejected("请选择要上传的文件。")
    upload_name = display_filename(files[0][0]) if len(files) == 1 else "所选文件"
    preview = parse_bounded(
        "services.web.ingest.essays:parse_essay_files", (files, list(roster), limits), limits, upload_name=upload_name
    )
    preview.missing = [entry for entry in preview.missing if entry.student_id not in existing]
    return preview


def existing_essays(session: Session, assignment_id: int) -> dict[int, int]:
    """student_id → essay_id of the essays this assignment already has."""
    rows = session.execute(select(Essay.student_id, Essay.id).where(Essay.assignment_id == assignment_id)).all()
    return {row.student_id: row.id for row in rows}


def write_essays(
    session: Session, actor: Actor, assignment: Assignment, stored: StoredPreview, *, replace: bool
) -> list[int]:
    """Add one queued essay per preview item in the caller's transaction; ImportRefused before any write."""
    if not stored.ok:
        raise ImportRefused("预览中还有需要处理的问题，未导入任何作文。请修改文件后重新上传。")
    # Confirms of one assignment take turns (PostgreSQL), so the clash check below sees the other's essays.
    session.execute(select(Assignment.id).where(Assignment.id == assignment.id).with_for_update())
    roster = set(session.scalars(select(Student.id).where(Student.classroom_id == assignment.classroom_id)))
    student_ids = [item.student_id for item in stored.items]
    if any(student_id is None or student_id not in roster for student_id in student_ids):
        raise ImportRefused("名单已变化：有作文对应的学生已不在本班名单中。请重新上传。")
    if len(set(student_ids)) != len(student_ids):
        raise ImportRefused("同一名学生对应了多篇作文，未导入任何作文。")
    existing = existing_essays(session, assignment.id)
    clashes = [item.student_name for item in stored.items if item.student_id in existing]
    if clashes and not replace:
        raise ImportRefused(
            f"以下学生在本次作业中已有作文：{'、'.join(clashes)}。未导入任何作文；"
            "如需用新文件替换原作文，请勾选“替换已有作文”后再确认。"
        )
    for item in stored.items:
        if item.student_id in existing:
            old = session.get(Essay, existing[item.student_id])
            if old is not None:
                actor.record(session, "essay.replace", object_type="essay", object_id=old.id,
                             assignment_id=assignment.id, student_id=item.student_id)
                session.delete(old)
    session.flush()  # the replaced rows must be gone before their (assignment, student) pairs are reused
    # A Core executemany, then the new ids by (assignment, student), which is unique: a class's essays are
    # long texts, and a multi-row INSERT ... RETURNING of them costs more to build than to run.
    essays = Essay.__table__
    session.execute(
        insert(essays),
        [
            {
                "assignment_id": assignment.id, "student_id": item.student_id, "source_filename": item.source[:255],
                "title": (item.title or None) and item.title[:200], "text": item.text,
                "char_count": item.char_count, "status": EssayStatus.queued, "flags": [],
            }
            for item in stored.items
        ],
    )
    new_ids = {
        row.student_id: row.id
        for row in session.execute(
            select(essays.c.student_id, essays.c.id).where(
                essays.c.assignment_id == assignment.id, essays.c.student_id.in_(student_ids)
            )
        )
    }
    actor.record(session, "upload.confirm", object_type="assignment", object_id=assignment.id,
                 essays=len(student_ids), replaced=len(clashes), files=len(stored.filenames))
    return [new_ids[student_id] for student_id in student_ids]
