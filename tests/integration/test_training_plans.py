"""Personalised training plans from constructed graded histories; narratives through the real engine."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from services.worker.completion import on_assignment_complete
from services.worker.engine import EngineConfig
from services.worker.engine.transformers_engine import TransformersEngine
from services.worker.plans.draft import build_plan, build_plans_for_assignment
from services.worker.plans.narrative import (
    NARRATIVE_MAX_CHARS,
    NARRATIVE_SCHEMA,
    narrative_messages,
    plain_narrative,
    write_narratives,
)
from services.worker.plans.tasks import WrittenWithoutModel, generate_plans_for_assignment, run_training_plans
from services.worker.reports.class_workbook import PLANS_PENDING, PLANS_SHEET
from services.worker.reports.excel import LINE_HEIGHT_PT, wrapped_lines
from services.worker.reports.tasks import run_report_job
from shared.models import (
    Assignment,
    Essay,
    EssayStatus,
    GradeSource,
    JobStatus,
    ReportJob,
    TrainingPlan,
    transaction,
)
from shared.report_jobs import create_class_job
from shared.tasks import CLASS_WORKBOOK_TASK, TRAINING_PLANS_TASK, ReportKind
from tests.factories import RecordingSender, add_assignment, add_essays, add_grade, add_student, make_class

SCHOOL_RUBRIC = str(Path(__file__).resolve().parents[1] / "data" / "rubrics" / "school-simple.yaml")


@dataclass
class History:
    classroom_id: int
    student_ids: list[int]
    assignment_ids: list[int]
    essays: list[list[int]]  # [assignment][student]


def make_history(
    sessions: sessionmaker[Session], schools: list[int], names: Sequence[str], assignments: int,
    rubric_id: str = "gaokao-national", rubric_version: str = "2024.1",
) -> History:
    """A class whose students each have a (queued) essay in ``assignments`` assignments a week apart."""
    fixture = make_class(sessions, ["作文"] * len(names), tag=uuid.uuid4().hex[:6], student_names=list(names),
                         rubric_id=rubric_id, rubric_version=rubric_version)
    schools.append(fixture.school_id)
    start = datetime(2025, 3, 1, tzinfo=UTC)
    assignment_ids, essays = [fixture.assignment_id], [fixture.essay_ids]
    with transaction(sessions) as session:
        session.execute(update(Assignment).where(Assignment.id == fixture.assignment_id).values(created_at=start))
        for week in range(1, assignments):
            assignment = add_assignment(session, fixture.classroom_id, title=f"第{week + 1}次作文", prompt_text="题",
                                        rubric_id=rubric_id, rubric_version=rubric_version,
                                        created_at=start + timedelta(weeks=week))
            rows = add_essays(session, assignment.id, [(s, "作文") for s in fixture.student_ids])
            assignment_ids.append(assignment.id)
            essays.append([row.id for row in rows])
    return History(fixture.classroom_id, fixture.student_ids, assignment_ids, essays)


def grade(
    sessions: sessionmaker[Session], essay_id: int, scores: dict[str, int], *,
    errors: Sequence[tuple[str, str, str]] = (), version: int = 1, source: GradeSource = GradeSource.model,
    rubric_id: str = "gaokao-national", rubric_version: str = "2024.1",
) -> None:
    with transaction(sessions) as session:
        add_grade(session, essay_id, scores, errors=errors, version=version, source=source,
                  rubric_id=rubric_id, rubric_version=rubric_version)



def scores(content: int, expression: int, development: int) -> dict[str, int]:
    return {"content": content, "expression": expression, "development": development}


@dataclass
class FakeGeneration:
    text: str
    error: str | None = None


class FakeEngine:
    """Answers every conversation the same way; records what it was asked."""

    def __init__(self, text: str = '{"narrative": "该生应加强表达训练。"}', error: str | None = None,
                 fail: bool = False) -> None:
        self.text, self.error, self.fail = text, error, fail
        self.calls: list[list[Any]] = []

    def generate_json(self, conversations: Sequence[Any], schema: dict[str, Any]) -> list[FakeGeneration]:
        if self.fail:
            raise RuntimeError("CUDA error")
        assert schema == NARRATIVE_SCHEMA
        self.calls.append(list(conversations))
        return [FakeGeneration(self.text, self.error) for _ in conversations]

    def describe(self) -> dict[str, Any]:
        return {"model": "fake-model"}


# --- the plan ------------------------------------------------------------------------------------------


def test_the_weakest_dimension_relative_to_the_class_comes_first(
    pg_sessions: sessionmaker[Session], schools: list[int]
) -> None:
    history = make_history(pg_sessions, schools, ["目标", "同学甲", "同学乙", "同学丙"], assignments=2)
    for a in range(2):
        grade(pg_sessions, history.essays[a][0], scores(18, 8, 12))  # strong content, weak expression
        for s in (1, 2, 3):
            grade(pg_sessions, history.essays[a][s], scores(12, 15, 12))
    with pg_sessions() as session:
        draft = build_plan(session, history.student_ids[0])
    assert draft is not None
    assert [s.key for s in draft.standings] == ["expression", "development", "content"]
    expression = draft.standings[0]
    class_mean = (8 + 15 * 3) / 4 / 20
    assert expression.student_rate == pytest.approx(8 / 20)
    assert expression.gap == pytest.approx(8 / 20 - class_mean)
    assert expression.z < 0
    first = draft.focus_areas[0]
    assert (first.kind, first.key, first.label) == ("dimension", "expression", "表达")
    assert [e.title for e in first.exercises] == ["结构提纲训练", "修辞手法运用练习"]
    assert all(area.key != "content" for area in draft.focus_areas)
    assert draft.trend is not None and draft.trend.slope == pytest.approx(0.0)
    assert draft.essay_ids == tuple(history.essays[a][0] for a in range(2))


def test_weakness_is_measured_against_each_dimension_maximum(
    pg_sessions: sessionmaker[Session], schools: list[int]
) -> None:
    # school-simple: 立意与内容 out of 30, 语言与结构 out of 20.
    history = make_history(pg_sessions, schools, ["目标", "同学"], assignments=1, rubric_id=SCHOOL_RUBRIC,
                           rubric_version="2025.2")
    kwargs = {"rubric_id": SCHOOL_RUBRIC, "rubric_version": "2025.2"}
    # Raw gaps: ideas 6 points, language 5 points; as shares of the maximum: ideas 0.2/2, language 0.25/2.
    grade(pg_sessions, history.essays[0][0], {"ideas": 20, "language": 10}, **kwargs)
    grade(pg_sessions, history.essays[0][1], {"ideas": 26, "language": 15}, **kwargs)
    with pg_sessions() as session:
        draft = build_plan(session, history.student_ids[0])
    assert draft is not None
    assert [s.key for s in draft.standings] == ["language", "ideas"]
    assert draft.standings[0].gap == pytest.approx(10 / 20 - 12.5 / 20)
    assert draft.focus_areas[0].label == "语言与结构"
    # No catalog entry for this school's dimension: the default exercise names it.
    assert draft.focus_areas[0].exercises[0].title == "语言与结构专项练习"


def test_repeated_spelling_errors_give_the_spelling_exercise_with_the_words(
    pg_sessions: sessionmaker[Session], schools: list[int]
) -> None:
    history = make_history(pg_sessions, schools, ["目标", "同学"], assignments=2)
    grade(pg_sessions, history.essays[0][0], scores(14, 14, 12),
          errors=[("错别字", "再接再励", "再接再厉"), ("错别字", "必需", "必须"), ("标点", "，，", "，")])
    grade(pg_sessions, history.essays[1][0], scores(15, 14, 12),
          errors=[("错别字", "再接再励", "再接再厉"), ("病句", "通过这件事使我明白", "这件事使我明白")])
    grade(pg_sessions, history.essays[0][1], scores(14, 14, 12), errors=[("错别字", "以经", "已经")])
    with pg_sessions() as session:
        draft = build_plan(session, history.student_ids[0])
    assert draft is not None
    spelling = next(area for area in draft.focus_areas if area.kind == "error")
    assert spelling.key == "错别字" and spelling.reason == "2 篇作文中共出现 3 处"
    assert spelling.examples == ("再接再励→再接再厉（2 次）", "必需→必须")
    assert spelling.exercises[0].title == "错别字订正清单"
    assert "再接再励→再接再厉（2 次）；必需→必须" in spelling.exercises[0].detail
    assert "以经" not in spelling.exercises[0].detail  # a classmate's mistake
    assert [area.key for area in draft.focus_areas if area.kind == "error"] == ["错别字"]  # 标点, 病句: once each
    stored = draft.focus_json()
    assert stored[-1]["examples"] == ["再接再励→再接再厉（2 次）", "必需→必须"]
    assert stored[-1]["catalog_version"] == draft.catalog_version
    json.dumps(stored, ensure_ascii=False)


def test_one_essay_gives_a_plan_and_no_graded_essay_gives_none(
    pg_sessions: sessionmaker[Session], schools: list[int]
) -> None:
    history = make_history(pg_sessions, schools, ["一篇", "没有", "失败"], assignments=1)
    grade(pg_sessions, history.essays[0][0], scores(12, 9, 10), errors=[("标点", "，，", "，"), ("标点", "。。", "。")])
    with transaction(pg_sessions) as session:
        session.execute(update(Essay).where(Essay.id == history.essays[0][2]).values(status=EssayStatus.failed))
        loner = add_student(session, history.classroom_id, "转学生", "new")
    with pg_sessions() as session:
        single = build_plan(session, history.student_ids[0])
        assert build_plan(session, history.student_ids[1]) is None  # essay still queued
        assert build_plan(session, history.student_ids[2]) is None  # failed, never graded
        assert build_plan(session, loner.id) is None
        assert build_plan(session, 10**9) is None
        drafts = build_plans_for_assignment(session, history.assignment_ids[0])
    assert single is not None and single.essay_ids == (history.essays[0][0],) and single.trend is None
    assert single.focus_areas[0].kind == "dimension"
    punctuation = [area for area in single.focus_areas if area.key == "标点"]
    assert punctuation and punctuation[0].reason == "本篇作文中出现 2 处"
    assert [d.student_id for d in drafts] == [history.student_ids[0]]
    assert "只有一篇作文，暂无成绩趋势。" in narrative_messages(single)[1]["content"]


def test_a_teacher_override_takes_precedence_over_the_model_grade(
    pg_sessions: sessionmaker[Session], schools: list[int]
) -> None:
    history = make_history(pg_sessions, schools, ["目标", "同学"], assignments=1)
    essay = history.essays[0][0]
    grade(pg_sessions, essay, scores(4, 16, 14), errors=[("错别字", "模型", "模形"), ("错别字", "模型", "模形")])
    grade(pg_sessions, essay, scores(16, 6, 14), version=2, source=GradeSource.teacher)
    grade(pg_sessions, history.essays[0][1], scores(12, 12, 12))
    with pg_sessions() as session:
        draft = build_plan(session, history.student_ids[0])
    assert draft is not None
    assert draft.focus_areas[0].key == "expression"
    assert draft.standings[0].student_rate == pytest.approx(6 / 20)
    assert draft.errors == ()  # the superseded grade's errors do not count


# --- narratives and storage ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_engine(tiny_model_dir: Path) -> TransformersEngine:
    return TransformersEngine.load(EngineConfig(model=str(tiny_model_dir), device="cpu", batch_token_budget=200_000))


def test_narratives_come_from_the_real_engine_within_the_limit_and_without_names(
    pg_sessions: sessionmaker[Session], schools: list[int], tiny_engine: TransformersEngine
) -> None:
    names = ["欧阳明月", "司马春风"]
    history = make_history(pg_sessions, schools, names, assignments=2)
    for a in range(2):
        grade(pg_sessions, history.essays[a][0], scores(10 + a, 15, 12), errors=[("错别字", "欧阳明月", "欧阳明玥")])
        grade(pg_sessions, history.essays[a][1], scores(16, 12 - a, 14))
    with pg_sessions() as session:
        drafts = build_plans_for_assignment(session, history.assignment_ids[1])
    assert len(drafts) == 2
    for draft in drafts:
        text = json.dumps(narrative_messages(draft), ensure_ascii=False)
        assert all(name not in text for name in names) and "该生" in text

    narratives = write_narratives(tiny_engine, drafts)
    assert len(narratives) == 2
    assert all(isinstance(n, str) and 1 <= len(n) <= NARRATIVE_MAX_CHARS for n in narratives)

    stored = generate_plans_for_assignment(pg_sessions, tiny_engine, history.assignment_ids[1])
    assert stored == 2
    with pg_sessions() as session:
        plans = session.scalars(
            select(TrainingPlan).where(TrainingPlan.student_id.in_(history.student_ids)).order_by(TrainingPlan.id)
        ).all()
    assert len(plans) == 2
    plain = {draft.student_id: plain_narrative(draft) for draft in drafts}
    for plan in plans:
        # A random-weight model rarely writes a whole sentence: what it wrote is kept only when it is plain text
        # in whole sentences; otherwise the student's plain narrative stands in, and the plan says so.
        assert plan.model_name in (tiny_engine.describe()["model"], None)
        if plan.model_name is None:
            assert plan.narrative == plain[plan.student_id]
        assert 1 <= len(plan.narrative) <= NARRATIVE_MAX_CHARS
        assert plan.narrative[-1] in "。！？!?" and "**" not in plan.narrative
        assert plan.focus_areas and plan.focus_areas[0]["exercises"]
        assert len(plan.essay_ids) == 2


def test_an_unusable_answer_falls_back_to_the_plain_narrative(
    pg_sessions: sessionmaker[Session], schools: list[int]
) -> None:
    history = make_history(pg_sessions, schools, ["目标", "同学"], assignments=1)
    grade(pg_sessions, history.essays[0][0], scores(8, 12, 12))
    grade(pg_sessions, history.essays[0][1], scores(16, 12, 12))
    assert generate_plans_for_assignment(pg_sessions, FakeEngine(text="not json"), history.assignment_ids[0]) == 2
    with pg_sessions() as session:
        plan = session.scalars(select(TrainingPlan).where(TrainingPlan.student_id == history.student_ids[0])).one()
    assert plan.model_name is None
    assert plan.narrative.startswith("该生内容方面相对薄弱") and len(plan.narrative) <= NARRATIVE_MAX_CHARS


def class_jobs(sessions: sessionmaker[Session], assignment_id: int) -> list[int]:
    with sessions() as session:
        return list(session.scalars(
            select(ReportJob.id).where(ReportJob.kind == ReportKind.class_workbook,
                                       ReportJob.assignment_id == assignment_id).order_by(ReportJob.id)
        ))


def plan_cells(path: str | None) -> dict[str, tuple[Any, Any]]:
    """Student name → (first focus cell, narrative cell) of a class workbook's plans sheet."""
    assert path is not None
    rows = load_workbook(path)[PLANS_SHEET].iter_rows(min_row=2, values_only=True)
    return {row[1]: (row[2], row[7] if len(row) > 7 else None) for row in rows}


