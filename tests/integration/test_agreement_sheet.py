"""The 评分一致性 sheet of the class and school workbooks recomputes from the stored 双评 readings."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from sqlalchemy.orm import Session, sessionmaker

from services.worker.reports.agreement_sheet import AGREEMENT_SHEET
from services.worker.reports.class_workbook import build_class_workbook
from services.worker.reports.school_workbook import build_school_workbook
from shared.models import GradeSource, transaction
from shared.rater_agreement import mean_bias, quadratic_weighted_kappa
from tests.factories import add_grade, make_class
from tests.integration.test_reports import rows_after

# (model dimensions, teacher's second reading dimensions or None, arbitrated)
READINGS = [((15, 14, 10), (16, 15, 10), False), ((15, 14, 10), (20, 20, 20), True), ((8, 8, 8), (8, 7, 8), False),
            ((18, 17, 16), None, False)]


def _row(ws: Any, label: str) -> tuple[Any, ...]:
    for row in ws.iter_rows(values_only=True):
        if row[0] == label:
            return tuple(row)
    raise AssertionError(f"no row {label}")


def test_agreement_sheets_recompute_from_the_readings(pg_sessions: sessionmaker[Session], schools: list[int],
                                                     tmp_path: Path) -> None:
    fixture = make_class(pg_sessions, ["读书" * 300] * len(READINGS), tag=uuid.uuid4().hex[:6])
    schools.append(fixture.school_id)
    last_month = datetime.now(UTC) - timedelta(days=40)
    with transaction(pg_sessions) as session:
        for index, (model, teacher, arbitrated) in enumerate(READINGS):
            essay_id = fixture.essay_ids[index]
            add_grade(session, essay_id, model, created_at=last_month, confidence=0.3 if index == 3 else 0.9)
            if teacher is not None:
                add_grade(session, essay_id, teacher, version=2, source=GradeSource.teacher, reading="second",
                          mark_graded=False, created_by=fixture.teacher_id,
                          created_at=last_month if index == 0 else None)
            if arbitrated:
                add_grade(session, essay_id, (18, 18, 18), version=3, source=GradeSource.teacher, reading="third",
                          mark_graded=False)
    with pg_sessions() as session:
        class_path = build_class_workbook(session, fixture.assignment_id, tmp_path / "class.xlsx")
        school_path = build_school_workbook(session, fixture.school_id, tmp_path / "school.xlsx")
    ws = load_workbook(class_path)[AGREEMENT_SHEET]
    pairs = rows_after(ws, ["作文编号", "学生", "模型一评", "教师二评"])
    assert [(p[2], p[3]) for p in pairs] == [(39, 41), (39, 60), (24, 23)]
    model, teacher = [p[2] for p in pairs], [p[3] for p in pairs]
    assert [p[6] for p in pairs] == ["是", "否", "是"] and [p[7] for p in pairs] == ["否", "是", "否"]
    overall = _row(ws, "全部")
    assert overall[1] == 3 and overall[5:7] == (3, 1)
    assert overall[2] == quadratic_weighted_kappa(teacher, model, low=0, high=60)
    assert overall[3] == mean_bias(teacher, model) == (-2 - 21 + 1) / 3
    assert overall[4] == 2 / 3
    low = rows_after(ws, ["作文编号", "学生", "模型总分", "置信度"])
    assert [(row[0], row[2], row[3]) for row in low] == [(fixture.essay_ids[3], 51, 0.3)]
    months = rows_after(ws, ["按月份"])
    assert [(m[1], m[5]) for m in months] == [(1, 1), (2, 2)]  # one second reading last month, two this month

    school = load_workbook(school_path)[AGREEMENT_SHEET]
    assert _row(school, "全部")[1:7] == overall[1:7]
    assert [row[1] for row in rows_after(school, ["按作业"])] == [3]


def test_months_are_counted_in_the_zone_people_read(pg_sessions: sessionmaker[Session], schools: list[int]) -> None:
    """A second reading at 20:00 UTC on 31 January is on 1 February in Beijing: its month is 2026-02 there."""
    from zoneinfo import ZoneInfo

    from shared.agreement_report import pairs_for

    fixture = make_class(pg_sessions, ["读书" * 300], tag=uuid.uuid4().hex[:6])
    schools.append(fixture.school_id)
    evening = datetime(2026, 1, 31, 20, 0, tzinfo=UTC)
    with transaction(pg_sessions) as session:
        add_grade(session, fixture.essay_ids[0], (15, 14, 10), created_at=evening - timedelta(hours=1))
        add_grade(session, fixture.essay_ids[0], (16, 15, 10), version=2, source=GradeSource.teacher,
                  reading="second", mark_graded=False, created_by=fixture.teacher_id, created_at=evening)
    with pg_sessions() as session:
        (beijing,) = pairs_for(session, [fixture.assignment_id])
        (utc,) = pairs_for(session, [fixture.assignment_id], ZoneInfo("UTC"))
    assert (beijing.month, utc.month) == ("2026-02", "2026-01")
