"""One time zone for people (YUEJUAN_TIMEZONE, default Asia/Shanghai): workbooks write times in it whatever zone the
server runs in, and the same stored moment reads the same from SQLite (naive UTC) and PostgreSQL (aware)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from openpyxl import load_workbook
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from services.worker.reports.class_workbook import PLANS_SHEET, SUMMARY_SHEET, build_class_workbook
from services.worker.reports.school_workbook import ASSIGNMENTS_SHEET, build_school_workbook
from shared.clock import iso, local_text, now_in, people_zone, wall_time
from shared.models import Assignment, transaction
from tests.factories import add_training_plan, make_class

STORED = datetime(2026, 3, 1, 20, 30, 5, tzinfo=UTC)  # 2026-03-02 04:30:05 in Beijing
NEW_YORK = ZoneInfo("America/New_York")


def test_a_stored_moment_reads_the_same_from_either_database() -> None:
    shanghai = people_zone()
    naive = STORED.replace(tzinfo=None)  # how SQLite returns it
    assert iso(STORED, shanghai) == iso(naive, shanghai) == "2026-03-02T04:30:05+08:00"
    assert local_text(naive, shanghai) == "2026-03-02 04:30:05"
    assert wall_time(STORED, NEW_YORK) == datetime(2026, 3, 1, 15, 30, 5)
    assert iso(STORED, ZoneInfo("UTC")) == "2026-03-01T20:30:05+00:00"
    assert iso(None, shanghai) is None and local_text(None, shanghai) == ""


def _generated(path: Path, zone: ZoneInfo, before: datetime) -> None:
    after = now_in(zone).replace(second=0, microsecond=0, tzinfo=None)
    rows = {row[0]: row[1] for row in load_workbook(path, read_only=True)[SUMMARY_SHEET].iter_rows(values_only=True)
            if row and row[0]}
    written = datetime.strptime(rows["生成时间"], "%Y-%m-%d %H:%M")
    assert before <= written <= after


def test_workbooks_write_times_in_the_configured_zone(
    pg_sessions: sessionmaker[Session], schools: list[int], tmp_path: Path
) -> None:
    fixture = make_class(pg_sessions, ["甲。"], tag=uuid.uuid4().hex[:6])
    schools.append(fixture.school_id)
    with transaction(pg_sessions) as session:
        add_training_plan(session, fixture.student_ids[0], focus_areas=[], narrative="多读多写。", created_at=STORED)
        session.execute(update(Assignment).where(Assignment.id == fixture.assignment_id).values(created_at=STORED))
    for zone, plan_time, day in ((people_zone(), datetime(2026, 3, 2, 4, 30, 5), "2026-03-02"),
                                 (NEW_YORK, datetime(2026, 3, 1, 15, 30, 5), "2026-03-01")):
        before = now_in(zone).replace(second=0, microsecond=0, tzinfo=None)
        with pg_sessions() as session:
            class_path = build_class_workbook(session, fixture.assignment_id, tmp_path / f"class-{day}.xlsx",
                                              zone=zone)
            school_path = build_school_workbook(session, fixture.school_id, tmp_path / f"school-{day}.xlsx",
                                                zone=zone)
        plans = list(load_workbook(class_path, read_only=True)[PLANS_SHEET].iter_rows(values_only=True))
        assert plans[0][-1] == "生成时间" and plans[1][-1] == plan_time
        _generated(class_path, zone, before)
        assignments = list(load_workbook(school_path, read_only=True)[ASSIGNMENTS_SHEET].iter_rows(values_only=True))
        assert assignments[0][0] == "布置日期" and assignments[1][0] == day
