"""双评 in the web: which essays need a second (blind) reading, writing a second reading, 三评/终评 by a teacher
with the right, the rubric's final score, the queues and counts, and who may arbitrate.

Every reading is a teacher grade version (``Grade.reading``); the essay's case (``DoubleMarkCase``, one per essay)
holds the totals so far and is created by the second reading, so two teachers submitting the same second read at
once write one reading and get one conflict. Arbitration is a compare-and-set on the case's reading count.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.web.access import classroom_scope
from services.web.actor import Actor
from services.web.review import ReviewError, override_grade
from shared.double_marking import latest_model_grades, needs_second_read
from shared.models import (
    Assignment,
    CaseStatus,
    ClassRole,
    Classroom,
    ClassroomRole,
    DoubleMarkCase,
    DoubleMarkingMode,
    Essay,
    EssayStatus,
    Grade,
    GradeSource,
    Role,
    User,
)
from shared.models.base import utcnow
from shared.prompts.rubric import FinalScore, Rubric, final_score

logger = logging.getLogger(__name__)

MODE_NAMES = {
    DoubleMarkingMode.off: "不双评",
    DoubleMarkingMode.sample: "随机抽取一定比例",
    DoubleMarkingMode.all: "全部双评",
    DoubleMarkingMode.low_confidence: "仅低置信度或有标记的作文",
}
READING_NAMES = {"second": "二评", "third": "三评", "arbitration": "终评", "final": "最终分"}
RULE_NAMES = {"mean": "两评平均", "mean_of_closest_two": "三评与较近一评平均", "third_stands": "以三评为准",
              "arbitration": "以终评为准"}
NEEDS_NAMES = {"third_reading": "三评", "arbitration": "终评"}


class ReadingConflict(ValueError):
    """The reading cannot be taken now (already read, already settled, read by this teacher before): HTTP 409."""


class NoArbitrationRight(PermissionError):
    """The user may see the essay but has no right to arbitrate in its class: HTTP 403."""


# --- settings ---------------------------------------------------------------------------------------------------


def parse_mode(raw_mode: object, raw_share: object) -> tuple[DoubleMarkingMode, int]:
    """A mode and a share (percent, 1..100, only for ``sample``) from a form or JSON; ReviewError names the problem."""
    try:
        mode = DoubleMarkingMode(str(raw_mode or "off"))
    except ValueError:
        choices = "、".join(m.value for m in DoubleMarkingMode)
        choices = "、".join(m.value for m in DoubleMarkingMode)
        raise ReviewError(f"双评方式 {raw_mode!r} 无效；可选：{choices}。") from None
    if mode != DoubleMarkingMode.sample:
        return mode, 0
    share: int | None = None
    if isinstance(raw_share, int) and not isinstance(raw_share, bool):
        share = raw_share
    elif isinstance(raw_share, str) and raw_share.strip().isdigit():
        share = int(raw_share.strip())
    if share is None or not 1 <= share <= 100:
        raise ReviewError("随机抽取比例必须是 1 到 100 之间的整数（百分比）。")
    return mode, share


def set_mode(session: Session, actor: Actor, assignment: Assignment, mode: DoubleMarkingMode, share: int) -> None:
    assignment.double_marking, assignment.double_marking_share = mode.value, share
    actor.record(session, "double_marking.mode", object_type="assignment", object_id=assignment.id, mode=mode.value,
                 share=share)


# --- who reads --------------------------------------------------------------------------------------------------


def model_grade(session: Session, essay_id: int) -> Grade | None:
    """The model's latest reading of an essay (the first reading of 双评)."""
    return session.scalar(select(Grade).where(Grade.essay_id == essay_id, Grade.source == GradeSource.model)
                          .order_by(Grade.version.desc()).limit(1))


def readers(session: Session, essay_id: int) -> set[int]:
    """Teachers who have already read this essay with scores (an override or a 双评 reading)."""
    return {uid for uid in session.scalars(
        select(Grade.created_by).where(Grade.essay_id == essay_id, Grade.source == GradeSource.teacher,
                                       Grade.created_by.is_not(None))
    ) if uid is not None}


def may_arbitrate(session: Session, user: User, classroom: Classroom) -> bool:
    """三评/终评: the class's 备课组长, the school's admin, or a sysadmin."""
    if user.role == Role.sysadmin or (user.role == Role.school_admin and user.school_id == classroom.school_id):
        return True
    return session.scalar(select(ClassroomRole.id).where(
        ClassroomRole.classroom_id == classroom.id, ClassroomRole.user_id == user.id,
        ClassroomRole.role == ClassRole.lead)) is not None


