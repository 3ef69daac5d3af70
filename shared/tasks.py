"""The contract between the web app and the workers: queue names, task names and report kinds.

Tasks are sent by these names with ids and primitives only; declared here once, imported by both sides.
"""

from __future__ import annotations

import enum

# Queues: model work (grading, training plans, evaluation) on `gpu`; workbooks and housekeeping on `reports`.
GPU_QUEUE = "gpu"
REPORTS_QUEUE = "reports"
# Student chat turns: consumed by every grading worker, listed before `gpu`, so a turn is taken between batches
# rather than behind a whole class (README "Student Q&A").
CHAT_QUEUE = "chat"

GRADE_TASK = "grading.grade_batch"
TRAINING_PLANS_TASK = "grading.training_plans"
EVAL_TASK = "grading.evaluate"
# The teaching assistant (issue 20): 立意 angles, 素材 picks, 教案.
TOPIC_ANGLES_TASK = "grading.topic_angles"
MATERIAL_PICKS_TASK = "grading.material_picks"
LESSON_PLAN_TASK = "grading.lesson_plan"
TRAIN_ADAPTER_TASK = "grading.train_adapter"
CLASS_WORKBOOK_TASK = "reports.class_workbook"
SCHOOL_WORKBOOK_TASK = "reports.school_workbook"
CHAT_TASK = "chat.answer_turn"
PURGE_TASK = "maintenance.purge_expired"
SWEEP_TASK = "maintenance.requeue_stale"


class ReportKind(enum.StrEnum):
    """``ReportJob.kind``: a class workbook has assignment_id (and classroom_id, school_id) set; a school
    workbook has school_id set."""

    class_workbook = "class_workbook"
    school_workbook = "school_workbook"


TASK_FOR_KIND = {ReportKind.class_workbook: CLASS_WORKBOOK_TASK, ReportKind.school_workbook: SCHOOL_WORKBOOK_TASK}
