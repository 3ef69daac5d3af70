"""The class workbook for one assignment: summary with charts, students, errors and training plans."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.formatting.rule import FormulaRule
from openpyxl.utils import get_column_letter
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.worker.reports.agreement_sheet import add_agreement_sheet
from services.worker.reports.charts import ROWS_PER_CHART, add_series, bar_chart
from services.worker.reports.chat_sheet import add_chat_sheet
from services.worker.reports.excel import (
    BAND_FILLS,
    BOLD,
    DECIMAL,
    HEADER,
    PERCENT,
    TITLE,
    WRAP,
    SheetBuffer,
    add_sheet,
    page_break_before,
    save_atomically,
)
from services.worker.reports.queries import (
    AssignmentInfo,
    ErrorItem,
    PlanRow,
    RosterEssay,
    assignment_info,
    latest_plans,
    roster_essays,
)
from services.worker.reports.rubric_view import BandView, RubricView, rubric_view
from services.worker.reports.stats import Summary, competition_ranks, histogram, share, summarize
from shared.clock import now_in, people_zone, wall_time
from shared.models import TrainingPlan

logger = logging.getLogger(__name__)

SUMMARY_SHEET, STUDENTS_SHEET, ERRORS_SHEET, PLANS_SHEET = "概览", "学生", "错误", "训练计划"
# Word-level mistakes are the same when the same thing was written wrong the same way; for sentence-level
# ones (病句 …) the quote differs per student, so the model's explanation names the shared pattern.
SAME_QUOTE_TYPES = frozenset({"错别字", "用词不当", "标点"})
FREQUENT_MISTAKES = 30
MAX_FOCUS_COLUMNS = 4
STATUS_LABELS = {"graded": "已评分", "failed": "评分失败", "queued": "待评分", "grading": "评分中",
                 "second_read": "待二评"}
CHART_COLUMN = "K"
# A graded essay that no plan was computed from yet: the plans task is running (the workbook is built again after).
PLANS_PENDING = "训练计划生成中，完成后会另出一份含训练计划的新版报表"


# --- figures ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mistake:
    type: str
    original: str
    suggestion: str
    explanation: str
    count: int
    students: tuple[str, ...]


@dataclass(frozen=True)
class ClassFigures:
    essays: int
    graded: int
    failed: int
    pending: int
    missing: int
    flagged: int
    short: int
    dimensions: dict[str, Summary]
    total: Summary
    ranks: dict[int, int]  # student id -> rank among graded essays


def class_figures(roster: Sequence[RosterEssay], view: RubricView, required_length: int) -> ClassFigures:
    handed_in = [r for r in roster if r.essay_id is not None]
    graded = [r for r in handed_in if r.grade is not None]
    totals = [r.grade.total for r in graded if r.grade]
    ranks = competition_ranks(totals)
    return ClassFigures(
        essays=len(handed_in),
        graded=len(graded),
        failed=sum(1 for r in handed_in if r.status == "failed"),
        pending=sum(1 for r in handed_in if r.status in ("queued", "grading")),
        missing=len(roster) - len(handed_in),
        flagged=sum(1 for r in handed_in if r.flags),
        short=sum(1 for r in handed_in if (r.char_count or 0) < required_length),
        dimensions={
            dim.key: summarize([r.grade.scores[dim.key] for r in graded if r.grade and dim.key in r.grade.scores])
            for dim in view.dimensions
        },
        total=summarize(totals),
        ranks={r.student_id: rank for r, rank in zip(graded, ranks, strict=True)},
    )


def _mistake_key(error: ErrorItem) -> tuple[str, str, str]:
    explanation = error.explanation.strip().rstrip("。.；;，,")
    if error.type in SAME_QUOTE_TYPES or not explanation:
        return error.type, error.original.strip(), error.suggestion.strip()
    return error.type, "", explanation


def frequent_mistakes(roster: Sequence[RosterEssay], limit: int = FREQUENT_MISTAKES) -> list[Mistake]:
    """The concrete mistakes most students made: what to teach next lesson, most widespread first."""
    counts: Counter[tuple[str, str, str]] = Counter()
    students: dict[tuple[str, str, str], dict[int, str]] = defaultdict(dict)
    example: dict[tuple[str, str, str], ErrorItem] = {}
    for row in roster:
        for error in row.grade.errors if row.grade else ():
            key = _mistake_key(error)
            counts[key] += 1
            students[key][row.student_id] = row.name
            example.setdefault(key, error)
    keys = sorted(counts, key=lambda k: (-len(students[k]), -counts[k], k))
    return [
        Mistake(k[0], example[k].original, example[k].suggestion, example[k].explanation, counts[k],
                tuple(students[k].values()))
        for k in keys[:limit]
    ]


def overall_band(view: RubricView, total: int) -> str:
    return view.total_band(total)


# --- sheets ----------------------------------------------------------------------------------------------


def _summary_sheet(
    wb: Workbook, info: AssignmentInfo, view: RubricView, roster: Sequence[RosterEssay], figures: ClassFigures,
    zone: tzinfo,
) -> None:
    ws = add_sheet(wb, SUMMARY_SHEET)
    sheet = SheetBuffer(ws)
    sheet.add([f"{info.title} · {info.classroom_name} 作文报告"], TITLE, measure=False)
    sheet.add(["班级", info.classroom_name, "任课教师", info.teacher_name], styles={0: BOLD, 2: BOLD})
    sheet.add(["评分标准", f"{view.name}（{view.ref}）", "要求字数", info.required_length], styles={0: BOLD, 2: BOLD},
              measure=False)
    sheet.add(["生成时间", now_in(zone).strftime("%Y-%m-%d %H:%M")], styles={0: BOLD}, measure=False)
    sheet.blank()
    sheet.add(["指标", "数值"], HEADER)
    chars = [r.char_count for r in roster if r.essay_id is not None and r.char_count is not None]
    for label, value, style in (
        ("作文数", figures.essays, None),
        ("已评分", figures.graded, None),
        ("评分失败", figures.failed, None),
        ("待评分", figures.pending, None),
        ("未提交", figures.missing, None),
        ("被标记作文（需复核）", figures.flagged, None),
        (f"字数不足 {info.required_length} 字的比例", share(figures.short, figures.essays), PERCENT),
        ("平均字数", sum(chars) / len(chars) if chars else None, DECIMAL),
    ):
        sheet.add([label, value], styles={1: style} if style else None)
    sheet.blank()
    header = sheet.add(["维度", "满分", "平均分", "中位数", "标准差", "最低分", "最高分", "平均得分率"], HEADER)
    rows = [(dim.name, dim.max, figures.dimensions[dim.key]) for dim in view.dimensions]
    rows.append(("总分", view.total, figures.total))
    for name, top, summary in rows:
        rate = summary.mean / top if summary.mean is not None and top else None
        sheet.add(
            [name, top, summary.mean, summary.median, summary.std, summary.minimum, summary.maximum, rate],
            styles={2: DECIMAL, 3: DECIMAL, 4: DECIMAL, 7: PERCENT},
        )
    dimension_rows = (header + 1, header + len(view.dimensions))
    sheet.blank()
    sheet.add(["维度", "分档", "分数范围", "人数", "占比"], HEADER)
    graded = [r.grade for r in roster if r.grade]
    band_rows: list[tuple[str, Sequence[BandView], list[float]]] = [
        (dim.name, dim.bands, [g.scores[dim.key] for g in graded if dim.key in g.scores]) for dim in view.dimensions
    ]
    band_rows.append(("总分", view.total_bands, [g.total for g in graded]))
    for name, bands, scores in band_rows:
        for band in bands:
            count = sum(1 for score in scores if band.low <= score <= band.high)
            sheet.add([name, band.name, f"{band.low}–{band.high}", count, share(count, len(scores))],
                      styles={4: PERCENT})
    sheet.blank()
    bins_header = sheet.add(["总分分数段", "人数"], HEADER)
    top = view.total or int(figures.total.maximum or 0) or 1
    for bin_ in histogram([g.total for g in graded], top):
        sheet.add([bin_.label, bin_.count])
    bins_last = sheet.last_row
    sheet.write()

    chart = add_series(bar_chart("总分分布", "人数", x_title="分数段", y_format="0"), ws, 2, bins_header, bins_last)
    ws.add_chart(chart, f"{CHART_COLUMN}2")
    if view.dimensions:
        header_row, last_row = dimension_rows[0] - 1, dimension_rows[1]
        chart = add_series(bar_chart("各维度平均分", "平均分", y_format="0.0"), ws, 3, header_row, last_row)
        page_break_before(ws, 2 + ROWS_PER_CHART)
        ws.add_chart(chart, f"{CHART_COLUMN}{2 + ROWS_PER_CHART}")


def _deductions_text(row: RosterEssay) -> str:
    if row.grade is None:
        return ""
    return "；".join(f"{d.detail}（{d.points:+d} 分）" for d in row.grade.deductions)


def _error_summary(row: RosterEssay) -> str:
    if row.grade is None:
        return ""
    counts = Counter(error.type for error in row.grade.errors)
    return "、".join(f"{error_type}×{count}" for error_type, count in counts.most_common(3))


def _status_text(row: RosterEssay) -> str:
    if row.essay_id is None:
        return "未提交"
    label = STATUS_LABELS.get(row.status or "", row.status or "")
    if row.status == "failed" and row.failure_reason:
        return f"{label}：{row.failure_reason}"
    if row.status == "graded" and row.grade is None:
        return "待复核"  # a flagged essay's model score, withheld until a teacher confirms it
    return label


def _band_rule(column: str, first: int, band: BandView) -> str:
    cell = f"{column}{first}"
    return f"AND(ISNUMBER({cell}),{cell}>={band.low},{cell}<={band.high})"


def _students_sheet(wb: Workbook, view: RubricView, roster: Sequence[RosterEssay], figures: ClassFigures) -> None:
    ws = add_sheet(wb, STUDENTS_SHEET)
    sheet = SheetBuffer(ws)
    total_label = f"总分（{view.total}）" if view.total else "总分"
    header = ["学号", "姓名", *[f"{d.name}（{d.max}）" for d in view.dimensions], total_label, "等级", "班级排名",
              "字数", "扣分", "主要错误", "评语", "状态", "标记"]
    sheet.add(header, HEADER)
    first_text = 2 + len(view.dimensions) + 4  # 0-based index of 扣分
    wrap = {first_text: WRAP, first_text + 2: WRAP, first_text + 4: WRAP}
    for row in roster:
        grade = row.grade
        scores = [grade.scores.get(d.key) if grade else None for d in view.dimensions]
        sheet.add(
            [row.student_number, row.name, *scores, grade.total if grade else None,
             overall_band(view, grade.total) if grade else None, figures.ranks.get(row.student_id), row.char_count,
             _deductions_text(row), _error_summary(row), grade.comment if grade else None, _status_text(row),
             "；".join(row.flags) or None],
            styles=wrap,
        )
    last = max(sheet.last_row, 2)
    sheet.widths.fixed(first_text + 1, 40)  # 扣分
    sheet.widths.fixed(first_text + 3, 50)  # 评语
    sheet.write()
    ws.freeze_panes = "C2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(header))}{last}"
    for index, dim in enumerate(view.dimensions):
        _colour_bands(ws, get_column_letter(3 + index), last, dim.bands)
    _colour_bands(ws, get_column_letter(3 + len(view.dimensions)), last, view.total_bands)


def _colour_bands(ws: Any, column: str, last: int, bands: Sequence[BandView]) -> None:
    for rank, band in enumerate(bands):
        fill = BAND_FILLS[min(rank, len(BAND_FILLS) - 1)]
        ws.conditional_formatting.add(f"{column}2:{column}{last}", FormulaRule(formula=[_band_rule(column, 2, band)],
                                                                                fill=fill))


def _error_types(view: RubricView, roster: Sequence[RosterEssay]) -> list[str]:
    seen = [e.type for r in roster if r.grade for e in r.grade.errors]
    return list(dict.fromkeys([*view.error_types, *seen]))


def _errors_sheet(wb: Workbook, view: RubricView, roster: Sequence[RosterEssay]) -> None:
    ws = add_sheet(wb, ERRORS_SHEET)
    sheet = SheetBuffer(ws)
    graded = [r for r in roster if r.grade]
    types = _error_types(view, roster)
    per_student = {r.student_id: Counter(e.type for e in r.grade.errors) for r in graded if r.grade}
    sheet.add([f"错误类型统计（已评 {len(graded)} 篇）"], TITLE, measure=False)
    sheet.add(["错误类型", "次数", "涉及学生数", "涉及学生占比", "篇均次数"], HEADER)
    for error_type in types:
        count = sum(c[error_type] for c in per_student.values())
        students = sum(1 for c in per_student.values() if c[error_type])
        sheet.add([error_type, count, students, share(students, len(graded)), share(count, len(graded))],
                  styles={3: PERCENT, 4: DECIMAL})
    sheet.blank()
    sheet.add(["高频具体错误（建议下节课讲评）"], TITLE, measure=False)
    sheet.add(["错误类型", "原文（示例）", "建议改为", "说明", "出现次数", "涉及学生数", "学生"], HEADER)
    for mistake in frequent_mistakes(roster):
        sheet.add([mistake.type, mistake.original, mistake.suggestion, mistake.explanation, mistake.count,
                   len(mistake.students), "、".join(mistake.students)], styles={6: WRAP})
    sheet.blank()
    sheet.add(["学生错误明细"], TITLE, measure=False)
    sheet.add(["学号", "姓名", *types, "合计"], HEADER)
    for row in graded:
        counts = per_student[row.student_id]
        sheet.add([row.student_number, row.name, *[counts[t] for t in types], sum(counts.values())])
    sheet.widths.fixed(7, 40)
    sheet.write()


def _planned_essays(session: Session, student_ids: Sequence[int], since: datetime) -> set[int]:
    """The essays that some plan of these students, written since ``since``, was computed from."""
    if not student_ids:
        return set()
    rows = session.scalars(
        select(TrainingPlan.essay_ids)
        .where(TrainingPlan.student_id.in_(list(student_ids)), TrainingPlan.created_at >= since)
    )
    return {int(essay_id) for essay_ids in rows for essay_id in (essay_ids or [])}


def _plans_sheet(
    wb: Workbook, roster: Sequence[RosterEssay], plans: dict[int, PlanRow], planned: set[int], zone: tzinfo
) -> None:
    ws = add_sheet(wb, PLANS_SHEET)
    sheet = SheetBuffer(ws)
    focus_headers = [f"重点 {i}" for i in range(1, MAX_FOCUS_COLUMNS + 1)]
    sheet.add(["学号", "姓名", *focus_headers, "练习安排", "给教师的建议", "生成时间"], HEADER)
    # Every cell wraps and sits at the top, so a student's number and name line up with the first line of the plan.
    wrap = {i: WRAP for i in range(0, 5 + MAX_FOCUS_COLUMNS)}
    for row in roster:
        if row.essay_id is None and row.student_id not in plans:
            continue
        if row.grade is not None and row.essay_id not in planned:
            sheet.add([row.student_number, row.name, PLANS_PENDING])
            continue
        plan = plans.get(row.student_id)
        if plan is None:
            sheet.add([row.student_number, row.name, "暂无训练计划（尚无已评作文）"])
            continue
        areas = [a for a in plan.focus_areas if isinstance(a, dict)]
        focus = [f"{a.get('label', '')}：{a.get('reason', '')}" for a in areas[:MAX_FOCUS_COLUMNS]]
        focus += [None] * (MAX_FOCUS_COLUMNS - len(focus))
        exercises = [e for a in areas for e in a.get("exercises", []) if isinstance(e, dict)]
        listing = "\n".join(f"{i}. {e.get('title', '')}：{e.get('detail', '')}{_materials_text(e)}"
                            for i, e in enumerate(exercises, 1))
        sheet.add([row.student_number, row.name, *focus, listing, plan.narrative,
                   wall_time(plan.created_at, zone)], styles=wrap,
                  measure=False)
    for column in range(1, 3):
        sheet.widths.fixed(column, 12)
    for column in range(3, 3 + MAX_FOCUS_COLUMNS):
        sheet.widths.fixed(column, 30)
    sheet.widths.fixed(3 + MAX_FOCUS_COLUMNS, 60)
    sheet.widths.fixed(4 + MAX_FOCUS_COLUMNS, 50)
    sheet.widths.fixed(5 + MAX_FOCUS_COLUMNS, 18)
    sheet.write()
    ws.freeze_panes = "C2"


def build_class_workbook(session: Session, assignment_id: int, path: Path, *, zone: tzinfo | None = None) -> Path:
    """Write the class workbook for an assignment to ``path`` (atomically) and return the path; times are written in
    ``zone`` (default Asia/Shanghai: YUEJUAN_TIMEZONE through the report task)."""
    zone = zone or people_zone()
    info = assignment_info(session, assignment_id)
    if info is None:
        raise LookupError(f"作文任务 {assignment_id} 不存在")
    roster = roster_essays(session, assignment_id, info.classroom_id)
    view = rubric_view(info.rubric_id, info.rubric_version, [r.grade.scores for r in roster if r.grade])
    figures = class_figures(roster, view, info.required_length)
    plans = latest_plans(session, [r.student_id for r in roster])
    planned = _planned_essays(session, [r.student_id for r in roster if r.grade is not None], info.created_at)
    wb = Workbook()
    wb.remove(wb.active)
    _summary_sheet(wb, info, view, roster, figures, zone)
    _students_sheet(wb, view, roster, figures)
    _errors_sheet(wb, view, roster)
    _plans_sheet(wb, roster, plans, planned, zone)
    add_agreement_sheet(wb, session, [assignment_id], info.school_id, per_essay=True, zone=zone)
    add_chat_sheet(wb, session, info.classroom_id, zone)
    save_atomically(wb, path)
    logger.info("class workbook for assignment %s: %s essays, %s graded -> %s", assignment_id, figures.essays,
                figures.graded, path)
    return path


def _materials_text(exercise: dict[str, Any]) -> str:
    """The 素材 an exercise names, as the library cites them: ``（素材：《…》，出处；来源）``."""
    cited = [f"《{m.get('title', '')}》，{m.get('origin', '')}；{m.get('source', '')}"
             for m in exercise.get("materials", []) if isinstance(m, dict)]
    return f"（素材：{' / '.join(cited)}）" if cited else ""
