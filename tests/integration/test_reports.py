"""Class and school workbooks on PostgreSQL, checked against figures recomputed here; report jobs and tasks."""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from services.web.state import app_state
from services.worker import completion, runtime
from services.worker.completion import on_assignment_complete, on_essays_finished
from services.worker.plans.tasks import register_plan_tasks
from services.worker.reports.class_workbook import PLANS_PENDING, build_class_workbook
from services.worker.reports.school_workbook import build_school_workbook
from services.worker.reports.tasks import register_report_tasks, run_report_job
from shared import report_jobs
from shared.celery_app import make_celery
from shared.failures import BROKER_UNAVAILABLE
from shared.models import (
    Assignment,
    AuditLog,
    Essay,
    EssayStatus,
    GradeSource,
    JobStatus,
    ReportJob,
    transaction,
)
from shared.settings import Settings
from shared.tasks import CLASS_WORKBOOK_TASK, SCHOOL_WORKBOOK_TASK, TRAINING_PLANS_TASK, ReportKind
from tests.factories import (
    ClassFixture,
    RecordingSender,
    add_assignment,
    add_classroom,
    add_essay,
    add_grade,
    add_student,
    add_students,
    add_training_plan,
    add_user,
    make_class,
    make_report_job,
)

CLASS_REPORT, SCHOOL_REPORT = ReportKind.class_workbook, ReportKind.school_workbook
HOSTILE_NAME, HOSTILE_CMD = "=SUM(A1)", "+cmd|' /C calc'!A0"


# --- helpers ---------------------------------------------------------------------------------------------


def rows_after(ws: Any, header: Sequence[str]) -> list[tuple[Any, ...]]:
    """The rows under the first row that starts with ``header``, up to the next empty first cell."""
    rows = list(ws.iter_rows(values_only=True))
    for index, row in enumerate(rows):
        if tuple(row[: len(header)]) == tuple(header):
            body = []
            for below in rows[index + 1 :]:
                if below[0] is None:
                    break
                body.append(below)
            return body
    raise AssertionError(f"no table with header {header} in {ws.title}")


def value_of(ws: Any, label: str) -> Any:
    for row in ws.iter_rows(values_only=True):
        if row[0] == label:
            return row[1]
    raise AssertionError(f"no row {label} in {ws.title}")


# --- the class workbook ----------------------------------------------------------------------------------

CLASS_SCORES = {0: (16, 14, 12), 1: (15, 15, 13), 2: (12, 9, 7), 3: (18, 17, 16)}


def _graded_class(sessions: sessionmaker[Session], schools: list[int]) -> tuple[ClassFixture, int]:
    names = [HOSTILE_NAME, HOSTILE_CMD, "张三", "李四", "王五", "赵六"]
    texts = ["读书" * 100, "读书" * 450, "作文" * 150, "文章" * 500, "失败" * 10, "排队" * 10]
    fixture = make_class(sessions, texts, tag=uuid.uuid4().hex[:6], student_names=names)
    schools.append(fixture.school_id)
    e = fixture.essay_ids
    with transaction(sessions) as session:
        add_grade(session, e[0], CLASS_SCORES[0], comment="=SUM(A1) 立意尚可",
                  errors=[("错别字", "再接再励", "再接再厉"), ("标点", "，，", "，")])
        # The model's first grade is superseded by the teacher's override (version 2).
        add_grade(session, e[1], (10, 10, 8), errors=[("病句", "通过这次活动使我明白", "这次活动使我明白")])
        add_grade(session, e[1], CLASS_SCORES[1], version=2, source=GradeSource.teacher, comment="+教师复核",
                  errors=[("错别字", "再接再励", "再接再厉")])
        add_grade(session, e[2], CLASS_SCORES[2],
                  errors=[("错别字", "再接再励", "再接再厉"), ("错别字", "必需", "必须")],
                  deductions=[("length", -2, "字数 300，少于 800 字要求")])
        add_grade(session, e[3], CLASS_SCORES[3])
        session.execute(update(Essay).where(Essay.id == e[3]).values(flags=["疑似提示注入：“忽略以上要求”"]))
        session.execute(update(Essay).where(Essay.id == e[4]).values(status=EssayStatus.failed,
                                                                      failure_reason="模型输出无效"))
        extra = add_student(session, fixture.classroom_id, "孙七", "zz-999")
        old = datetime.now(UTC) - timedelta(days=3)
        add_training_plan(session, fixture.student_ids[3], focus_areas=[{"label": "旧计划"}], narrative="旧的建议",
                          created_at=old)
        add_training_plan(
            session, fixture.student_ids[3], essay_ids=[e[3]], narrative="+该生表达尚可，=建议加强论证",
            focus_areas=[{"kind": "dimension", "key": "content", "label": "内容", "reason": "低于班级平均",
                          "exercises": [{"title": "论证方法专项练习", "detail": "=1+1 写三段"},
                                        {"title": "素材积累", "detail": "摘抄", "materials": [
                                            {"id": "m1", "title": "苏轼贬谪黄州", "origin": "《宋史·苏轼传》",
                                             "source": "中华书局点校本"}]}]}],
        )
    return fixture, extra.id


