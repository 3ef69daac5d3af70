"""The teaching assistant's tasks (gpu queue): 立意 angles for a cached analysis row, 素材 picks for a cached pick
row, and the first version of a 教案. Each row is claimed ``queued → running`` once, so a redelivered task never
calls the model again; the answer is checked against its schema before it is stored, and a failure is stored on
the row (for the page) and re-raised for Celery."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from celery import Celery
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from services.worker import runtime
from shared.models import JobStatus, LessonPlan, LessonPlanVersion, MaterialPick, TopicAnalysis, transaction
from shared.models.base import utcnow
from shared.prompts.rubric import RubricError, resolve_rubric
from shared.prompts.teaching import (
    ANGLES_SCHEMA,
    LESSON_PARTS,
    angle_messages,
    lesson_messages,
    lesson_part_schema,
    material_messages,
    picks_schema,
)
from shared.tasks import GPU_QUEUE, LESSON_PLAN_TASK, MATERIAL_PICKS_TASK, TOPIC_ANGLES_TASK
from shared.teaching import InvalidAnswer, checked_angles, checked_lesson, checked_picks, find_entries

if TYPE_CHECKING:
    from services.worker.engine import Engine

logger = logging.getLogger(__name__)

Row = TypeVar("Row", TopicAnalysis, MaterialPick, LessonPlan)


class TeachingJobFailed(RuntimeError):
    """The model gave no usable answer; the reason is stored on the row."""


def register_teaching_tasks(app: Celery) -> None:
    @app.task(name=TOPIC_ANGLES_TASK, queue=GPU_QUEUE)
    def topic_angles(analysis_id: int) -> int:
        """Write the 立意 angles of one analysis row; returns how many."""
        return run_topic_angles(runtime.sessions(), runtime.engine(), analysis_id)

    @app.task(name=MATERIAL_PICKS_TASK, queue=GPU_QUEUE)
    def material_picks(pick_id: int) -> int:
        """Choose 素材 for one pick row among its retrieved candidates; returns how many were picked."""
        return run_material_picks(runtime.sessions(), runtime.engine(), pick_id)

    @app.task(name=LESSON_PLAN_TASK, queue=GPU_QUEUE)
    def lesson_plan(plan_id: int) -> int:
        """Write the first version of a 教案; returns its version number (0 when there was nothing to do)."""
        return run_lesson_plan(runtime.sessions(), runtime.engine(), plan_id)


def _claim(sessions: sessionmaker[Session], model: type[Row], row_id: int) -> dict[str, Any] | None:
    """Move the row queued → running; its columns, or None when it was not queued any more."""
    with transaction(sessions) as session:
        claimed = session.execute(update(model).where(model.id == row_id, model.status == JobStatus.queued)
                                  .values(status=JobStatus.running)).rowcount
        row = session.get(model, row_id) if claimed else None
        if row is None:
            logger.info("%s %s is not queued (done, running or deleted); nothing to do", model.__tablename__, row_id)
            return None
        return {column.key: getattr(row, column.key) for column in model.__table__.columns}


def _finish(sessions: sessionmaker[Session], model: type[Row], row_id: int, status: JobStatus, *,
            rows: Sequence[object] = (), **values: Any) -> None:
    """The row's outcome and any rows that come with it, in one transaction."""
    with transaction(sessions) as session:
        session.execute(update(model).where(model.id == row_id).values(status=status, finished_at=utcnow(), **values))
        session.add_all(rows)


def _answer(engine: Engine, messages: list[dict[str, str]], schema: dict[str, Any]) -> Any:
    generation = engine.generate_json([messages], schema)[0]
    if generation.error:
        raise TeachingJobFailed(f"模型未能作答：{generation.error}")
    try:
        return json.loads(generation.text)
    except json.JSONDecodeError as exc:
        raise TeachingJobFailed("模型的回答不是有效的 JSON") from exc


def _run(sessions: sessionmaker[Session], engine: Engine, model: type[Row], row_id: int,
         work: Callable[[dict[str, Any]], dict[str, Any]], *,
         rows: Callable[[dict[str, Any]], Sequence[object]] = lambda _: ()) -> dict[str, Any] | None:
    """Claim, work, store: ``work`` returns the columns to store and ``rows`` what is added with them (from the
    same values); a failure is stored and re-raised."""
    row = _claim(sessions, model, row_id)
    if row is None:
        return None
    try:
        values = work(row)
    except Exception as exc:
        reason = str(exc) if isinstance(exc, TeachingJobFailed | InvalidAnswer | RubricError) else (
            f"生成中断：{type(exc).__name__}")
        _finish(sessions, model, row_id, JobStatus.failed, error=reason)
        logger.exception("%s %s failed", model.__tablename__, row_id)
        if isinstance(exc, TeachingJobFailed):
            raise
        raise TeachingJobFailed(reason) from exc
    _finish(sessions, model, row_id, JobStatus.done, rows=rows(values), error=None, model_name=_model_name(engine),
            **{key: value for key, value in values.items() if not key.startswith("_")})
    return values


def _model_name(engine: Engine) -> str | None:
    return str(engine.describe().get("model") or "") or None


def run_topic_angles(sessions: sessionmaker[Session], engine: Engine, analysis_id: int) -> int:
    def work(row: dict[str, Any]) -> dict[str, Any]:
        rubric = resolve_rubric(row["rubric_ref"], row["rubric_version"])
        messages = angle_messages(row["prompt_text"], rubric_name=rubric.name)
        return {"angles": checked_angles(_answer(engine, messages, ANGLES_SCHEMA))}

    values = _run(sessions, engine, TopicAnalysis, analysis_id, work)
    return len(values["angles"]) if values else 0


def run_material_picks(sessions: sessionmaker[Session], engine: Engine, pick_id: int) -> int:
    def work(row: dict[str, Any]) -> dict[str, Any]:
        ids = [str(i) for i in row["candidates"]]
        with sessions() as session:
            found = find_entries(session, row["school_id"], ids)
        candidates = [found[i] for i in ids if i in found]  # an entry deleted since retrieval is no candidate
        if not candidates:
            raise TeachingJobFailed("检索到的素材已不在素材库中，请重新选择立意。")
        schema = picks_schema([entry.id for entry in candidates])
        answer = _answer(engine, material_messages(row["prompt_text"], row["angle"], candidates), schema)
        return {"picks": checked_picks(answer, [entry.id for entry in candidates])}

    values = _run(sessions, engine, MaterialPick, pick_id, work)
    return len(values["picks"]) if values else 0


def run_lesson_plan(sessions: sessionmaker[Session], engine: Engine, plan_id: int) -> int:
    def work(row: dict[str, Any]) -> dict[str, Any]:
        content: dict[str, Any] = {}
        for part in range(len(LESSON_PARTS)):  # two answers, each within the engine's answer budget
            messages = lesson_messages(row["goal"], row["facts"] or {}, part, written=content)
            content.update(_answer(engine, messages, lesson_part_schema(part)))
        content = checked_lesson(content)
        return {"_content": content, "_created_by": row["created_by"]}

    def first_version(values: dict[str, Any]) -> list[object]:
        return [LessonPlanVersion(plan_id=plan_id, version=1, content=values["_content"], source="model",
                                  created_by=values["_created_by"])]

    return 1 if _run(sessions, engine, LessonPlan, plan_id, work, rows=first_version) is not None else 0