def test_the_training_plans_task_stores_new_plans_then_refreshes_the_workbook(
    pg_sessions: sessionmaker[Session], schools: list[int]
) -> None:
    history = make_history(pg_sessions, schools, ["目标", "同学"], assignments=1)
    grade(pg_sessions, history.essays[0][0], scores(8, 12, 12))
    grade(pg_sessions, history.essays[0][1], scores(16, 12, 12))
    assignment_id = history.assignment_ids[0]

    sender, engine = RecordingSender(), FakeEngine()
    assert run_training_plans(sender, pg_sessions, engine, assignment_id) == 2
    jobs = class_jobs(pg_sessions, assignment_id)
    assert len(jobs) == 1 and sender.sent == [(CLASS_WORKBOOK_TASK, jobs)]  # no class job yet: one is made
    assert len(engine.calls) == 1 and len(engine.calls[0]) == 2  # one batch for the class
    # Regenerating adds new rows; the newest is the plan in force. The job still queued will read them when it
    # runs: nothing new is created or sent.
    assert run_training_plans(sender, pg_sessions, engine, assignment_id) == 2
    assert class_jobs(pg_sessions, assignment_id) == jobs and len(sender.sent) == 1
    with pg_sessions() as session:
        rows = session.scalars(select(TrainingPlan).where(TrainingPlan.student_id == history.student_ids[0])).all()
    assert len(rows) == 2 and {r.model_name for r in rows} == {"fake-model"}
    assert rows[0].narrative == "该生应加强表达训练。"

    # The model failing: the plans are stored with the plain narrative, the workbook is refreshed, and the
    # failure is raised for Celery to record.
    with transaction(pg_sessions) as session:
        session.execute(update(ReportJob).where(ReportJob.id.in_(jobs)).values(status=JobStatus.done))
    with pytest.raises(WrittenWithoutModel):
        run_training_plans(sender, pg_sessions, FakeEngine(fail=True), assignment_id)
    refreshed = class_jobs(pg_sessions, assignment_id)
    assert len(refreshed) == 2 and sender.sent[-1] == (CLASS_WORKBOOK_TASK, [refreshed[-1]]) and len(sender.sent) == 2
    with pg_sessions() as session:
        newest = session.scalars(select(TrainingPlan).where(TrainingPlan.student_id == history.student_ids[0])
                                 .order_by(TrainingPlan.id.desc())).first()
    assert newest is not None and newest.model_name is None and newest.narrative.startswith("该生")

    # While essays are being graded again nothing is refreshed: their completion brings plans and a workbook.
    with transaction(pg_sessions) as session:
        session.execute(update(ReportJob).where(ReportJob.id.in_(refreshed)).values(status=JobStatus.done))
        session.execute(update(Essay).where(Essay.id == history.essays[0][1]).values(status=EssayStatus.queued))
    assert run_training_plans(sender, pg_sessions, engine, assignment_id) == 2
    assert class_jobs(pg_sessions, assignment_id) == refreshed and len(sender.sent) == 2


