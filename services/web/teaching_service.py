"""The teaching assistant's requests and edits (issue 20), shared by the pages and the JSON API: 立意 analyses and
素材 picks looked up by cache key before any task is sent, the teacher's edits checked against the same schemas as
the model's answers, and 教案 versions."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jsonschema
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.web.actor import Actor
from shared.clock import as_utc
from shared.models import (
    Assignment,
    AssignmentTopic,
    JobStatus,
    LessonPlan,
    LessonPlanVersion,
    MaterialPick,
    SchoolMaterial,
    TopicAnalysis,
    User,
)
from shared.models.base import utcnow
from shared.prompts.material_library import KINDS, SCHOOL_PREFIX, THEMES, Material, check_duplicates, load_library
from shared.prompts.teaching import ANGLE, LESSON_SCHEMA, MAX_ANGLES, analysis_key, digest
from shared.tasks import LESSON_PLAN_TASK, MATERIAL_PICKS_TASK, TOPIC_ANGLES_TASK
from shared.teaching import candidates_for, find_entries, school_entries
from shared.teaching_facts import class_facts

logger = logging.getLogger(__name__)

BROKER_DOWN = "暂时无法连接任务队列，请稍后重试。"
STATUS_NAMES = {"queued": "排队中", "running": "生成中", "done": "已完成", "failed": "失败"}
GOAL_MAX = 200
# A task unfinished this long after it was sent is gone (past the default task time limit, 1800 s, with margin);
# the pages pass YUEJUAN_TASK_TIME_LIMIT_S plus the same margin (``stale_after``).
STALE_MARGIN_S = 300
STALE_AFTER_S = 1800 + STALE_MARGIN_S


def stale_after(task_time_limit_s: int) -> int:
    return task_time_limit_s + STALE_MARGIN_S


class TeachingError(ValueError):
    """A request or an edit that cannot be accepted; the message says why."""


@dataclass
class Requested:
    row_id: int
    sent: bool  # a task was sent (False: the cached result, or one already on its way)


def _send(sender: Any, task: str, row: TopicAnalysis | MaterialPick | LessonPlan) -> bool:
    try:
        sender.send_task(task, args=[row.id])
    except Exception:
        logger.exception("could not send %s for row %s", task, row.id)
        row.status, row.error = JobStatus.failed, BROKER_DOWN
        return False
    return True


def cached_row(session: Session, model: type[TopicAnalysis] | type[MaterialPick], key: str, make: Any,
            stale_after_s: int) -> tuple[Any, bool]:
    """The row under ``key``, created when missing (a concurrent twin wins the unique key); True when it needs a
    model call: new, failed before, or unfinished ``stale_after_s`` after its task was sent (the task's time limit
    has passed: its worker is gone)."""
    row = session.scalar(select(model).where(model.cache_key == key))
    if row is None:
        try:
            with session.begin_nested():
                row = make()
                row.requested_at = utcnow()
                session.add(row)
        except IntegrityError:
            row = session.scalar(select(model).where(model.cache_key == key))
            return row, False
        return row, True
    stale = (row.status in (JobStatus.queued, JobStatus.running) and row.requested_at is not None
             and as_utc(row.requested_at) < utcnow() - timedelta(seconds=stale_after_s))
    if row.status == JobStatus.failed or stale:
        row.status, row.error, row.requested_at = JobStatus.queued, None, utcnow()
        return row, True
    return row, False


def topic_of(session: Session, assignment: Assignment) -> AssignmentTopic:
    topic = session.get(AssignmentTopic, assignment.id)
    if topic is None:
        topic = AssignmentTopic(assignment_id=assignment.id)
        session.add(topic)
    return topic


def request_analysis(session: Session, actor: Actor, sender: Any, assignment: Assignment, *,
                     stale_after_s: int = STALE_AFTER_S) -> Requested:
    """The assignment's 立意 analysis: the cached one for its prompt and rubric, else a new task."""
    key = analysis_key(assignment.prompt_text, assignment.rubric_id, assignment.rubric_version)
    analysis, needs_model = cached_row(session, TopicAnalysis, key, lambda: TopicAnalysis(
        cache_key=key, prompt_text=assignment.prompt_text, rubric_ref=assignment.rubric_id,
        rubric_version=assignment.rubric_version), stale_after_s)
    session.flush()
    topic = topic_of(session, assignment)
    if topic.analysis_id != analysis.id:
        topic.analysis_id, topic.edited_angles, topic.chosen, topic.pick_id = analysis.id, None, None, None
    actor.record(session, "teaching.analyse", object_type="assignment", object_id=assignment.id,
                 cached=not needs_model)
    session.commit()
    sent = needs_model and _send(sender, TOPIC_ANGLES_TASK, analysis)
    session.commit()
    return Requested(analysis.id, sent)