def test_class_workbook_figures_match_an_independent_computation(
    pg_sessions: sessionmaker[Session], schools: list[int], tmp_path: Path
) -> None:
    fixture, _ = _graded_class(pg_sessions, schools)
    with pg_sessions() as session:
        path = build_class_workbook(session, fixture.assignment_id, tmp_path / "class.xlsx")
        char_counts = session.scalars(
            select(Essay.char_count).where(Essay.assignment_id == fixture.assignment_id)
        ).all()
    wb = load_workbook(path)
    assert wb.sheetnames == ["概览", "学生", "错误", "训练计划", "评分一致性"]
    assert all(len(name) <= 31 for name in wb.sheetnames)

    summary = wb["概览"]
    assert value_of(summary, "作文数") == 6
    assert value_of(summary, "已评分") == 4
    assert value_of(summary, "评分失败") == 1
    assert value_of(summary, "待评分") == 1
    assert value_of(summary, "未提交") == 1
    assert value_of(summary, "被标记作文（需复核）") == 1
    short = sum(1 for c in char_counts if c < 800) / len(char_counts)
    assert value_of(summary, "字数不足 800 字的比例") == pytest.approx(short)
    table = {row[0]: row for row in rows_after(summary, ["维度", "满分", "平均分"])}
    for index, name in enumerate(["内容", "表达", "发展等级"]):
        scores = [CLASS_SCORES[s][index] for s in CLASS_SCORES]
        _, top, mean, median, std, low, high, rate = table[name]
        assert top == 20
        assert mean == pytest.approx(statistics.fmean(scores))
        assert median == pytest.approx(statistics.median(scores))
        assert std == pytest.approx(statistics.pstdev(scores))
        assert (low, high) == (min(scores), max(scores))
        assert rate == pytest.approx(statistics.fmean(scores) / 20)
    totals = [42, 43, 26, 51]  # 16+14+12, the teacher's 15+15+13, 12+9+7-2, 18+17+16
    assert table["总分"][2] == pytest.approx(statistics.fmean(totals))
    assert table["总分"][3] == pytest.approx(statistics.median(totals))
    bands = {(row[0], row[1]): row[3] for row in rows_after(summary, ["维度", "分档", "分数范围"])}
    assert (bands[("总分", "一等")], bands[("总分", "二等")], bands[("总分", "三等")]) == (1, 2, 1)
    assert bands[("内容", "一等")] == sum(1 for s in CLASS_SCORES.values() if s[0] >= 16)
    bins = {row[0]: row[1] for row in rows_after(summary, ["总分分数段", "人数"])}
    assert sum(bins.values()) == 4 and bins["40–44"] == 2 and bins["25–29"] == 1
    assert len(summary._charts) == 2

    students = wb["学生"]
    header = [c.value for c in students[1]]
    assert header[:6] == ["学号", "姓名", "内容（20）", "表达（20）", "发展等级（20）", "总分（60）"]
    body = {row[1].value: row for row in students.iter_rows(min_row=2)}
    assert set(body) == {HOSTILE_NAME, HOSTILE_CMD, "张三", "李四", "王五", "赵六", "孙七"}
    col = {name: header.index(name) for name in header}
    graded_names = [HOSTILE_NAME, HOSTILE_CMD, "张三", "李四"]
    expected_rank = {name: 1 + sum(o > t for o in totals) for name, t in zip(graded_names, totals, strict=True)}
    for name, rank in expected_rank.items():
        assert body[name][col["班级排名"]].value == rank
    assert body[HOSTILE_CMD][col["总分（60）"]].value == 43  # the teacher's override counts
    assert body["李四"][col["等级"]].value == "一等"
    assert body["张三"][col["扣分"]].value == "字数 300，少于 800 字要求（-2 分）"
    assert body["张三"][col["主要错误"]].value == "错别字×2"
    assert body["王五"][col["状态"]].value == "评分失败：模型输出无效"
    assert body["孙七"][col["状态"]].value == "未提交" and body["孙七"][col["班级排名"]].value is None
    for cell in (body[HOSTILE_NAME][1], body[HOSTILE_CMD][1], body[HOSTILE_NAME][col["评语"]],
                 body[HOSTILE_CMD][col["评语"]]):
        assert cell.data_type == "s" and cell.value.startswith(("=", "+"))
    assert students.freeze_panes == "C2"
    assert students.auto_filter.ref == f"A1:{students.cell(1, len(header)).column_letter}8"
    assert len(students.conditional_formatting) == 4  # three dimensions and the total

    errors = wb["错误"]
    by_type = {row[0]: row for row in rows_after(errors, ["错误类型", "次数"])}
    assert by_type["错别字"][1:3] == (4, 3)
    assert by_type["标点"][1:3] == (1, 1)
    assert by_type["病句"][1] == 0  # only in the superseded model grade
    frequent = rows_after(errors, ["错误类型", "原文（示例）"])
    assert frequent[0][:3] == ("错别字", "再接再励", "再接再厉") and frequent[0][4:6] == (3, 3)
    assert set(frequent[0][6].split("、")) == {HOSTILE_NAME, HOSTILE_CMD, "张三"}
    assert all(row[0] != "病句" for row in frequent)

    plans = wb["训练计划"]
    plan_rows = {row[1].value: row for row in plans.iter_rows(min_row=2)}
    assert plan_rows["李四"][2].value == "内容：低于班级平均"
    assert plan_rows["李四"][6].value == ("1. 论证方法专项练习：=1+1 写三段\n"
                                         "2. 素材积累：摘抄（素材：《苏轼贬谪黄州》，《宋史·苏轼传》；中华书局点校本）")
    narrative = plan_rows["李四"][7]
    assert narrative.value == "+该生表达尚可，=建议加强论证" and narrative.data_type == "s"
    assert plan_rows["张三"][2].value == PLANS_PENDING  # graded, and no plan computed from the essay yet
    assert "暂无" in plan_rows["王五"][2].value  # failed, no plan
    assert "孙七" not in plan_rows

    for ws in wb.worksheets:
        for row in ws.iter_rows():
            assert all(cell.data_type != "f" for cell in row), ws.title