def test_the_class_workbook_goes_out_at_completion_and_again_once_the_plans_are_written(
    pg_sessions: sessionmaker[Session], schools: list[int], tmp_path: Path
) -> None:
    history = make_history(pg_sessions, schools, ["目标", "同学"], assignments=1)
    grade(pg_sessions, history.essays[0][0], scores(8, 12, 12))
    grade(pg_sessions, history.essays[0][1], scores(16, 12, 12))
    assignment_id = history.assignment_ids[0]

    sender = RecordingSender()
    first = on_assignment_complete(sender, pg_sessions, assignment_id)
    # Both tasks at completion: the workbook does not wait behind the plans.
    assert first is not None
    assert sender.sent == [(TRAINING_PLANS_TASK, [assignment_id]), (CLASS_WORKBOOK_TASK, [first])]
    # The reports worker builds it before the model is done: the plans sheet says they are coming.
    early = run_report_job(pg_sessions, tmp_path, first, ReportKind.class_workbook)
    assert plan_cells(early) == {"目标": (PLANS_PENDING, None), "同学": (PLANS_PENDING, None)}

    # The plans are written: a new job (a finished one is never rebuilt, so no two builds share a file), sent.
    assert run_training_plans(sender, pg_sessions, FakeEngine(), assignment_id) == 2
    assert len(sender.sent) == 3
    name, (second,) = sender.sent[-1]
    assert name == CLASS_WORKBOOK_TASK and class_jobs(pg_sessions, assignment_id) == [first, second]
    late = run_report_job(pg_sessions, tmp_path, second, ReportKind.class_workbook)
    assert late != early
    cells = plan_cells(late)
    assert cells["目标"][0] is not None and cells["目标"][0] != PLANS_PENDING
    # The fake model answers both students word for word alike: the second gets its own plain narrative.
    narratives = [narrative for _, narrative in cells.values()]
    assert narratives.count("该生应加强表达训练。") == 1
    assert len(set(narratives)) == 2 and all(n.startswith("该生") for n in narratives)
    assert plan_cells(early)["目标"] == (PLANS_PENDING, None)  # the first file is left as it was

    # Both jobs are newer than the grades: completing again creates and sends nothing.
    assert on_assignment_complete(sender, pg_sessions, assignment_id) is None and len(sender.sent) == 3


