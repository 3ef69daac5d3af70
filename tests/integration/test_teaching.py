"""The teaching assistant with the tiny model (issue 20): 立意 angles, 素材 picks and a 教案 generated through the
worker's code and the real engine, requested through the web's service functions; every stored answer checked
against its schema, every pick found in the library, the cache counted in model calls, the .docx files read back."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from docx import Document
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from services.web.actor import Actor
from services.web.teaching_docx import lesson_docx, topic_docx
from services.web.teaching_service import (
    angles_of,
    choose_angle,
    picked_entries,
    request_analysis,
    request_lesson,
    save_angles,
    save_lesson,
)
from services.worker.engine import EngineConfig
from services.worker.engine.transformers_engine import TransformersEngine
from services.worker.teaching.tasks import run_lesson_plan, run_material_picks, run_topic_angles
from shared.models import (
    Assignment,
    AssignmentTopic,
    JobStatus,
    LessonPlan,
    MaterialPick,
    SchoolMaterial,
    TopicAnalysis,
    User,
    transaction,
)
from shared.prompts.material_library import THEMES, load_library
from shared.prompts.rubric import resolve_rubric
from shared.prompts.teaching import (
    ANGLES_SCHEMA,
    LESSON_PARTS,
    LESSON_SCHEMA,
    LESSON_SECTIONS,
    MAX_PICKS,
    lesson_part_schema,
    picks_schema,
)
from shared.tasks import LESSON_PLAN_TASK, MATERIAL_PICKS_TASK, TOPIC_ANGLES_TASK
from shared.teaching import InvalidAnswer, checked_picks, find_entries
from tests.factories import add_grade, make_class
from tests.factories.classes import ClassFixture

SCHOOL_RUBRIC = str(Path(__file__).resolve().parents[1] / "data" / "rubrics" / "school-simple.yaml")
ACTOR = Actor(name="tester", user_id=None, ip=None)


class CountingEngine:
    """The real engine, with its calls counted."""

    def __init__(self, inner: TransformersEngine) -> None:
        self.inner = inner
        self.calls: list[dict[str, Any]] = []

    def generate_json(self, conversations: Sequence[Any], schema: dict[str, Any]) -> Any:
        self.calls.append(schema)
        return self.inner.generate_json(conversations, schema)

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()


class InlineWorker:
    """Stands in for the broker: a sent task runs at once with the worker's own code and the counted engine."""

    def __init__(self, sessions: sessionmaker[Session], engine: CountingEngine) -> None:
        self.sessions, self.engine = sessions, engine
        self.sent: list[str] = []

    def send_task(self, name: str, args: Sequence[Any] = (), **_: object) -> None:
        run = {TOPIC_ANGLES_TASK: run_topic_angles, MATERIAL_PICKS_TASK: run_material_picks,
               LESSON_PLAN_TASK: run_lesson_plan}[name]
        self.sent.append(name)
        run(self.sessions, self.engine, *args)  # type: ignore[operator]


@pytest.fixture(scope="module")
def tiny_engine(tiny_model_dir: Path) -> TransformersEngine:
    return TransformersEngine.load(EngineConfig(model=str(tiny_model_dir), device="cpu", batch_token_budget=200_000))


@pytest.fixture()
def worker(pg_sessions: sessionmaker[Session], tiny_engine: TransformersEngine) -> InlineWorker:
    return InlineWorker(pg_sessions, CountingEngine(tiny_engine))


@pytest.fixture()
def caches(pg_sessions: sessionmaker[Session]) -> Iterator[list[str]]:
    """Prompt texts a test analysed: their cached analyses and picks are removed afterwards."""
    prompts: list[str] = []
    yield prompts
    with transaction(pg_sessions) as session:
        session.execute(delete(TopicAnalysis).where(TopicAnalysis.prompt_text.in_(prompts)))
        session.execute(delete(MaterialPick).where(MaterialPick.prompt_text.in_(prompts)))


def _class(pg_sessions: sessionmaker[Session], schools: list[int], prompt: str, essays: Sequence[str] = (),
           names: list[str] | None = None, **columns: Any) -> ClassFixture:
    fixture = make_class(pg_sessions, list(essays), tag=uuid.uuid4().hex[:6], student_names=names)
    schools.append(fixture.school_id)
    with transaction(pg_sessions) as session:
        session.execute(update(Assignment).where(Assignment.id == fixture.assignment_id)
                        .values(prompt_text=prompt, **columns))
    return fixture


def _assignment(pg_sessions: sessionmaker[Session], schools: list[int], prompt: str, **columns: Any) -> int:
    return _class(pg_sessions, schools, prompt, **columns).assignment_id


def _prompt(tag: str) -> str:
    return (f"阅读下面的材料，根据要求写作。\n有人说，科技让生活更便利；也有人说，科技让人越来越孤独。（{tag}）\n"
            "要求：自拟题目，不少于800字。")