def test_class_workbook_for_a_missing_assignment_raises(pg_sessions: sessionmaker[Session], tmp_path: Path) -> None:
    with pg_sessions() as session, pytest.raises(LookupError):
        build_class_workbook(session, 10**9, tmp_path / "none.xlsx")
    assert not (tmp_path / "none.xlsx").exists()


# --- the school workbook ---------------------------------------------------------------------------------


def _school(sessions: sessionmaker[Session], schools: list[int]) -> dict[str, Any]:
    """Two classes (two teachers) with two assignments each in March and April, plus another school."""
    tag = uuid.uuid4().hex[:6]
    first = make_class(sessions, ["甲", "乙", "丙"], tag=tag)
    other = make_class(sessions, ["外校"], tag=tag + "x")
    schools += [first.school_id, other.school_id]
    march, april = datetime(2025, 3, 10, 4, tzinfo=UTC), datetime(2025, 4, 14, 4, tzinfo=UTC)
    with transaction(sessions) as session:
        session.execute(update(Assignment).where(Assignment.id == first.assignment_id).values(created_at=march))
        teacher = add_user(session, f"t2-{tag}", "=李老师", school_id=first.school_id)
        second_class = add_classroom(session, first.school_id, teacher.id, "=1+1班")
        second_students = add_students(session, second_class.id, [(f"乙{i}", f"b{i}") for i in range(2)])

        def assignment(classroom_id: int, when: datetime, title: str) -> int:
            return add_assignment(session, classroom_id, title=title, prompt_text="题", created_at=when).id

        def essay(assignment_id: int, student_id: int) -> int:
            return add_essay(session, assignment_id, student_id, "正文").id

        first_april = assignment(first.classroom_id, april, "四月作文")
        second_march = assignment(second_class.id, march, "三月作文")
        second_april = assignment(second_class.id, april, "=四月作文")
        e = first.essay_ids
        add_grade(session, e[0], (16, 16, 16), errors=[("错别字", "a", "b"), ("错别字", "c", "d")])
        add_grade(session, e[1], (10, 10, 10), errors=[("标点", "，，", "，")])
        add_grade(session, e[1], (12, 12, 12), version=2, source=GradeSource.teacher)  # override: 36, no errors
        session.execute(update(Essay).where(Essay.id == e[2]).values(status=EssayStatus.failed))
        add_grade(session, essay(first_april, first.student_ids[0]), (18, 18, 18))
        add_grade(session, essay(first_april, first.student_ids[1]), (14, 14, 14), errors=[("病句", "x", "y")])
        add_grade(session, essay(second_march, second_students[0].id), (8, 8, 8))
        add_grade(session, essay(second_march, second_students[1].id), (6, 6, 6), errors=[("错别字", "e", "f")])
        add_grade(session, essay(second_april, second_students[0].id), (20, 20, 20))
        add_grade(session, other.essay_ids[0], (1, 1, 1), errors=[("错别字", "z", "w")])
    return {
        "school_id": first.school_id, "first_class": f"高三{tag}班", "second_class": "=1+1班",
        "first_totals": [48, 36, 54, 42], "second_totals": [24, 18, 60],
    }