# --- plans follow each student's own data ----------------------------------------------------------------


def test_two_students_with_different_weaknesses_get_different_plans(
    pg_sessions: sessionmaker[Session], schools: list[int]
) -> None:
    history = make_history(pg_sessions, schools, ["表达弱", "内容弱", "同学甲", "同学乙"], assignments=1)
    essays = history.essays[0]
    grade(pg_sessions, essays[0], scores(18, 6, 14))
    grade(pg_sessions, essays[1], scores(11, 16, 12),
          errors=[("错别字", "再接再励", "再接再厉"), ("错别字", "必需", "必须"), ("错别字", "以经", "已经")])
    grade(pg_sessions, essays[2], scores(12, 12, 12))
    grade(pg_sessions, essays[3], scores(14, 13, 12))
    with pg_sessions() as session:
        expression_weak = build_plan(session, history.student_ids[0])
        content_weak = build_plan(session, history.student_ids[1])
    assert expression_weak is not None and content_weak is not None

    assert [(a.kind, a.key) for a in expression_weak.focus_areas] == [("dimension", "expression")]
    assert [(a.kind, a.key) for a in content_weak.focus_areas] == [("dimension", "content"), ("error", "错别字")]
    # 6/20 against a class mean of 11.75/20 is a severe gap: every expression exercise; 11/20 against 13.75/20 a
    # mild one: the first content exercise, then the spelling list with this student's own words.
    assert [e.title for a in expression_weak.focus_areas for e in a.exercises] == ["结构提纲训练", "修辞手法运用练习"]
    assert [e.title for a in content_weak.focus_areas for e in a.exercises] == ["审题立意训练", "错别字订正清单"]
    assert "再接再励→再接再厉" in content_weak.focus_areas[1].exercises[0].detail
    assert expression_weak.focus_areas[0].goal == "下一篇表达得分率从 30% 提高到 59% 以上"
    assert content_weak.focus_areas[1].goal == "下一篇错别字不超过 1 处"
    assert expression_weak.strength is not None and expression_weak.strength.key == "content"

    plain = plain_narrative(expression_weak), plain_narrative(content_weak)
    assert plain[0] == ("该生表达方面相对薄弱，得分率 30%，班级平均 59%。建议先完成结构提纲训练。"
                        "内容是该生的长处（得分率 90%，班级平均 69%），可继续保持。")
    assert plain[1].startswith("该生内容方面相对薄弱，得分率 55%，班级平均 69%。"
                               "错别字共出现 3 处，如“再接再励→再接再厉”")
    prompts = [narrative_messages(d)[1]["content"] for d in (expression_weak, content_weak)]
    assert "表达：该生得分率 30%，班级平均 59%。" in prompts[0] and "长处：内容，得分率 90%" in prompts[0]
    assert "反复出现的错误：错别字，本篇作文中出现 3 处；目标：下一篇错别字不超过 1 处。" in prompts[1]
    assert prompts[0] != prompts[1]