def test_angles_are_schema_valid_and_generated_once_per_prompt_and_rubric(
    pg_sessions: sessionmaker[Session], schools: list[int], worker: InlineWorker, caches: list[str]
) -> None:
    prompt = _prompt(uuid.uuid4().hex)
    caches.append(prompt)
    first = _assignment(pg_sessions, schools, prompt)
    # Another school's assignment with the same prompt (spaced differently) and rubric: the same analysis.
    twin = _assignment(pg_sessions, schools, prompt.replace("\n", "\n  "))
    caches.append(prompt.replace("\n", "\n  "))
    other_rubric = _assignment(pg_sessions, schools, prompt, rubric_id=SCHOOL_RUBRIC,
                               rubric_version=resolve_rubric(SCHOOL_RUBRIC).version)
    with pg_sessions() as session:
        requested = request_analysis(session, ACTOR, worker, session.get(Assignment, first))
    assert requested.sent and len(worker.engine.calls) == 1
    with pg_sessions() as session:
        analysis = session.get(TopicAnalysis, requested.row_id)
        assert analysis.status == JobStatus.done and analysis.error is None and analysis.model_name
        jsonschema.validate({"angles": analysis.angles}, ANGLES_SCHEMA)
        assert 3 <= len(analysis.angles) <= 5 and all(a["theme"] in THEMES for a in analysis.angles)
        stored = analysis.angles

    for assignment_id in (twin, first):
        with pg_sessions() as session:
            again = request_analysis(session, ACTOR, worker, session.get(Assignment, assignment_id))
            assert again.row_id == requested.row_id and not again.sent
            assert angles_of(session.get(AssignmentTopic, assignment_id)) == stored
    assert len(worker.engine.calls) == 1  # the cache answered: no model call
    assert run_topic_angles(pg_sessions, worker.engine, requested.row_id) == 0  # a redelivered task: nothing to do
    assert len(worker.engine.calls) == 1

    with pg_sessions() as session:
        other = request_analysis(session, ACTOR, worker, session.get(Assignment, other_rubric))
    assert other.row_id != requested.row_id and len(worker.engine.calls) == 2
    assert worker.sent == [TOPIC_ANGLES_TASK, TOPIC_ANGLES_TASK]


def test_recommended_materials_always_exist_in_the_library(
    pg_sessions: sessionmaker[Session], schools: list[int], worker: InlineWorker, caches: list[str]
) -> None:
    prompt = _prompt(uuid.uuid4().hex)
    caches.append(prompt)
    assignment_id = _assignment(pg_sessions, schools, prompt)
    with transaction(pg_sessions) as session:
        school_id = session.get(Assignment, assignment_id).classroom.school_id
        own = SchoolMaterial(school_id=school_id, kind="case", title="校友回乡植树", themes=["人与自然"],
                             summary="本校校友退休后回乡植树造林二十年。", origin="校史", source="校史馆资料")
        session.add(own)
        session.flush()
        own_id = f"school-{own.id}"
        teacher = session.scalar(select(User).where(User.school_id == school_id))
        teacher_id = teacher.id
    angles = [
        {"thesis": "科技应当服务于人的情感", "theme": "科技与人文", "keywords": ["科技", "人工智能"],
         "relation": "回应便利与孤独", "off_topic": "只写科技成就"},
        {"thesis": "守护自然才能守护人", "theme": "人与自然", "keywords": ["植树", "校友", "自然"],
         "relation": "由科技转向人与自然", "off_topic": "只写环保口号"},
        {"thesis": "读书让人不孤独", "theme": "读书与思考", "keywords": ["读书", "思考"],
         "relation": "以读书回应孤独", "off_topic": "只写读书方法"},
    ]
    library = load_library()
    with pg_sessions() as session:
        request_analysis(session, ACTOR, worker, session.get(Assignment, assignment_id))
        save_angles(session, ACTOR, session.get(User, teacher_id), session.get(Assignment, assignment_id), angles)
    calls_before = len(worker.engine.calls)
    for index in range(len(angles)):
        with pg_sessions() as session:
            requested = choose_angle(session, ACTOR, worker, session.get(User, teacher_id),
                                     session.get(Assignment, assignment_id), index)
            pick = session.get(MaterialPick, requested.row_id)
            assert pick.status == JobStatus.done, pick.error
            schema = worker.engine.calls[-1]
            assert schema == picks_schema(pick.candidates)  # the model could name these ids only
            assert 1 <= len(pick.picks) <= MAX_PICKS
            for chosen in pick.picks:
                assert chosen["id"] in pick.candidates and chosen["usage"]
                assert library.get(chosen["id"]) is not None or chosen["id"] == own_id
            assert len({p["id"] for p in pick.picks}) == len(pick.picks)
            shown = picked_entries(session, pick)
            assert [entry.id for entry, _ in shown] == [p["id"] for p in pick.picks]
            if index == 1:
                assert own_id in pick.candidates  # the school's own entry is retrieved for its theme and words
                assert set(find_entries(session, school_id, pick.candidates)) == set(pick.candidates)
    assert len(worker.engine.calls) == calls_before + len(angles)
    with pg_sessions() as session:  # the same angle again: the cached pick, no model call
        choose_angle(session, ACTOR, worker, session.get(User, teacher_id), session.get(Assignment, assignment_id), 0)
    assert len(worker.engine.calls) == calls_before + len(angles)
    with pytest.raises(InvalidAnswer):
        checked_picks({"picks": [{"id": "made-up-entry", "usage": "用作开头"}]}, ["saihanba"])

    with pg_sessions() as session:
        assignment = session.get(Assignment, assignment_id)
        topic = session.get(AssignmentTopic, assignment_id)
        picks = picked_entries(session, topic.pick)
        document = Document(io.BytesIO(topic_docx(assignment.title, assignment.prompt_text, angles_of(topic),
                                                  topic.chosen, picks)))
    text = "\n".join(p.text for p in document.paragraphs)
    assert "立意角度（从稳妥到大胆）" in text and "推荐素材" in text
    for angle in angles:
        assert angle["thesis"] in text and angle["off_topic"] in text
    for entry, usage in picks:
        assert entry.title in text and entry.source in text and usage in text


