"""The school workbook: classes, teachers and the term compared, for school administrators.

Grades are streamed once and aggregated per assignment (mergeable running statistics); classes,
teachers, months and the school are merges of those aggregates, so memory does not grow with the number
of grades. Error counts are grouped by the database. The workbook is written in write-only mode.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from sqlalchemy.orm import Session

from services.worker.reports.agreement_sheet import add_agreement_sheet
from services.worker.reports.charts import ROWS_PER_CHART, add_series, bar_chart, line_chart
from services.worker.reports.excel import (
    DECIMAL,
    HEADER,
    PERCENT,
    TITLE,
    CellStyle,
    SheetBuffer,
    add_sheet,
    page_break_before,
    save_atomically,
)
from services.worker.reports.queries import (
    ClassroomInfo,
    SchoolAssignment,
    school_assignments,
    school_classrooms,
    school_error_counts,
    school_name,
    school_status_counts,
    stream_school_grades,
)
from services.worker.reports.rubric_view import RubricView, rubric_view
from services.worker.reports.stats import RunningStats, share
from shared.clock import in_zone, now_in, people_zone

logger = logging.getLogger(__name__)

SUMMARY_SHEET, CLASSES_SHEET, TEACHERS_SHEET = "概览", "班级对比", "教师对比"
TREND_SHEET, ASSIGNMENTS_SHEET, ERRORS_SHEET = "学期趋势", "作文明细", "错误统计"


@dataclass
class GroupStats:
    """Running statistics of the total, the total's score rate and each dimension for a group of grades."""

    total: RunningStats = field(default_factory=RunningStats)
    rate: RunningStats = field(default_factory=RunningStats)
    dims: dict[str, RunningStats] = field(default_factory=dict)

    def add(self, total: float, scores: dict[str, Any], top: int | None) -> None:
        self.total.add(total)
        if top:
            self.rate.add(total / top)
        for key, value in scores.items():
            stats = self.dims.get(key)
            if stats is None:
                stats = self.dims[key] = RunningStats()
            stats.add(float(value))

    def merge(self, other: GroupStats) -> GroupStats:
        self.total.merge(other.total)
        self.rate.merge(other.rate)
        for key, stats in other.dims.items():
            self.dims.setdefault(key, RunningStats()).merge(stats)
        return self


def merged(groups: Iterable[GroupStats]) -> GroupStats:
    result = GroupStats()
    for group in groups:
        result.merge(group)
    return result


def aggregate_by_assignment(
    rows: Iterable[tuple[int, int, dict[str, Any]]], tops: dict[int, int | None]
) -> dict[int, GroupStats]:
    """One pass over (assignment_id, total, scores) rows."""
    groups: dict[int, GroupStats] = defaultdict(GroupStats)
    for assignment_id, total, scores in rows:
        groups[assignment_id].add(total, scores, tops.get(assignment_id))
    return dict(groups)


@dataclass(frozen=True)
class Columns:
    """The dimension columns every comparison table shares: keys in rubric order and their names."""

    keys: tuple[str, ...]
    names: dict[str, str]

    def header(self) -> list[str]:
        return [*(f"{self.names[k]}均分" for k in self.keys), "总分均分", "平均得分率", "总分标准差"]

    def values(self, group: GroupStats) -> list[Any]:
        dims = [group.dims[k].summary().mean if k in group.dims else None for k in self.keys]
        total = group.total.summary()
        return [*dims, total.mean, group.rate.summary().mean, total.std]

    def styles(self, offset: int) -> dict[int, CellStyle]:
        styles = {offset + i: DECIMAL for i in range(len(self.keys) + 1)}
        styles[offset + len(self.keys) + 1] = PERCENT
        styles[offset + len(self.keys) + 2] = DECIMAL
        return styles

    def rate_column(self, offset: int) -> int:
        """1-based column of 平均得分率 when the block starts at 0-based ``offset``."""
        return offset + len(self.keys) + 2


