"""Task names and report kinds, from the contract in ``shared.tasks`` (kept while callers move there)."""

from shared.tasks import CLASS_WORKBOOK_TASK, SCHOOL_WORKBOOK_TASK, TASK_FOR_KIND, TRAINING_PLANS_TASK, ReportKind

CLASS_REPORT = ReportKind.class_workbook
SCHOOL_REPORT = ReportKind.school_workbook

__all__ = ["CLASS_REPORT", "CLASS_WORKBOOK_TASK", "SCHOOL_REPORT", "SCHOOL_WORKBOOK_TASK", "TASK_FOR_KIND",
           "TRAINING_PLANS_TASK"]