CLASS_ESSAYS = [
    "我叫陈明亮。明亮觉得科技发展的很快，我们的生活也变的更加便利。可是爷爷却越来越孤独了。",
    "手机让我们联系更方便，但是面对面的交流却少了。林晓雨认为，我们应该放下手机，多陪陪家人。",
    "科技是一把双刃剑。它即带来了便利，也带来了问题。我们要正确的使用科技。",
]
NAMES = ["陈明亮", "林晓雨", "黄子涵"]
ERRORS = [
    [("用词不当", "发展的很快", "发展得很快"), ("错别字", "变的", "变得")],
    [("病句", "面对面的交流却少了", "面对面的交流少了")],
    [("错别字", "即带来", "既带来"), ("用词不当", "正确的使用", "正确地使用")],
]
SCORES = [(14, 12, 8), (15, 13, 9), (13, 11, 7)]


def test_a_lesson_plan_from_the_class_errors_is_schema_valid_masked_versioned_and_exported(
    pg_sessions: sessionmaker[Session], schools: list[int], worker: InlineWorker
) -> None:
    fixture = _class(pg_sessions, schools, _prompt(uuid.uuid4().hex), CLASS_ESSAYS, names=NAMES)
    assignment_id, teacher_id = fixture.assignment_id, fixture.teacher_id
    with transaction(pg_sessions) as session:
        for essay_id, text, errors, scores in zip(fixture.essay_ids, CLASS_ESSAYS, ERRORS, SCORES, strict=True):
            add_grade(session, essay_id, scores, text=text, errors=errors)
    with pg_sessions() as session:
        plan = request_lesson(session, ACTOR, worker, session.get(User, teacher_id), "掌握议论文对比论证",
                              session.get(Assignment, assignment_id))
        plan_id = plan.id
    # Two answers, the first half of the sections and the second, each under its own part of the schema.
    assert worker.sent == [LESSON_PLAN_TASK] and worker.engine.calls == [lesson_part_schema(0), lesson_part_schema(1)]
    assert [key for part in LESSON_PARTS for key in part] == [key for key, _ in LESSON_SECTIONS]
    with pg_sessions() as session:
        plan = session.get(LessonPlan, plan_id)
        assert plan.status == JobStatus.done, plan.error
        facts = plan.facts
        assert facts["essays"] == 3
        assert facts["errors"] == [{"type": "用词不当", "count": 2, "essays": 2},
                                   {"type": "错别字", "count": 2, "essays": 2},
                                   {"type": "病句", "count": 1, "essays": 1}]
        assert facts["weakest"] == {"key": "development", "name": "发展等级", "rate": round(24 / 60, 4)}
        assert [e["type"] for e in facts["examples"]] == ["用词不当", "错别字", "病句", "用词不当", "错别字"]
        stored = json.dumps(facts, ensure_ascii=False)
        assert not any(name in stored or name[1:] in stored for name in NAMES)
        # The class's own sentence, its writer's name masked.
        assert facts["examples"][0]["sentence"] == "【姓名1】觉得科技发展的很快，我们的生活也变的更加便利。"
        [version] = plan.versions
        assert version.version == 1 and version.source == "model"
        jsonschema.validate(version.content, LESSON_SCHEMA)
        edited = {**version.content, "homework": ["用对比论证改写本次作文的第二段。"]}
        second = save_lesson(session, ACTOR, session.get(User, teacher_id), plan, edited)
        assert second.version == 2 and second.source == "teacher"
        data = lesson_docx("讲评教案", plan.goal, second.content, second.version)
    document = Document(io.BytesIO(data))
    text = "\n".join(p.text for p in document.paragraphs)
    for _, name in LESSON_SECTIONS:
        assert name in text
    assert "第 2 版" in text and "用对比论证改写本次作文的第二段。" in text
    for example in edited["examples"]:
        assert example["original"] in text and example["revised"] in text
    cells = [cell.text for row in document.tables[0].rows for cell in row.cells]
    assert cells[:3] == ["环节", "时间", "师生活动"]
    assert [step["name"] for step in edited["steps"]] == cells[3::3]
    assert f"合计 {sum(s['minutes'] for s in edited['steps'])} 分钟" in text