def test_school_workbook_compares_classes_teachers_and_the_term(
    pg_sessions: sessionmaker[Session], schools: list[int], tmp_path: Path
) -> None:
    data = _school(pg_sessions, schools)
    with pg_sessions() as session:
        path = build_school_workbook(session, data["school_id"], tmp_path / "school.xlsx")
    wb = load_workbook(path)
    assert wb.sheetnames == ["概览", "班级对比", "教师对比", "学期趋势", "作文明细", "错误统计", "评分一致性"]

    summary = wb["概览"]
    assert value_of(summary, "班级数") == 2
    assert value_of(summary, "任课教师数") == 2
    assert value_of(summary, "作文任务数") == 4
    assert value_of(summary, "已评作文") == 7
    assert value_of(summary, "评分失败") == 1
    every = data["first_totals"] + data["second_totals"]
    overall = {row[0]: row for row in rows_after(summary, ["项目", "均分"])}
    assert overall["总分"][1] == pytest.approx(statistics.fmean(every))
    assert overall["总分"][2] == pytest.approx(statistics.pstdev(every))

    classes = wb["班级对比"]
    header = [c.value for c in classes[1]]
    rows = {row[0]: row for row in rows_after(classes, header[:2])}
    for key, totals in ((data["first_class"], data["first_totals"]), (data["second_class"], data["second_totals"])):
        row = rows[key]
        assert row[header.index("已评作文")] == len(totals)
        assert row[header.index("总分均分")] == pytest.approx(statistics.fmean(totals))
        assert row[header.index("平均得分率")] == pytest.approx(statistics.fmean(t / 60 for t in totals))
        assert row[header.index("内容均分")] == pytest.approx(statistics.fmean(t / 3 for t in totals))
        assert row[header.index("最高分")] == max(totals)
    assert rows[data["second_class"]][header.index("作文任务数")] == 2
    second_name = next(row for row in classes.iter_rows(min_row=2) if row[0].value == data["second_class"])[0]
    assert second_name.data_type == "s"
    assert len(classes._charts) == 1

    teachers = wb["教师对比"]
    t_header = [c.value for c in teachers[1]]
    t_rows = {row[0]: row for row in rows_after(teachers, t_header[:2])}
    assert t_rows["=李老师"][t_header.index("总分均分")] == pytest.approx(statistics.fmean(data["second_totals"]))
    assert t_rows["王老师"][t_header.index("已评作文")] == 4
    assert len(teachers._charts) == 1

    trend = wb["学期趋势"]
    months = {row[0]: row for row in rows_after(trend, ["月份", "作文任务数"])}
    march, april = [48, 36, 24, 18], [54, 42, 60]
    assert months["2025-03"][1:3] == (2, 4) and months["2025-04"][1:3] == (2, 3)
    m_header = [c.value for c in trend[1]]
    assert months["2025-03"][m_header.index("总分均分")] == pytest.approx(statistics.fmean(march))
    assert months["2025-04"][m_header.index("总分均分")] == pytest.approx(statistics.fmean(april))
    ordinals = {row[0]: row for row in rows_after(trend, ["各班第几次作文", "班级数"])}
    assert ordinals["第 1 次"][1:3] == (2, 4) and ordinals["第 2 次"][1:3] == (2, 3)
    assert len(trend._charts) == 2

    detail = rows_after(wb["作文明细"], ["布置日期", "班级"])
    assert [row[0] for row in detail] == sorted(row[0] for row in detail)
    assert len(detail) == 4 and "=四月作文" in [row[3] for row in detail]

    errors = wb["错误统计"]
    school_wide = {row[0]: row[1] for row in rows_after(errors, ["错误类型", "全校次数"])}
    assert school_wide["错别字"] == 3 and school_wide["病句"] == 1 and school_wide["标点"] == 0
    e_header = next(row for row in errors.iter_rows(values_only=True) if row[0] == "班级")
    per_class = {row[0]: row for row in rows_after(errors, ["班级", "任课教师"])}
    assert per_class[data["first_class"]][e_header.index("错别字")] == 2
    assert per_class[data["second_class"]][e_header.index("合计")] == 1
    assert len(errors._charts) == 1

    for ws in wb.worksheets:
        for row in ws.iter_rows():
            assert all(cell.data_type != "f" for cell in row), ws.title