def test_a_class_gets_plain_whole_sentence_plans_that_differ_and_rows_tall_enough(
    pg_sessions: sessionmaker[Session], schools: list[int], tmp_path: Path
) -> None:
    names = [f"学生{i:02d}" for i in range(13)]
    history = make_history(pg_sessions, schools, names, assignments=1)
    for index, essay_id in enumerate(history.essays[0]):
        errors = [("错别字", f"错{index}", f"对{index}")] * (index % 3)
        grade(pg_sessions, essay_id, scores(8 + index % 10, 6 + (index * 7) % 13, 9 + (index * 5) % 11),
              errors=errors)
    # The model answers everyone alike, in Markdown, and stops mid-sentence.
    engine = FakeEngine(text='{"narrative": "**建议**：\\n- 该生需加强表达训练。\\n- 下一步要"}')
    assert generate_plans_for_assignment(pg_sessions, engine, history.assignment_ids[0]) == 13
    with pg_sessions() as session:
        plans = session.scalars(select(TrainingPlan).where(TrainingPlan.student_id.in_(history.student_ids))
                                .order_by(TrainingPlan.student_id)).all()
    narratives = [plan.narrative for plan in plans]
    assert narratives[0] == "建议：该生需加强表达训练。" and plans[0].model_name == "fake-model"
    assert [plan.model_name for plan in plans[1:]] == [None] * 12
    assert len(set(narratives)) == 13
    assert len({json.dumps(plan.focus_areas, ensure_ascii=False) for plan in plans}) == 13
    for narrative in narratives:
        assert len(narrative) <= NARRATIVE_MAX_CHARS and narrative[-1] == "。"
        assert not any(mark in narrative for mark in ("**", "#", "\n", "- "))

    with transaction(pg_sessions) as session:
        job = create_class_job(session, history.assignment_ids[0])
        assert job is not None
        job_id = job.id
    path = run_report_job(pg_sessions, tmp_path, job_id, ReportKind.class_workbook)
    assert path is not None
    ws = load_workbook(path)[PLANS_SHEET]
    widths = {column: ws.column_dimensions[get_column_letter(column)].width for column in range(1, 10)}
    checked = 0
    for row in ws.iter_rows(min_row=2):
        values = [cell.value for cell in row]
        needed = max(wrapped_lines(values[i], widths[i + 1]) for i in range(2, 8) if values[i])
        assert needed > 1  # the exercise listing wraps for every student
        assert ws.row_dimensions[row[0].row].height == pytest.approx(needed * LINE_HEIGHT_PT + 3)
        checked += 1
    assert checked == 13