def lead_classroom_ids(session: Session, user: User) -> list[int]:
    return list(session.scalars(select(ClassroomRole.classroom_id).where(
        ClassroomRole.user_id == user.id, ClassroomRole.role == ClassRole.lead)))


# --- readings ---------------------------------------------------------------------------------------------------


def _settle(session: Session, actor: Actor, essay: Essay, rubric: Rubric, case: DoubleMarkCase, outcome: FinalScore,
            last: Grade) -> Grade | None:
    """Record the rule's outcome on the case; a decided score becomes the essay's final grade version."""
    if outcome.score is None:
        case.status, case.needs = CaseStatus.awaiting_arbitration, outcome.needs
        return None
    case.status, case.needs, case.final_total, case.final_rule = CaseStatus.settled, None, outcome.score, outcome.rule
    totals = "、".join(str(t) for t in case.totals)
    return override_grade(
        session, actor, essay, rubric, scores=last.dimension_scores, comment=None,
        reason=f"双评最终分：{RULE_NAMES.get(str(outcome.rule), str(outcome.rule))}（各评总分 {totals}）",
        reading="final", total=outcome.score, action="double_marking.final",
    )


@dataclass
class ReadingResult:
    reading: Grade
    case: DoubleMarkCase
    final: Grade | None
    model_total: int
    totals: list[int] = field(default_factory=list)


def second_read(session: Session, actor: Actor, user: User, essay: Essay, rubric: Rubric,
                scores: Mapping[str, int], comment: str | None = None) -> ReadingResult:
    """The blind second reading. Raises ReadingConflict when the essay has no model reading yet, already has a
    second reading, or this teacher has read it before; IntegrityError (from flush) when another teacher's second
    reading of the same essay won the race."""
    first = model_grade(session, essay.id)
    if first is None or essay.status != EssayStatus.graded:
        raise ReadingConflict("这篇作文还没有模型评分（一评），暂时不能二评。")
    if session.scalar(select(DoubleMarkCase.id).where(DoubleMarkCase.essay_id == essay.id)) is not None:
        raise ReadingConflict("这篇作文已有二评，不能重复二评。")
    if user.id in readers(session, essay.id):
        raise ReadingConflict("您已评过这篇作文（改过分），二评须由另一位教师盲评。")
    reading = override_grade(session, actor, essay, rubric, scores=scores, comment=comment, reason="二评（盲评）",
                             reading="second", action="double_marking.second_read")
    totals = [first.total, reading.total]
    case = DoubleMarkCase(essay_id=essay.id, assignment_id=essay.assignment_id, status=CaseStatus.settled,
                          readings=2, totals=totals, updated_at=utcnow())
    session.add(case)
    session.flush()  # the unique essay_id: a second reader racing this one fails here, before anything is final
    final = _settle(session, actor, essay, rubric, case, final_score(totals, rubric), reading)
    session.flush()
    return ReadingResult(reading, case, final, first.total, totals)


def arbitrate(session: Session, actor: Actor, user: User, case: DoubleMarkCase, rubric: Rubric,
              scores: Mapping[str, int], comment: str | None = None) -> ReadingResult:
    """三评 or 终评, as the rubric's rule asks. Raises NoArbitrationRight, or ReadingConflict when the case is
    settled, this user has read the essay already, or another arbiter's reading got there first."""
    essay = session.get(Essay, case.essay_id)
    assert essay is not None
    if not may_arbitrate(session, user, essay.assignment.classroom):
        raise NoArbitrationRight("只有本班的备课组长或学校管理员可以三评/终评。")
    if case.status != CaseStatus.awaiting_arbitration:
        raise ReadingConflict("这篇作文的双评已经有最终分，无需再评。")
    if user.id in readers(session, essay.id):
        raise ReadingConflict("您已评过这篇作文；三评/终评须由另一位教师完成。")
    seen = case.readings
    claimed = session.execute(
        update(DoubleMarkCase)
        .where(DoubleMarkCase.id == case.id, DoubleMarkCase.status == CaseStatus.awaiting_arbitration,
               DoubleMarkCase.readings == seen)
        .values(readings=seen + 1, updated_at=utcnow())
    ).rowcount
    if claimed != 1:
        raise ReadingConflict("另一位评阅人刚刚提交了这篇作文的三评/终评，请刷新后查看。")
    session.refresh(case)
    kind = "third" if case.needs == "third_reading" else "arbitration"
    reading = override_grade(session, actor, essay, rubric, scores=scores, comment=comment,
                             reason=f"{READING_NAMES[kind]}（仲裁）", reading=kind,
                             action=f"double_marking.{kind}")
    totals = [*case.totals, reading.total]
    case.totals = totals
    final = _settle(session, actor, essay, rubric, case, final_score(totals, rubric), reading)
    session.flush()
    return ReadingResult(reading, case, final, int(totals[0]), totals)


