"""The training-plans task (``grading.training_plans``, gpu queue): new plans for every student of a finished
assignment, stored in one transaction, then the class workbook refreshed so that it shows them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from services.worker import runtime
from services.worker.completion import refresh_after_plans
from services.worker.plans.draft import PlanDraft, build_plans_for_assignment
from services.worker.plans.narrative import narrate, plain_narrative
from shared.models import TrainingPlan, transaction
from shared.queueing import TaskSender
from shared.tasks import GPU_QUEUE, TRAINING_PLANS_TASK

if TYPE_CHECKING:
    from services.worker.engine import Engine

logger = logging.getLogger(__name__)


class WrittenWithoutModel(RuntimeError):
    """The model failed as a whole: the plans were stored with the plain narrative; raised for Celery to record."""

    def __init__(self, assignment_id: int, stored: int, cause: Exception) -> None:
        super().__init__(f"assignment {assignment_id}: {stored} plans stored without the model ({cause!r})")
        self.stored = stored


def register_plan_tasks(app: Celery) -> None:
    @app.task(name=TRAINING_PLANS_TASK, queue=GPU_QUEUE)
    def training_plans(assignment_id: int) -> int:
        """Write a new training plan for each student of the assignment, then refresh its class workbook."""
        return run_training_plans(app, runtime.sessions(), runtime.engine(), assignment_id)


def run_training_plans(sender: TaskSender, sessions: sessionmaker[Session], engine: Engine,
                       assignment_id: int) -> int:
    """Generate and store the assignment's plans, then refresh its class workbook; returns how many were stored.

    When the model fails as a whole the plans are still stored (plain narratives) and the workbook refreshed
    before ``WrittenWithoutModel`` is raised; a database failure stores nothing and refreshes nothing.
    """
    try:
        stored = generate_plans_for_assignment(sessions, engine, assignment_id)
    except WrittenWithoutModel:
        refresh_after_plans(sender, sessions, assignment_id)
        raise
    if stored:
        refresh_after_plans(sender, sessions, assignment_id)
    return stored


def generate_plans_for_assignment(sessions: sessionmaker[Session], engine: Engine, assignment_id: int) -> int:
    """Compute, narrate and store a new plan for each student of the assignment; returns how many were stored.

    The database is read, then released while the model writes, then written in one transaction. A failure of
    the model call as a whole stores the plans with the plain narrative and raises ``WrittenWithoutModel``.
    """
    with sessions() as session:
        drafts = build_plans_for_assignment(session, assignment_id)
    if not drafts:
        logger.info("assignment %s: no graded essays, no training plans", assignment_id)
        return 0
    try:
        narratives = narrate(engine, drafts)
    except Exception as exc:
        logger.exception("assignment %s: the model could not write the narratives; storing the plain ones",
                         assignment_id)
        _store(sessions, drafts, [(plain_narrative(d), False) for d in drafts], None)
        raise WrittenWithoutModel(assignment_id, len(drafts), exc) from exc
    _store(sessions, drafts, narratives, str(engine.describe().get("model") or "") or None)
    logger.info("assignment %s: stored %s training plans", assignment_id, len(drafts))
    return len(drafts)


def _store(sessions: sessionmaker[Session], drafts: Sequence[PlanDraft], narratives: Sequence[tuple[str, bool]],
           model_name: str | None) -> None:
    """One new row per draft; ``model_name`` only on the narratives the model wrote."""
    with transaction(sessions) as session:
        session.add_all(
            TrainingPlan(
                student_id=draft.student_id, essay_ids=list(draft.essay_ids), focus_areas=draft.focus_json(),
                narrative=narrative, model_name=model_name if by_model else None,
            )
            for draft, (narrative, by_model) in zip(drafts, narratives, strict=True)
        )
