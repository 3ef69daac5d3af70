"""模型评测 from the web: an admin starts an evaluation of the teacher-final grades, the gpu-queue task grades them
with the tiny model through the production pipeline, writing its progress; the page shows the figures and serves
the workbook; a redelivered task does nothing; a scope with no teacher-final grade fails with the reason."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from services.worker.engine import EngineConfig
from services.worker.engine.transformers_engine import TransformersEngine
from services.worker.evaluation.job import NO_TEACHER_FINALS, EvalJobFailed, run_eval_job
from shared.models import AuditLog, EvalJob, GradeSource, JobStatus, transaction
from shared.tasks import EVAL_TASK
from tests.factories import add_grade
from tests.factories.world import World
from tests.web.conftest import TaskRecorder, client_as, form


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> TransformersEngine:
    return TransformersEngine.load(EngineConfig(model=str(tiny_model_dir), device="cpu"))


def _start(app: Flask, user_id: int, **fields: str) -> int:
    response = client_as(app, user_id).post("/admin/evaluations", data=form(**fields))
    assert response.status_code == 303, response.get_data(as_text=True)
    return int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])


def test_an_admin_evaluates_an_assignment_and_reads_the_figures(
    app: Flask, world: World, sessions: sessionmaker[Session], tasks: TaskRecorder, engine: TransformersEngine,
    web_data_dir: Path,
) -> None:
    with transaction(sessions) as session:  # one essay with a teacher's reading, one with the model's only
        add_grade(session, world.essay, (15, 16, 14), version=5, source=GradeSource.teacher)
    job_id = _start(app, world.users["admin"], assignment_id=str(world.assignment))
    assert tasks.sent == [(EVAL_TASK, [job_id])]
    client = client_as(app, world.users["admin"])
    assert client.get(f"/admin/evaluations/{job_id}/progress.json").get_json()["status"] == "queued"

    seen: list[tuple[int, int]] = []
    watched: sessionmaker[Session] = _Watched(sessions, job_id, seen)  # type: ignore[assignment]
    headline = run_eval_job(watched, engine, job_id, data_dir=web_data_dir, token_budget=8000)
    with sessions() as session:
        job = session.get(EvalJob, job_id)
        assert job is not None and job.status == JobStatus.done and job.error is None
        assert (job.essays, job.done, job.total) == (1, 3, 3), "the set, its rerun and each essay alone"
        assert job.headline == headline and headline["essays"] == 1
    assert seen[0] == (0, 3) and seen[-1] == (3, 3) and seen == sorted(seen), "progress only moves forward"
    progress = client.get(f"/admin/evaluations/{job_id}/progress.json").get_json()
    assert progress["finished"] and progress["percent"] == 100
    page = client.get(f"/admin/evaluations/{job_id}").get_data(as_text=True)
    assert "已完成" in page and "总分 QWK" in page and 'id="eval-download"' in page
    download = client.get(f"/admin/evaluations/{job_id}/download")
    assert download.status_code == 200
    book = openpyxl.load_workbook(_saved(web_data_dir, download.data))
    rows = list(book["逐篇"].iter_rows(min_row=2, values_only=True))
    assert [(r[0], r[2]) for r in rows] == [(f"essay-{world.essay}", 45)], "the teacher's total is the reference"
    with sessions() as session:
        assert session.scalar(select(AuditLog).where(AuditLog.action == "eval.download",
                                                     AuditLog.object_id == job_id)) is not None

    assert run_eval_job(sessions, engine, job_id, data_dir=web_data_dir, token_budget=8000) == {}, \
        "a redelivered task does not grade the set again"
    assert "模型评测" in client.get("/admin/evaluations").get_data(as_text=True)


def test_a_scope_without_teacher_grades_fails_with_the_reason(
    app: Flask, world: World, sessions: sessionmaker[Session], tasks: TaskRecorder, engine: TransformersEngine,
    web_data_dir: Path,
) -> None:
    job_id = _start(app, world.users["other_admin"], rubric="gaokao-national")
    with pytest.raises(EvalJobFailed, match=NO_TEACHER_FINALS):
        run_eval_job(sessions, engine, job_id, data_dir=web_data_dir, token_budget=8000)
    with sessions() as session:
        job = session.get(EvalJob, job_id)
        assert job is not None and job.status == JobStatus.failed and job.school_id == world.school_b
    page = client_as(app, world.users["other_admin"]).get(f"/admin/evaluations/{job_id}").get_data(as_text=True)
    assert "失败" in page and NO_TEACHER_FINALS in page
    assert client_as(app, world.users["admin"]).get(f"/admin/evaluations/{job_id}").status_code == 404


def test_bad_input_is_refused_without_a_job(app: Flask, world: World, sessions: sessionmaker[Session],
                                            tasks: TaskRecorder) -> None:
    client = client_as(app, world.users["admin"])
    with sessions() as session:
        before = len(session.scalars(select(EvalJob.id)).all())
    for fields in ({"limit": "0"}, {"limit": "²"}, {"limit": "99999999999999999999"}, {"rubric": "no-such"}):
        response = client.post("/admin/evaluations", data=form(**fields))
        assert response.status_code == 303 and response.headers["Location"].endswith("/admin/evaluations"), fields
    for too_big in ("9" * 30, str(2**31), str(2**63)):
        assert client.post("/admin/evaluations", data=form(assignment_id=too_big)).status_code == 404
    assert client.post("/admin/evaluations", data=form(assignment_id=str(world.assignment_b))).status_code == 404
    with sessions() as session:
        assert len(session.scalars(select(EvalJob.id)).all()) == before and tasks.sent == []


class _Watched:
    """The sessions the job writes through, reading the job's progress after each write."""

    def __init__(self, sessions: sessionmaker[Session], job_id: int, seen: list[tuple[int, int]]) -> None:
        self.sessions, self.job_id, self.seen = sessions, job_id, seen

    def __call__(self) -> _Recording:
        return _Recording(self.sessions(), self)

    def record(self) -> None:
        with self.sessions() as session:
            job = session.get(EvalJob, self.job_id)
            assert job is not None
            if job.status == JobStatus.running and job.total and (job.done, job.total) not in self.seen[-1:]:
                self.seen.append((job.done, job.total))


class _Recording:
    """A session that tells the watcher when it closes (after its transaction has committed)."""

    def __init__(self, inner: Session, watcher: _Watched) -> None:
        self.inner, self.watcher = inner, watcher

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def __enter__(self) -> Session:
        return self.inner

    def __exit__(self, *exc: object) -> None:
        self.inner.close()
        self.watcher.record()


def _saved(directory: Path, data: bytes) -> Path:
    path = directory / "downloaded-eval.xlsx"
    path.write_bytes(data)
    return path