# --- jobs, tasks and completion --------------------------------------------------------------------------


def test_report_job_runs_once_and_records_its_file(
    pg_sessions: sessionmaker[Session], schools: list[int], tmp_path: Path
) -> None:
    fixture, _ = _graded_class(pg_sessions, schools)
    job_id = make_report_job(pg_sessions, CLASS_REPORT, assignment_id=fixture.assignment_id,
                             school_id=fixture.school_id)
    path = run_report_job(pg_sessions, tmp_path, job_id, CLASS_REPORT)
    assert path is not None and Path(path).is_file()
    with pg_sessions() as session:
        job = session.get(ReportJob, job_id)
        assert (job.status, job.file_path, job.error) == (JobStatus.done, path, None)
        assert job.finished_at is not None
        audited = session.scalars(select(AuditLog).where(AuditLog.action == "report.built",
                                                         AuditLog.object_id == job_id)).all()
        assert len(audited) == 1
    modified = Path(path).stat().st_mtime_ns
    assert run_report_job(pg_sessions, tmp_path, job_id, CLASS_REPORT) == path  # done: not rebuilt
    assert Path(path).stat().st_mtime_ns == modified

    school_job = make_report_job(pg_sessions, SCHOOL_REPORT, school_id=fixture.school_id)
    school_path = run_report_job(pg_sessions, tmp_path, school_job, SCHOOL_REPORT)
    assert school_path is not None and load_workbook(school_path).sheetnames[0] == "概览"


def test_a_failing_report_job_records_the_error_and_re_raises(
    pg_sessions: sessionmaker[Session], schools: list[int], tmp_path: Path
) -> None:
    fixture, _ = _graded_class(pg_sessions, schools)
    job_id = make_report_job(pg_sessions, CLASS_REPORT, school_id=fixture.school_id)  # no assignment
    with pytest.raises(ValueError, match="assignment_id"):
        run_report_job(pg_sessions, tmp_path, job_id, CLASS_REPORT)
    with pg_sessions() as session:
        job = session.get(ReportJob, job_id)
        assert job.status == JobStatus.failed and "assignment_id" in job.error and job.file_path is None
    wrong_kind = make_report_job(pg_sessions, SCHOOL_REPORT, school_id=fixture.school_id)
    with pytest.raises(ValueError):
        run_report_job(pg_sessions, tmp_path, wrong_kind, CLASS_REPORT)
    assert run_report_job(pg_sessions, tmp_path, 10**9) is None