# --- queues -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueItem:
    essay_id: int
    assignment_id: int
    assignment_title: str
    classroom_name: str
    student_name: str
    needs: str | None = None
    totals: tuple[int, ...] = ()


@dataclass(frozen=True)
class Counts:
    selected: int = 0
    awaiting_second: int = 0
    awaiting_arbitration: int = 0
    settled: int = 0


def _second_read_candidates(session: Session, assignment: Assignment) -> list[Essay]:
    """Essays the mode selects that have no second reading yet."""
    if assignment.double_marking == DoubleMarkingMode.off:
        return []
    essays = list(session.scalars(select(Essay).where(Essay.assignment_id == assignment.id,
                                                      Essay.status == EssayStatus.graded).order_by(Essay.id)))
    opened = set(session.scalars(select(DoubleMarkCase.essay_id).where(DoubleMarkCase.assignment_id == assignment.id)))
    grades = latest_model_grades(session, [e.id for e in essays])
    return [e for e in essays if e.id not in opened and needs_second_read(assignment, e, grades.get(e.id))]


def blind_essay_ids(session: Session, user: User, assignment: Assignment) -> set[int]:
    """Essays of the assignment whose model scores ``user`` may not see yet: selected for a second reading that
    nobody has given, and not read by ``user`` (an override counts) — 双评 is blind until the second reading."""
    candidates = [essay.id for essay in _second_read_candidates(session, assignment)]
    if not candidates:
        return set()
    read = set(session.scalars(select(Grade.essay_id).where(  # one query, not one per essay
        Grade.essay_id.in_(candidates), Grade.source == GradeSource.teacher, Grade.created_by == user.id)))
    return set(candidates) - read


def counts(session: Session, assignment: Assignment) -> Counts:
    cases = list(session.scalars(select(DoubleMarkCase).where(DoubleMarkCase.assignment_id == assignment.id)))
    waiting = len(_second_read_candidates(session, assignment))
    arbitration = sum(1 for c in cases if c.status == CaseStatus.awaiting_arbitration)
    return Counts(selected=waiting + len(cases), awaiting_second=waiting, awaiting_arbitration=arbitration,
                  settled=len(cases) - arbitration)


def _item(essay: Essay, case: DoubleMarkCase | None = None) -> QueueItem:
    return QueueItem(essay.id, essay.assignment_id, essay.assignment.title, essay.assignment.classroom.name,
                     essay.student.name, case.needs if case else None, tuple(case.totals) if case else ())


def my_second_reads(session: Session, user: User) -> list[QueueItem]:
    """Essays awaiting a second reading in the classes the user may see, that the user has not read yet."""
    assignments = session.scalars(
        select(Assignment).join(Classroom, Assignment.classroom_id == Classroom.id)
        .where(classroom_scope(user), Assignment.double_marking != DoubleMarkingMode.off).order_by(Assignment.id)
    )
    items = []
    for assignment in assignments:
        for essay in _second_read_candidates(session, assignment):
            if user.id not in readers(session, essay.id):
                items.append(_item(essay))
    return items


def my_arbitrations(session: Session, user: User) -> list[QueueItem]:
    """Cases awaiting 三评/终评 in the classes where the user may arbitrate, that the user has not read."""
    query = (select(DoubleMarkCase).join(Assignment, DoubleMarkCase.assignment_id == Assignment.id)
             .join(Classroom, Assignment.classroom_id == Classroom.id)
             .where(DoubleMarkCase.status == CaseStatus.awaiting_arbitration).order_by(DoubleMarkCase.id))
    if user.role == Role.school_admin:
        query = query.where(Classroom.school_id == user.school_id)
    elif user.role != Role.sysadmin:
        query = query.where(Classroom.id.in_(lead_classroom_ids(session, user) or [-1]))
    items = []
    for case in session.scalars(query):
        if user.id not in readers(session, case.essay_id):
            essay = session.get(Essay, case.essay_id)
            assert essay is not None
            items.append(_item(essay, case))
    return items


def case_for(session: Session, essay_id: int) -> DoubleMarkCase | None:
    return session.scalar(select(DoubleMarkCase).where(DoubleMarkCase.essay_id == essay_id))


def readings_of(session: Session, essay_id: int) -> list[Grade]:
    """The essay's 双评 readings in order: the model's first reading, then the teachers' (final included)."""
    grades = list(session.scalars(select(Grade).where(Grade.essay_id == essay_id).order_by(Grade.version)))
    case_versions = [g for g in grades if g.reading is not None]
    if not case_versions:
        return []
    second = case_versions[0].version
    first = [g for g in grades if g.source == GradeSource.model and g.version < second][-1:]
    return first + case_versions