def _columns(views: Sequence[RubricView], groups: Iterable[GroupStats]) -> Columns:
    names: dict[str, str] = {}
    for view in views:
        for dim in view.dimensions:
            names.setdefault(dim.key, dim.name)
    for group in groups:
        for key in group.dims:
            names.setdefault(key, key)
    return Columns(tuple(names), names)


def _local(moment: datetime, zone: tzinfo) -> datetime:
    return in_zone(moment, zone)


@dataclass
class _School:
    name: str
    classrooms: list[ClassroomInfo]
    assignments: list[SchoolAssignment]
    views: dict[int, RubricView]  # by assignment id
    by_assignment: dict[int, GroupStats]
    statuses: dict[int, dict[str, int]]  # assignment id -> status -> count
    errors: dict[int, dict[str, int]]  # classroom id -> error type -> count
    by_class: dict[int, GroupStats]
    columns: Columns
    zone: tzinfo = field(default_factory=people_zone)  # where people read the times (YUEJUAN_TIMEZONE)

    def group(self, assignment_id: int) -> GroupStats:
        return self.by_assignment.get(assignment_id) or GroupStats()

    def class_group(self, classroom_id: int) -> GroupStats:
        return self.by_class.get(classroom_id) or GroupStats()

    def status_count(self, assignment_ids: Iterable[int], *statuses: str) -> int:
        return sum(self.statuses.get(a, {}).get(s, 0) for a in assignment_ids for s in statuses)


def _load(session: Session, school_id: int) -> _School:
    name = school_name(session, school_id)
    if name is None:
        raise LookupError(f"学校 {school_id} 不存在")
    classrooms = school_classrooms(session, school_id)
    assignments = school_assignments(session, school_id)
    cache: dict[tuple[str, str], RubricView] = {}
    views = {}
    for a in assignments:
        ref = (a.rubric_id, a.rubric_version)
        if ref not in cache:
            cache[ref] = rubric_view(*ref)
        views[a.id] = cache[ref]
    tops = {a.id: views[a.id].total for a in assignments}
    by_assignment = aggregate_by_assignment(stream_school_grades(session, school_id), tops)
    statuses: dict[int, dict[str, int]] = defaultdict(dict)
    for assignment_id, status, count in school_status_counts(session, school_id):
        statuses[assignment_id][status] = count
    errors: dict[int, dict[str, int]] = defaultdict(dict)
    for classroom_id, error_type, count in school_error_counts(session, school_id):
        errors[classroom_id][error_type] = count
    by_class: dict[int, GroupStats] = defaultdict(GroupStats)
    for a in assignments:
        if a.id in by_assignment:
            by_class[a.classroom_id].merge(by_assignment[a.id])
    columns = _columns(list(cache.values()), by_assignment.values())
    return _School(name, classrooms, assignments, views, by_assignment, dict(statuses), dict(errors),
                   dict(by_class), columns)


def _summary_sheet(wb: Workbook, school: _School) -> None:
    sheet = SheetBuffer(add_sheet(wb, SUMMARY_SHEET))
    everything = merged(school.by_assignment.values())
    ids = [a.id for a in school.assignments]
    sheet.add([f"{school.name} 作文成绩汇总"], TITLE, measure=False)
    sheet.add(["生成时间", now_in(school.zone).strftime("%Y-%m-%d %H:%M")])
    sheet.blank()
    sheet.add(["指标", "数值"], HEADER)
    for label, value in (
        ("班级数", len(school.classrooms)),
        ("任课教师数", len({c.teacher_id for c in school.classrooms})),
        ("作文任务数", len(school.assignments)),
        ("学生数", sum(c.student_count for c in school.classrooms)),
        ("已评作文", everything.total.count),
        ("评分失败", school.status_count(ids, "failed")),
        ("待评分", school.status_count(ids, "queued", "grading")),
    ):
        sheet.add([label, value])
    sheet.blank()
    sheet.add(["项目", "均分", "标准差", "最低分", "最高分"], HEADER)
    for key in school.columns.keys:
        summary = everything.dims[key].summary() if key in everything.dims else RunningStats().summary()
        sheet.add([school.columns.names[key], summary.mean, summary.std, summary.minimum, summary.maximum],
                  styles={1: DECIMAL, 2: DECIMAL})
    total = everything.total.summary()
    sheet.add(["总分", total.mean, total.std, total.minimum, total.maximum], styles={1: DECIMAL, 2: DECIMAL})
    sheet.add(["平均得分率", everything.rate.summary().mean], styles={1: PERCENT})
    sheet.write()