def test_registered_tasks_route_by_name_and_build_through_the_runtime(
    pg_url: str, pg_sessions: sessionmaker[Session], schools: list[int], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(database_url=pg_url, broker_url="memory://", data_dir=tmp_path)
    app = make_celery(settings)
    register_plan_tasks(app)
    register_report_tasks(app)
    assert TRAINING_PLANS_TASK in app.tasks
    routes = {name: app.amqp.router.route({}, name)["queue"].name
              for name in (CLASS_WORKBOOK_TASK, SCHOOL_WORKBOOK_TASK, TRAINING_PLANS_TASK)}
    assert routes == {CLASS_WORKBOOK_TASK: "reports", SCHOOL_WORKBOOK_TASK: "reports", TRAINING_PLANS_TASK: "gpu"}

    monkeypatch.setattr(runtime, "_state", runtime._State())
    runtime.configure(settings, worker_id="test-reports", queues=["reports"], load_model=False)
    fixture, _ = _graded_class(pg_sessions, schools)
    job_id = make_report_job(pg_sessions, SCHOOL_REPORT, school_id=fixture.school_id)
    try:
        result = app.tasks[SCHOOL_WORKBOOK_TASK].apply(args=[job_id])
        assert result.successful(), result.traceback
        assert Path(result.get()).parent == (tmp_path / "reports").resolve()
        failing = make_report_job(pg_sessions, CLASS_REPORT, school_id=fixture.school_id)
        assert app.tasks[CLASS_WORKBOOK_TASK].apply(args=[failing]).failed()
    finally:
        runtime.sessions().kw["bind"].dispose()
    with pg_sessions() as session:
        assert session.get(ReportJob, job_id).status == JobStatus.done
        assert session.get(ReportJob, failing).status == JobStatus.failed


def test_completion_creates_one_class_job_and_sends_training_plans_and_the_workbook(
    pg_sessions: sessionmaker[Session], schools: list[int]
) -> None:
    fixture, _ = _graded_class(pg_sessions, schools)
    sender = RecordingSender()
    assignment_id = fixture.assignment_id
    assert on_assignment_complete(sender, pg_sessions, assignment_id) is None  # 赵六's essay is still queued
    assert on_essays_finished(sender, pg_sessions, fixture.essay_ids[:2]) == []
    assert sender.sent == []
    with transaction(pg_sessions) as session:
        session.execute(update(Essay).where(Essay.id == fixture.essay_ids[5]).values(status=EssayStatus.failed))

    job_id = on_assignment_complete(sender, pg_sessions, assignment_id)
    # The workbook is sent now, beside the plans, not by the plans task when it is done.
    assert job_id is not None
    assert sender.sent == [(TRAINING_PLANS_TASK, [assignment_id]), (CLASS_WORKBOOK_TASK, [job_id])]
    assert on_assignment_complete(sender, pg_sessions, assignment_id) is None  # queued job exists
    assert on_essays_finished(sender, pg_sessions, fixture.essay_ids) == []
    with transaction(pg_sessions) as session:
        session.execute(update(ReportJob).where(ReportJob.id == job_id).values(status=JobStatus.done))
    assert on_assignment_complete(sender, pg_sessions, assignment_id) is None  # done and up to date
    assert len(sender.sent) == 2
    with pg_sessions() as session:
        job = session.get(ReportJob, job_id)
        assert (job.kind, job.classroom_id, job.school_id) == (CLASS_REPORT, fixture.classroom_id, fixture.school_id)

    # A later grade change (a regrade) makes the finished report stale: a new job is created.
    with transaction(pg_sessions) as session:
        add_grade(session, fixture.essay_ids[3], (10, 10, 10), version=2, source=GradeSource.teacher,
                  created_at=datetime.now(UTC) + timedelta(seconds=1))
    newer = on_assignment_complete(sender, pg_sessions, assignment_id)
    assert newer is not None and newer != job_id
    assert sender.sent[2:] == [(TRAINING_PLANS_TASK, [assignment_id]), (CLASS_WORKBOOK_TASK, [newer])]


def test_a_task_spanning_two_assignments_reports_only_the_finished_one(
    pg_sessions: sessionmaker[Session], schools: list[int]
) -> None:
    done = make_class(pg_sessions, ["甲。", "乙。"], tag=uuid.uuid4().hex[:6])
    waiting = make_class(pg_sessions, ["丙。", "丁。"], tag=uuid.uuid4().hex[:6])
    schools.extend([done.school_id, waiting.school_id])
    with transaction(pg_sessions) as session:
        session.execute(update(Essay).where(Essay.id.in_(done.essay_ids)).values(status=EssayStatus.graded))
        session.execute(update(Essay).where(Essay.id == waiting.essay_ids[0]).values(status=EssayStatus.failed))
    sender = RecordingSender()
    task_essays = [done.essay_ids[1], waiting.essay_ids[0]]
    created = on_essays_finished(sender, pg_sessions, task_essays)
    assert created and sender.sent == [(TRAINING_PLANS_TASK, [done.assignment_id]), (CLASS_WORKBOOK_TASK, created)]
    with pg_sessions() as session:
        assert session.get(ReportJob, created[0]).assignment_id == done.assignment_id
    # The other assignment's last essay finishes in a later task: now it gets its report.
    with transaction(pg_sessions) as session:
        session.execute(update(Essay).where(Essay.id == waiting.essay_ids[1]).values(status=EssayStatus.graded))
    later = on_essays_finished(sender, pg_sessions, [waiting.essay_ids[1]])
    assert len(later) == 1
    assert sender.sent[2:] == [(TRAINING_PLANS_TASK, [waiting.assignment_id]), (CLASS_WORKBOOK_TASK, later)]


class FailingOn(RecordingSender):
    """A broker that goes away just before the named task is sent."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def send_task(self, name: str, args: Sequence[Any] = (), **options: object) -> None:
        if name == self.name:
            raise ConnectionError("broker down")
        super().send_task(name, args, **options)


@pytest.mark.parametrize("lost", [TRAINING_PLANS_TASK, CLASS_WORKBOOK_TASK])
def test_completion_send_failure_leaves_no_live_job_behind(
    pg_sessions: sessionmaker[Session], schools: list[int], lost: str
) -> None:
    fixture, _ = _graded_class(pg_sessions, schools)
    with transaction(pg_sessions) as session:
        session.execute(update(Essay).where(Essay.id == fixture.essay_ids[5]).values(status=EssayStatus.failed))
    with pytest.raises(ConnectionError):
        on_assignment_complete(FailingOn(lost), pg_sessions, fixture.assignment_id)
    with pg_sessions() as session:
        jobs = session.scalars(select(ReportJob).where(ReportJob.assignment_id == fixture.assignment_id)).all()
        assert [job.status for job in jobs] == [JobStatus.failed]
        error = report_jobs.parse_error(jobs[0].error)
        assert error is not None and error.category == BROKER_UNAVAILABLE and lost in error.detail
    # The next attempt (the grading task's retry) sends both again.
    sender = RecordingSender()
    job_id = on_assignment_complete(sender, pg_sessions, fixture.assignment_id)
    assert job_id is not None
    assert sender.sent == [(TRAINING_PLANS_TASK, [fixture.assignment_id]), (CLASS_WORKBOOK_TASK, [job_id])]


def test_class_report_jobs_are_made_by_one_function_on_the_web_and_at_completion(
    pg_url: str, redis_url: str, pg_sessions: sessionmaker[Session], schools: list[int], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.web.views import reports as web_reports
    from tests.factories.world import build_world, destroy_world
    from tests.web.conftest import client_as, form, make_app

    assert web_reports.create_class_job is report_jobs.create_class_job is completion.create_class_job
    made: list[tuple[Any, ...]] = []

    def spy(session: Session, assignment_id: int, **options: Any) -> ReportJob | None:
        job = report_jobs.create_class_job(session, assignment_id, **options)
        assert job is not None
        made.append((job.kind, job.school_id, job.classroom_id, job.assignment_id, job.requested_by, job.status))
        return job

    monkeypatch.setattr(web_reports, "create_class_job", spy)
    monkeypatch.setattr(completion, "create_class_job", spy)
    app = make_app(pg_url, redis_url, tmp_path)
    sessions = app_state(app).sessions
    world = build_world(sessions, "not-a-login-test", tmp_path)
    try:
        owner = world.users["owner"]
        response = client_as(app, owner).post(f"/assignments/{world.assignment}/report", data=form())
        assert response.status_code == 303
        fixture, _ = _graded_class(pg_sessions, schools)
        with transaction(pg_sessions) as session:
            session.execute(update(Essay).where(Essay.id == fixture.essay_ids[5]).values(status=EssayStatus.failed))
        assert on_assignment_complete(RecordingSender(), pg_sessions, fixture.assignment_id) is not None
    finally:
        destroy_world(sessions, world)
        app_state(app).engine.dispose()
    assert made == [
        (CLASS_REPORT, world.school_a, world.classroom, world.assignment, owner, JobStatus.queued),
        (CLASS_REPORT, fixture.school_id, fixture.classroom_id, fixture.assignment_id, None, JobStatus.queued),
    ]
