"""Feedback sheets to hand back: one student's sheet (.docx or PDF) from the essay page, and a class's sheets as
one PDF (a page per student) or a zip of .docx from the assignment page.

They are built on request from the newest grade (an override shows at once; a class of 50 takes seconds), by
``shared.feedback``; each download is audited as a report download of kind ``feedback``.
"""

from __future__ import annotations

import io
import logging
from typing import Any

from flask import Blueprint, abort, send_file

from services.web.access import get_assignment_or_404, get_essay_or_404
from services.web.context import db
from services.web.guards import actor, login_required, user
from shared.feedback.docx_sheet import file_name, render_docx, render_docx_zip
from shared.feedback.pdf_sheet import render_pdf
from shared.feedback.sheet import FeedbackSheet, assignment_essays, load_sheets

logger = logging.getLogger(__name__)

bp = Blueprint("feedback", __name__)

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
NOTHING_GRADED = "还没有已评分的作文，暂时无法生成反馈单。"


def _send(data: bytes, name: str, mimetype: str) -> Any:
    return send_file(io.BytesIO(data), as_attachment=True, download_name=name, mimetype=mimetype)


def _audit(object_type: str, object_id: int, fmt: str, sheets: list[FeedbackSheet]) -> None:
    actor().record(db(), "report.download", object_type=object_type, object_id=object_id, kind="feedback",
                   format=fmt, students=len(sheets))
    db().commit()


@bp.get("/essays/<int:essay_id>/feedback.<any(pdf, docx):fmt>")
@login_required
def essay_sheet(essay_id: int, fmt: str) -> Any:
    session = db()
    essay = get_essay_or_404(session, user(), essay_id)
    sheets = load_sheets(session, [essay])
    if not sheets:
        abort(404, description="这篇作文还没有评分，暂时无法生成反馈单。")
    _audit("essay", essay.id, fmt, sheets)
    if fmt == "pdf":
        return _send(render_pdf(sheets), file_name(sheets[0], "-反馈单.pdf"), PDF)
    return _send(render_docx(sheets), file_name(sheets[0], "-反馈单.docx"), DOCX)


@bp.get("/assignments/<int:assignment_id>/feedback.pdf")
@login_required
def class_pdf(assignment_id: int) -> Any:
    session = db()
    assignment = get_assignment_or_404(session, user(), assignment_id)
    sheets = load_sheets(session, assignment_essays(session, assignment.id))
    if not sheets:
        abort(404, description=NOTHING_GRADED)
    _audit("assignment", assignment.id, "pdf", sheets)
    name = f"{assignment.classroom.name}-{assignment.title}-反馈单.pdf"
    return _send(render_pdf(sheets), name, PDF)


@bp.get("/assignments/<int:assignment_id>/feedback-docx.zip")
@login_required
def class_docx_zip(assignment_id: int) -> Any:
    session = db()
    assignment = get_assignment_or_404(session, user(), assignment_id)
    sheets = load_sheets(session, assignment_essays(session, assignment.id))
    if not sheets:
        abort(404, description=NOTHING_GRADED)
    _audit("assignment", assignment.id, "docx_zip", sheets)
    name = f"{assignment.classroom.name}-{assignment.title}-反馈单.zip"
    return _send(render_docx_zip(sheets), name, "application/zip")