def angles_of(topic: AssignmentTopic | None) -> list[dict[str, Any]]:
    """The angles as the teacher keeps them: the edited ones, else the model's."""
    if topic is None:
        return []
    if topic.edited_angles is not None:
        return list(topic.edited_angles)
    if topic.analysis is not None and topic.analysis.status == JobStatus.done:
        return list(topic.analysis.angles)
    return []


def split_words(raw: str) -> list[str]:
    return [word for word in raw.replace("，", "、").replace(",", "、").replace(" ", "、").split("、") if word]


def check_angles(angles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The teacher's angles under the model's rules (bounded text, a known theme, 2–5 key words), 1 to 5 of them."""
    if not 1 <= len(angles) <= MAX_ANGLES:
        raise TeachingError(f"立意应有 1 到 {MAX_ANGLES} 条。")
    for number, angle in enumerate(angles, start=1):
        try:
            jsonschema.validate(angle, ANGLE)
        except jsonschema.ValidationError as exc:
            field = {"thesis": "立意", "theme": "主题", "keywords": "关键词", "relation": "与材料的关系",
                     "off_topic": "偏题提醒"}.get(str(exc.path[0]) if exc.path else "", "内容")
            raise TeachingError(f"第 {number} 条立意的“{field}”不符合要求：{_why(exc)}") from exc
    return angles


def _why(exc: jsonschema.ValidationError) -> str:
    if exc.validator == "maxLength":
        return f"最多 {exc.validator_value} 个字"
    if exc.validator in ("minLength", "required"):
        return "不能为空"
    if exc.validator == "enum":
        return "请从 " + "、".join(THEMES) + " 中选择"
    if exc.validator == "minItems":
        return f"至少 {exc.validator_value} 个"
    if exc.validator == "maxItems":
        return f"最多 {exc.validator_value} 个"
    return "格式不对"


def save_angles(session: Session, actor: Actor, account: User, assignment: Assignment,
                angles: list[dict[str, Any]]) -> None:
    topic = topic_of(session, assignment)
    if topic.analysis_id is None:
        raise TeachingError("请先生成立意。")
    topic.edited_angles = check_angles(angles)
    topic.chosen, topic.pick_id = None, None
    topic.updated_by, topic.updated_at = account.id, utcnow()
    actor.record(session, "teaching.edit_angles", object_type="assignment", object_id=assignment.id,
                 angles=len(angles))
    session.commit()


def choose_angle(session: Session, actor: Actor, sender: Any, account: User, assignment: Assignment,
                 index: int, *, stale_after_s: int = STALE_AFTER_S) -> Requested:
    """Choose an angle and ask for its 素材: entries retrieved now (the library and the school's own), the model's
    choice among them cached by angle, candidates and library version."""
    topic = session.get(AssignmentTopic, assignment.id)
    angles = angles_of(topic)
    if topic is None or not 0 <= index < len(angles):
        raise TeachingError("请选择一条已生成的立意。")
    school_id = assignment.classroom.school_id
    angle = angles[index]
    candidates = candidates_for(session, school_id, assignment.prompt_text, angle)
    if not candidates:
        raise TeachingError("素材库中没有可用的条目。")
    own = any(c.startswith("school-") for c in candidates)
    key = digest("picks", load_library().version, school_id if own else None, angle, candidates,
                 " ".join(assignment.prompt_text.split()))
    pick, needs_model = cached_row(session, MaterialPick, key, lambda: MaterialPick(
        cache_key=key, school_id=school_id if own else None, prompt_text=assignment.prompt_text, angle=angle,
        candidates=candidates), stale_after_s)
    session.flush()
    topic.chosen, topic.pick_id, topic.updated_by, topic.updated_at = index, pick.id, account.id, utcnow()
    actor.record(session, "teaching.choose_angle", object_type="assignment", object_id=assignment.id, angle=index,
                 cached=not needs_model)
    session.commit()
    sent = needs_model and _send(sender, MATERIAL_PICKS_TASK, pick)
    session.commit()
    return Requested(pick.id, sent)


def picked_entries(session: Session, pick: MaterialPick | None) -> list[tuple[Material, str]]:
    """(entry, how to use it) for each pick whose entry still exists."""
    if pick is None or pick.status != JobStatus.done:
        return []
    found = find_entries(session, pick.school_id, [p["id"] for p in pick.picks])
    return [(found[p["id"]], p["usage"]) for p in pick.picks if p["id"] in found]


def request_lesson(session: Session, actor: Actor, sender: Any, account: User, goal: str,
                   assignment: Assignment | None) -> LessonPlan:
    goal = " ".join(goal.split())
    if len(goal) > GOAL_MAX:
        raise TeachingError(f"教学目标最多 {GOAL_MAX} 个字。")
    if not goal and assignment is None:
        raise TeachingError("请填写教学目标，或选择一次作业（按本班的错误生成教案）。")
    school_id = assignment.classroom.school_id if assignment is not None else account.school_id
    if school_id is None:
        raise TeachingError("系统管理员请从某次作业生成教案。")
    facts = class_facts(session, assignment) if assignment is not None else {}
    if assignment is not None and not facts["essays"] and not goal:
        raise TeachingError("这次作业还没有评完的作文：请填写教学目标，或等评分完成后再按本班的错误生成。")
    plan = LessonPlan(school_id=school_id, assignment_id=assignment.id if assignment else None,
                      created_by=account.id, goal=goal, facts=facts)
    session.add(plan)
    session.flush()
    actor.record(session, "teaching.lesson_request", object_type="lesson_plan", object_id=plan.id,
                 assignment_id=plan.assignment_id)
    session.commit()
    _send(sender, LESSON_PLAN_TASK, plan)
    session.commit()
    return plan


def latest_version(session: Session, plan: LessonPlan) -> LessonPlanVersion | None:
    return session.scalar(select(LessonPlanVersion).where(LessonPlanVersion.plan_id == plan.id)
                          .order_by(LessonPlanVersion.version.desc()).limit(1))


def save_lesson(session: Session, actor: Actor, account: User, plan: LessonPlan,
                content: dict[str, Any]) -> LessonPlanVersion:
    """A new version with the teacher's content (checked against the 教案 schema)."""
    if plan.status != JobStatus.done:
        raise TeachingError("教案尚未生成完成，暂不能修改。")
    try:
        jsonschema.validate(content, LESSON_SCHEMA)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.path) or "教案"
        raise TeachingError(f"教案内容不符合要求（{where}）：{_why(exc)}") from exc
    number = (session.scalar(select(func.max(LessonPlanVersion.version))
                             .where(LessonPlanVersion.plan_id == plan.id)) or 0) + 1
    version = LessonPlanVersion(plan_id=plan.id, version=number, content=content, source="teacher",
                                created_by=account.id)
    session.add(version)
    actor.record(session, "teaching.lesson_edit", object_type="lesson_plan", object_id=plan.id, version=number)
    session.commit()
    return version


def add_school_material(session: Session, actor: Actor, account: User, school_id: int,
                        form: dict[str, Any]) -> SchoolMaterial:
    """A school's own entry, validated like a library entry (and not a repeat of one or of the school's)."""
    values = {key: " ".join(str(form.get(key) or "").split()) for key in
              ("kind", "title", "text", "summary", "origin", "source")}
    try:
        entry = Material(id=f"{SCHOOL_PREFIX}new", themes=tuple(t for t in form.get("themes") or [] if t), **values)
    except ValueError as exc:
        raise TeachingError(_material_problem(exc)) from exc
    existing = [(f"素材库 {e.id}", e) for e in load_library().entries]
    existing += [(f"本校素材 {e.title}", e) for e in school_entries(session, school_id)]
    problems = check_duplicates([*existing, ("新条目", entry)])
    if problems:
        raise TeachingError("与已有素材重复：" + "；".join(problems))
    row = SchoolMaterial(school_id=school_id, kind=entry.kind, title=entry.title, text=entry.text,
                         themes=list(entry.themes), summary=entry.summary, origin=entry.origin, source=entry.source,
                         created_by=account.id)
    session.add(row)
    session.flush()
    actor.record(session, "teaching.material_add", object_type="school_material", object_id=row.id,
                 school_id=school_id)
    session.commit()
    return row


def _material_problem(exc: ValueError) -> str:
    text = str(exc)
    for field, name in (("kind", "类型"), ("title", "标题"), ("themes", "主题"), ("summary", "简介"),
                        ("origin", "出处"), ("source", "来源"), ("text", "原文")):
        if f"\n{field}\n" in f"\n{text}\n" or f"\n{field}" in text:
            return f"素材的“{name}”缺失或无效（类型：{'、'.join(KINDS.values())}；主题至少选一个）。"
    if "needs its text" in text:
        return "名言和诗词须填写原文。"
    if "unknown theme" in text:
        return "主题须从 " + "、".join(THEMES) + " 中选择。"
    return "素材无效，请检查各项内容。"
