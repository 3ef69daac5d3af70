"""Erasing a student, a class or a school end to end: rows, audit row, report files, upload previews, rubrics.

Shared by the admin pages and ``yuejuan delete``. The database work commits first (all or nothing);
files are removed after the commit, so a failed transaction never leaves rows pointing at missing files.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from sqlalchemy.orm import Session, sessionmaker

from services.web.actor import Actor
from services.web.rubric_store import school_rubric_dir
from services.web.upload_store import discard_previews_about
from shared.erasure import (
    Erased,
    erase_classroom,
    erase_school,
    erase_student,
    flush_deleted_pages,
    remove_stored_files,
)
from shared.models import transaction

logger = logging.getLogger(__name__)

Target = Literal["student", "classroom", "school"]
ERASE_ACTION = "privacy.erase"
ERASERS: dict[Target, Callable[[Session, int], Erased | None]] = {
    "student": erase_student,
    "classroom": erase_classroom,
    "school": erase_school,
}


def erase(
    sessions: sessionmaker[Session], data_dir: Path, target: Target, object_id: int, actor: Actor
) -> Erased | None:
    """Erase one object and everything about it; None if it does not exist. Raises ``ErasureRefused``."""
    with transaction(sessions) as session:
        erased = ERASERS[target](session, object_id)
        if erased is None:
            return None
        actor.record(session, ERASE_ACTION, object_type=target, object_id=object_id, **erased.audit_details())
    flush_deleted_pages(sessions)
    erased.counts["report_files"] = remove_stored_files(erased.files, data_dir)
    erased.counts["upload_previews"] = discard_previews_about(
        data_dir, assignment_ids=erased.assignment_ids, student_ids=erased.student_ids
    )
    if target == "school":
        rubrics = school_rubric_dir(data_dir, object_id)
        if rubrics.is_dir():
            shutil.rmtree(rubrics)
    logger.info("%s erased %s %s: %s", actor.name, target, object_id, dict(erased.counts))
    return erased