def _classes_sheet(wb: Workbook, school: _School) -> None:
    ws = add_sheet(wb, CLASSES_SHEET)
    sheet = SheetBuffer(ws)
    columns = school.columns
    sheet.add(["班级", "任课教师", "学生数", "作文任务数", "已评作文", *columns.header(), "最高分", "最低分"], HEADER)
    for classroom in school.classrooms:
        group = school.class_group(classroom.id)
        count = sum(1 for a in school.assignments if a.classroom_id == classroom.id)
        total = group.total.summary()
        sheet.add(
            [classroom.name, classroom.teacher_name, classroom.student_count, count, group.total.count,
             *columns.values(group), total.maximum, total.minimum],
            styles=columns.styles(5),
        )
    last = sheet.last_row
    sheet.write()
    if last > 1:
        chart = bar_chart("各班平均得分率", "平均得分率", y_format="0%")
        page_break_before(ws, last + 3)
        ws.add_chart(add_series(chart, ws, columns.rate_column(5), 1, last), f"B{last + 3}")


def _teachers_sheet(wb: Workbook, school: _School) -> None:
    ws = add_sheet(wb, TEACHERS_SHEET)
    sheet = SheetBuffer(ws)
    columns = school.columns
    by_teacher: dict[int, list[ClassroomInfo]] = defaultdict(list)
    for classroom in school.classrooms:
        by_teacher[classroom.teacher_id].append(classroom)
    sheet.add(["教师", "任教班级", "已评作文", *columns.header()], HEADER)
    for classrooms in sorted(by_teacher.values(), key=lambda cs: (cs[0].teacher_name, cs[0].teacher_id)):
        group = merged(school.class_group(c.id) for c in classrooms)
        sheet.add(
            [classrooms[0].teacher_name, "、".join(c.name for c in classrooms), group.total.count,
             *columns.values(group)],
            styles=columns.styles(3),
        )
    last = sheet.last_row
    sheet.write()
    if last > 1:
        chart = bar_chart("各教师平均得分率", "平均得分率", y_format="0%")
        page_break_before(ws, last + 3)
        ws.add_chart(add_series(chart, ws, columns.rate_column(3), 1, last), f"B{last + 3}")


def _trend_sheet(wb: Workbook, school: _School) -> None:
    """By month of the assignment's creation, and by the nth assignment of each class (the term's sequence)."""
    ws = add_sheet(wb, TREND_SHEET)
    sheet = SheetBuffer(ws)
    columns = school.columns
    months: dict[str, list[int]] = defaultdict(list)
    ordinals: dict[int, list[int]] = defaultdict(list)
    seen_per_class: dict[int, int] = defaultdict(int)
    for a in school.assignments:  # ordered by created_at
        months[_local(a.created_at, school.zone).strftime("%Y-%m")].append(a.id)
        seen_per_class[a.classroom_id] += 1
        ordinals[seen_per_class[a.classroom_id]].append(a.id)
    month_header = sheet.add(["月份", "作文任务数", "已评作文", *columns.header()], HEADER)
    for month, ids in sorted(months.items()):
        group = merged(school.group(i) for i in ids)
        sheet.add([month, len(ids), group.total.count, *columns.values(group)], styles=columns.styles(3))
    month_last = sheet.last_row
    sheet.blank()
    ordinal_header = sheet.add(["各班第几次作文", "班级数", "已评作文", *columns.header()], HEADER)
    for ordinal, ids in sorted(ordinals.items()):
        group = merged(school.group(i) for i in ids)
        sheet.add([f"第 {ordinal} 次", len(ids), group.total.count, *columns.values(group)],
                  styles=columns.styles(3))
    ordinal_last = sheet.last_row
    sheet.write()
    anchor_row = ordinal_last + 3
    for title, header, last in (("按月平均得分率", month_header, month_last),
                                ("各班第 n 次作文平均得分率", ordinal_header, ordinal_last)):
        if last > header:
            chart = line_chart(title, "平均得分率", y_format="0%")
            page_break_before(ws, anchor_row)
            ws.add_chart(add_series(chart, ws, columns.rate_column(3), header, last), f"B{anchor_row}")
            anchor_row += ROWS_PER_CHART


