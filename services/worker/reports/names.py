"""Task names and report kinds shared by the web (which sends and lists) and the workers (which run)."""

CLASS_WORKBOOK_TASK = "reports.class_workbook"
SCHOOL_WORKBOOK_TASK = "reports.school_workbook"
TRAINING_PLANS_TASK = "grading.training_plans"

CLASS_REPORT = "class_workbook"  # ReportJob.kind, with assignment_id (and classroom_id, school_id) set
SCHOOL_REPORT = "school_workbook"  # ReportJob.kind, with school_id set

TASK_FOR_KIND = {CLASS_REPORT: CLASS_WORKBOOK_TASK, SCHOOL_REPORT: SCHOOL_WORKBOOK_TASK}
