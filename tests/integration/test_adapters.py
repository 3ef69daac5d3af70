"""LoRA adaptation with the tiny model on CPU: the supervised set is what grading shows, a few training steps
change the model's answers, the gate promotes a better adapter and refuses a worse one, rollback restores the base
model, erasure lists the adapters a student's essays trained, and a real worker process grades one school's
batches with its adapter and the other school's without."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session, sessionmaker

from services.worker.engine.interface import EngineConfig
from services.worker.engine.transformers_engine import TransformersEngine
from services.worker.jobs import EssayJob
from services.worker.pipeline import _prepare
from services.worker.store import load_jobs
from services.worker.training.dataset import school_examples, split_by_student
from services.worker.training.job import run_training_job
from services.worker.training.params import TrainParams
from shared import erasure
from shared.adapters import (
    CARD_FILE,
    AdapterRefused,
    active_adapter,
    adapter_path,
    adapters_dir,
    queue_adapter,
    request_cancel,
    rollback,
)
from shared.models import (
    Adapter,
    AdapterStatus,
    AuditLog,
    Classroom,
    Grade,
    GradeSource,
    School,
    make_session_factory,
    transaction,
)
from shared.prompts.answer_schema import answer_schema
from shared.prompts.rubric import load_rubric
from shared.settings import Settings
from tests.essays import make_essays
from tests.factories import READING_PROMPT, add_grade, make_class
from tests.grading_run import enqueue_class, status_counts
from tests.processes import PrivateRedis, wait_for, worker_env, worker_process

RUBRIC = "gaokao-national"
# Single-digit scores far from the random model's 7s: the tiny model learns one token per score in a few steps.
TEACHER_SCORES = {"content": 2, "expression": 2, "development": 2}
# Enough steps at a high rate for the tiny model to learn the teachers' scores (about 20 s on one core).
GOOD = TrainParams(rank=16, alpha=32, dropout=0.0, learning_rate=0.01, max_steps=60, grad_accum=1, seed=7,
                   validation_fraction=0.34)
# One step at a tiny rate: the base model's answers, a worse adapter than GOOD.
WORSE = TrainParams(rank=16, alpha=32, dropout=0.0, learning_rate=1e-6, max_steps=1, grad_accum=1, seed=7,
                    validation_fraction=0.34)
MARGIN = 0.02
# One essay with a line that differs per student: the tiny random model cannot generalise from six essays, so the
# held-out students write nearly what the others wrote (what is under test is the gate, not the model's learning).
ESSAY = make_essays(1, seed=41)[0]


@dataclass
class Trained:
    sessions: sessionmaker[Session]
    engine: TransformersEngine
    config: EngineConfig
    data_dir: Path
    school_id: int
    other_school_id: int
    student_ids: list[int]
    names: list[str]
    adapter_id: int
    other_assignment_id: int
    adapted_assignment_id: int


def _train(t: Trained, params: TrainParams) -> int:
    with transaction(t.sessions) as session:
        adapter_id = queue_adapter(session, t.school_id, RUBRIC, "2024.1", t.config.model, params.as_json(),
                                   actor="test").id
    run_training_job(t.sessions, t.engine, adapter_id, config=t.config, data_dir=t.data_dir, token_budget=200_000,
                     margin=MARGIN)
    return adapter_id


@pytest.fixture(scope="module")
def trained(pg_engine: Engine, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    """School A: six students, each with an essay a teacher marked 2/2/2 and commented on by name; one GOOD
    adapter trained and promoted. School B: queued essays, no adapter."""
    sessions = make_session_factory(pg_engine)
    tag = uuid.uuid4().hex[:6]
    names = [f"林{n}" for n in ("晓明", "雨桐", "子涵", "思远", "嘉怡", "浩然")]
    texts = [f"{ESSAY}\n我的同学{name}说得好，读书要用心。" for name in names]
    school_a = make_class(sessions, texts, tag=f"a{tag}", required_length=200, student_names=names)
    with transaction(sessions) as session:
        for essay_id, name in zip(school_a.essay_ids, names, strict=True):
            add_grade(session, essay_id, TEACHER_SCORES, source=GradeSource.teacher, total=6,
                      comment=f"{name}的文章立意明确。")
    queued = [f"{ESSAY}\n第{n}位同学说得好，读书要用心。" for n in range(3)]
    adapted = make_class(sessions, queued, tag=f"c{tag}", required_length=200)
    with transaction(sessions) as session:  # a second class of school A, queued for the worker test
        session.execute(Classroom.__table__.update().where(Classroom.id == adapted.classroom_id)
                        .values(school_id=school_a.school_id))
    other = make_class(sessions, queued, tag=f"b{tag}", required_length=200)
    config = EngineConfig(model=str(tiny_model_dir), device="cpu", batch_token_budget=200_000)
    t = Trained(sessions, TransformersEngine.load(config), config, tmp_path_factory.mktemp("adapters-data"),
                school_a.school_id, other.school_id, school_a.student_ids, names, 0, other.assignment_id,
                adapted.assignment_id)
    t.adapter_id = _train(t, GOOD)
    yield t
    with transaction(sessions) as session:
        for school_id in (school_a.school_id, other.school_id, adapted.school_id):
            session.execute(delete(Adapter).where(Adapter.school_id == school_id))
            session.execute(delete(Classroom).where(Classroom.school_id == school_id))
            session.execute(delete(School).where(School.id == school_id))


def test_the_training_set_is_the_grading_conversation_masked_and_split_by_student(trained: Trained) -> None:
    rubric = load_rubric(RUBRIC)
    with trained.sessions() as session:
        examples = school_examples(session, trained.school_id, rubric, RUBRIC)
        jobs = {job.essay_id: job for job in load_jobs(session, [int(e.key.removeprefix("essay-")) for e in examples])}
    assert len(examples) == 6
    for example in examples:
        job = jobs[int(example.key.removeprefix("essay-"))]
        assert example.conversation == _prepare(0, job).messages  # what the model sees when it grades
        answer = json.loads(example.target)
        assert {key: answer[key]["score"] for key in TEACHER_SCORES} == TEACHER_SCORES
        assert answer["content"]["band"] == rubric.band_for("content", 2).name
        # The teacher named the student; the name is masked with the essay's own placeholder.
        assert answer["comment"] == "【姓名1】的文章立意明确。"
        assert "【姓名1】" in example.conversation[-1]["content"]
        assert not any(name in example.target + json.dumps(example.conversation, ensure_ascii=False)
                       for name in trained.names)
    train, validation = split_by_student(examples, 0.34, seed=7)
    assert len(validation) == 3 and len(train) == 3
    assert not {e.student for e in train} & {e.student for e in validation}


def test_training_changes_the_answers_and_the_better_adapter_is_promoted_with_its_card(trained: Trained) -> None:
    with trained.sessions() as session:
        adapter = session.get(Adapter, trained.adapter_id)
        assert adapter is not None
        assert adapter.status == AdapterStatus.active and adapter.previous_id is None, adapter.card["validation"]
        assert adapter.step == adapter.total_steps == 60
        assert [step for step, _ in adapter.losses] == list(range(1, 61))
        assert adapter.losses[-1][1] < adapter.losses[0][1]
        card, name = adapter.card, adapter.name
        assert session.scalar(select(AuditLog.details).where(
            AuditLog.action == "adapter.promote", AuditLog.object_id == adapter.id))["candidate"] == 1.0
    files = adapter_path(trained.data_dir, name)
    assert (files / "adapter_model.safetensors").is_file() and (files / "adapter_config.json").is_file()
    assert json.loads((files / CARD_FILE).read_text(encoding="utf-8")) == card
    assert card["base_model"] == trained.config.model and len(card["base_model_sha256"]) == 64
    assert card["data"]["train_essays"] == 3 and card["data"]["validation_essays"] == 3
    assert card["data"]["graded_from"] is not None and card["rubric"]["id"] == RUBRIC
    assert card["hyper_parameters"]["learning_rate"] == 0.01 and card["hyper_parameters"]["seed"] == 7
    validation = card["validation"]
    assert validation["promoted"] is True and validation["incumbent"]["adapter"] is None
    assert validation["candidate"]["within_tolerance_share"] == 1.0
    assert validation["candidate"]["within_tolerance_share"] >= validation["incumbent"]["within_tolerance_share"] \
        + MARGIN

    # A new student's essay, base model against adapter: the adapter answers with the teachers' scores.
    rubric = load_rubric(RUBRIC)
    job = EssayJob(essay_id=1, text=f"{ESSAY}\n我的同学林新同说得好，读书要用心。", assignment_prompt=READING_PROMPT,
                   genre="议论文", required_length=200, rubric_id=RUBRIC, person_names=("林新同",))
    messages = _prepare(0, job).messages
    assert messages is not None
    trained.engine.use_adapter(None, None)
    base = json.loads(trained.engine.generate_json([messages], answer_schema(rubric))[0].text)
    trained.engine.use_adapter(name, files)
    adapted = json.loads(trained.engine.generate_json([messages], answer_schema(rubric))[0].text)
    trained.engine.use_adapter(None, None)
    assert {key: adapted[key]["score"] for key in TEACHER_SCORES} == TEACHER_SCORES
    assert {key: base[key]["score"] for key in TEACHER_SCORES} != TEACHER_SCORES
    assert trained.engine.describe()["adapters_loaded"] == 1


def test_the_gate_refuses_a_worse_adapter_and_rollback_restores_what_was_active(trained: Trained) -> None:
    worse_id = _train(trained, WORSE)
    with trained.sessions() as session:
        worse = session.get(Adapter, worse_id)
        assert worse is not None and worse.status == AdapterStatus.trained
        assert worse.card["validation"]["promoted"] is False
        assert worse.card["validation"]["incumbent"]["adapter"] == session.get(Adapter, trained.adapter_id).name
        assert "未启用" in (worse.detail or "")
        active = active_adapter(session, trained.school_id, RUBRIC)
        assert active is not None and active.id == trained.adapter_id
    assert worse.name not in trained.engine._adapters.loaded  # measured, refused, unloaded

    with transaction(trained.sessions) as session:
        assert rollback(session, trained.school_id, RUBRIC, actor="admin") is None  # the base model alone again
    with trained.sessions() as session:
        assert active_adapter(session, trained.school_id, RUBRIC) is None
        assert session.get(Adapter, trained.adapter_id).status == AdapterStatus.rolled_back
    with transaction(trained.sessions) as session, pytest.raises(AdapterRefused):
        rollback(session, trained.school_id, RUBRIC, actor="admin")
    with transaction(trained.sessions) as session:  # back as it was, for the worker test
        from shared.adapters import promote

        promote(session, session.get(Adapter, trained.adapter_id), actor="admin")


def test_a_cancel_stops_training_at_the_next_step_and_removes_its_files(trained: Trained) -> None:
    with transaction(trained.sessions) as session:
        adapter = queue_adapter(session, trained.school_id, RUBRIC, "2024.1", trained.config.model,
                                TrainParams(max_steps=50, grad_accum=1, validation_fraction=0.34).as_json(),
                                actor="test")
        adapter_id, name = adapter.id, adapter.name

    def cancel_after_two(step: int, _total: int, _loss: float) -> None:
        if step == 2:
            with transaction(trained.sessions) as session:
                assert request_cancel(session, session.get(Adapter, adapter_id), actor="admin")

    assert run_training_job(trained.sessions, trained.engine, adapter_id, config=trained.config,
                            data_dir=trained.data_dir, token_budget=200_000, margin=MARGIN,
                            progress=cancel_after_two) == {}
    with trained.sessions() as session:
        adapter = session.get(Adapter, adapter_id)
        assert (adapter.status, adapter.step, adapter.total_steps) == (AdapterStatus.cancelled, 2, 50)
        assert adapter.detail == "训练已取消。"
        assert active_adapter(session, trained.school_id, RUBRIC).id == trained.adapter_id  # untouched
    assert not adapter_path(trained.data_dir, name).exists()


def test_train_command_names_the_bad_row_of_an_imported_table_and_creates_nothing(
    trained: Trained, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from click.testing import CliRunner

    from services.cli import main

    table = tmp_path / "scores.csv"
    table.write_text("编号,作文,内容,表达,发展等级\n1,读书使人明智。,15,14,12\n2,青春是一种心境。,15,,12\n",
                     encoding="utf-8")
    monkeypatch.setenv("YUEJUAN_DATABASE_URL", pg_url)
    monkeypatch.setenv("YUEJUAN_MODEL", trained.config.model)
    with trained.sessions() as session:
        before = session.scalars(select(Adapter.id)).all()
    result = CliRunner().invoke(main, ["train", "--school", str(trained.school_id), "--set", str(table),
                                       "--prompt", "以读书为题"])
    assert result.exit_code != 0
    assert "scores.csv 第 3 行: 训练需要每个维度的分数，缺少 表达" in result.output
    with trained.sessions() as session:
        assert session.scalars(select(Adapter.id)).all() == before


@pytest.mark.slow
@pytest.mark.processes
def test_a_worker_process_grades_the_schools_batches_with_its_adapter_and_no_other(
    trained: Trained, pg_url: str, tiny_model_dir: Path, private_redis: PrivateRedis, tmp_path: Path,
) -> None:
    settings = Settings(database_url=pg_url, broker_url=private_redis.url)
    for assignment_id in (trained.adapted_assignment_id, trained.other_assignment_id):
        enqueue_class(settings, trained.sessions, assignment_id)
    env = worker_env(database_url=pg_url, broker_url=private_redis.url, model=str(tiny_model_dir),
                     data_dir=str(trained.data_dir))
    worker = worker_process(env, tmp_path / "worker.log").start()
    try:
        wait_for(lambda: all(status_counts(trained.sessions, a) == {"graded": 3}
                             for a in (trained.adapted_assignment_id, trained.other_assignment_id)),
                 timeout=300, what="both classes graded")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{worker.log()[-5000:]}") from None
    finally:
        worker.stop()
    with trained.sessions() as session:
        name = session.get(Adapter, trained.adapter_id).name

        def grades(assignment_id: int) -> list[Grade]:
            from shared.models import Essay

            return list(session.scalars(select(Grade).join(Essay).where(Essay.assignment_id == assignment_id)))

        adapted, other = grades(trained.adapted_assignment_id), grades(trained.other_assignment_id)
        assert [g.adapter for g in adapted] == [name] * 3
        assert [g.adapter for g in other] == [None] * 3
        assert all(g.dimension_scores == TEACHER_SCORES for g in adapted)
        assert not any(g.dimension_scores == TEACHER_SCORES for g in other)
    assert worker.log().count(f"loaded adapter {name}") == 1


def test_erasing_a_student_lists_the_adapters_their_essays_trained(trained: Trained) -> None:
    student_id = trained.student_ids[0]
    with trained.sessions() as session:
        expected = sorted(a.id for a in session.scalars(select(Adapter).where(
            Adapter.school_id == trained.school_id, Adapter.status != AdapterStatus.cancelled)))
    assert len(expected) == 2  # GOOD and WORSE; the cancelled one has no files to retrain or delete
    erased = erasure.erase(trained.sessions, trained.data_dir, "student", student_id, actor="admin")
    assert erased is not None and erased.adapter_ids == expected
    with trained.sessions() as session:
        details = session.scalars(select(AuditLog.details).where(
            AuditLog.action == erasure.ERASE_ACTION, AuditLog.object_id == student_id)).one()
    assert details["adapters_trained_on"] == expected
    assert adapters_dir(trained.data_dir).is_dir()