def _assignments_sheet(wb: Workbook, school: _School) -> None:
    sheet = SheetBuffer(add_sheet(wb, ASSIGNMENTS_SHEET))
    columns = school.columns
    classrooms = {c.id: c for c in school.classrooms}
    sheet.add(["布置日期", "班级", "任课教师", "作文题目", "评分标准", "作文数", "已评作文", "评分失败",
               *columns.header()], HEADER)
    for a in school.assignments:
        group = school.group(a.id)
        classroom = classrooms.get(a.classroom_id)
        essays = sum(school.statuses.get(a.id, {}).values())
        sheet.add(
            [_local(a.created_at, school.zone).strftime("%Y-%m-%d"), classroom.name if classroom else "",
             classroom.teacher_name if classroom else "", a.title, school.views[a.id].name, essays,
             group.total.count, school.status_count([a.id], "failed"), *columns.values(group)],
            styles=columns.styles(8),
        )
    sheet.write()


def _errors_sheet(wb: Workbook, school: _School) -> None:
    ws = add_sheet(wb, ERRORS_SHEET)
    sheet = SheetBuffer(ws)
    ordered: dict[str, int] = {}
    for view in dict.fromkeys(school.views.values()):
        for error_type in view.error_types:
            ordered.setdefault(error_type, 0)
    for counts in school.errors.values():
        for error_type, count in counts.items():
            ordered[error_type] = ordered.get(error_type, 0) + count
    types = list(ordered)
    graded = merged(school.by_assignment.values()).total.count
    header = sheet.add(["错误类型", "全校次数", "篇均次数"], HEADER)
    for error_type in types:
        sheet.add([error_type, ordered[error_type], share(ordered[error_type], graded)], styles={2: DECIMAL})
    types_last = sheet.last_row
    sheet.blank()
    sheet.add(["班级", "任课教师", "已评作文", *types, "合计", "篇均错误"], HEADER)
    for classroom in school.classrooms:
        counts = school.errors.get(classroom.id, {})
        essays = school.class_group(classroom.id).total.count
        total = sum(counts.values())
        sheet.add([classroom.name, classroom.teacher_name, essays, *[counts.get(t, 0) for t in types], total,
                   share(total, essays)], styles={4 + len(types): DECIMAL})
    last = sheet.last_row
    sheet.write()
    if types:
        chart = add_series(bar_chart("全校错误类型分布", "次数", y_format="0"), ws, 2, header, types_last)
        page_break_before(ws, last + 3)
        ws.add_chart(chart, f"B{last + 3}")


def build_school_workbook(session: Session, school_id: int, path: Path, *, zone: tzinfo | None = None) -> Path:
    """Write the school workbook to ``path`` (atomically) and return the path; times in ``zone`` (default
    Asia/Shanghai: YUEJUAN_TIMEZONE through the report task)."""
    school = _load(session, school_id)
    school.zone = zone or people_zone()
    wb = Workbook(write_only=True)
    _summary_sheet(wb, school)
    _classes_sheet(wb, school)
    _teachers_sheet(wb, school)
    _trend_sheet(wb, school)
    _assignments_sheet(wb, school)
    _errors_sheet(wb, school)
    add_agreement_sheet(wb, session, [a.id for a in school.assignments], school_id, per_essay=False,
                        zone=school.zone)
    save_atomically(wb, path)
    logger.info("school workbook for school %s: %s classes, %s assignments -> %s", school_id,
                len(school.classrooms), len(school.assignments), path)
    return path
