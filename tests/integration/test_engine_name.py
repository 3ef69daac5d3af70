"""Grades record the engine that generated them, as its ``describe()`` names it: a non-default engine, loaded the
way workers load one (YUEJUAN_ENGINE_CLASS), through the pipeline and through a real worker writing grades."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from services.worker.engine.transformers_engine import TransformersEngine
from services.worker.jobs import EssayJob
from services.worker.pipeline import grade_jobs
from services.worker.runtime import load_engine
from shared.models import Grade
from shared.settings import Settings
from tests.essays import make_essays
from tests.factories import make_class
from tests.grading_run import enqueue_class, status_counts
from tests.processes import PrivateRedis, wait_for, worker_env, worker_process

NAMED_ENGINE = f"{__name__}:NamedEngine"


class NamedEngine(TransformersEngine):
    """The transformers engine under another name: what a second engine looks like to the pipeline."""

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "engine": "test-engine"}


@pytest.fixture(scope="module")
def named_engine(tiny_model_dir: Path) -> NamedEngine:
    engine = load_engine(Settings(model=str(tiny_model_dir), device="cpu", engine_class=NAMED_ENGINE,
                                  max_new_tokens=600))
    assert type(engine) is NamedEngine
    return engine


def _jobs(count: int) -> list[EssayJob]:
    return [
        EssayJob(essay_id=i, text=text, assignment_prompt="以“读书”为题写一篇议论文。", genre="议论文",
                 required_length=800, rubric_id="gaokao-national")
        for i, text in enumerate(make_essays(count, seed=31))
    ]


def test_the_pipeline_records_the_engine_that_generated(named_engine: NamedEngine, tiny_model_dir: Path) -> None:
    jobs = _jobs(2)
    named = grade_jobs(named_engine, jobs)
    assert [o.error for o in named] == [None, None]
    assert {(o.model_name, o.engine_name) for o in named} == {(str(tiny_model_dir), "test-engine")}
    default = TransformersEngine(named_engine.config, named_engine.model, named_engine.tokenizer,
                                 named_engine.device, named_engine.dtype)
    assert {o.engine_name for o in grade_jobs(default, jobs)} == {"transformers+xgrammar"}


@pytest.mark.slow
@pytest.mark.processes
def test_a_worker_with_another_engine_records_it_on_every_grade(
    pg_url: str, pg_sessions: sessionmaker[Session], schools: list[int], tiny_model_dir: Path,
    private_redis: PrivateRedis, tmp_path: Path,
) -> None:
    fixture = make_class(pg_sessions, make_essays(3, seed=32), tag=uuid.uuid4().hex[:6])
    schools.append(fixture.school_id)
    enqueue_class(Settings(database_url=pg_url, broker_url=private_redis.url), pg_sessions, fixture.assignment_id)
    env = worker_env(database_url=pg_url, broker_url=private_redis.url, model=str(tiny_model_dir),
                     data_dir=str(tmp_path), engine_class=NAMED_ENGINE)
    worker = worker_process(env, tmp_path / "w.log").start()
    try:
        wait_for(lambda: status_counts(pg_sessions, fixture.assignment_id) == {"graded": 3},
                 timeout=600, what="3 essays graded by the named engine")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{worker.log()[-6000:]}") from None
    finally:
        worker.stop()
    with pg_sessions() as session:
        recorded = session.execute(
            select(Grade.engine, Grade.model_name).where(Grade.essay_id.in_(fixture.essay_ids))
        ).all()
    assert sorted(recorded) == [("test-engine", str(tiny_model_dir))] * 3
