"""A grading task writes each essay as soon as the model has finished its answer, not when its whole batch has:
the real engine reports rows as they reach their stop token, the pipeline scores them, the store commits them."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from services.worker import store
from services.worker.batch import EssayWriter
from services.worker.engine import EngineConfig
from services.worker.engine.transformers_engine import TransformersEngine
from services.worker.jobs import EssayOutcome
from services.worker.pipeline import grade_jobs
from shared.models import Essay, EssayStatus
from tests.essays import make_essays
from tests.factories import make_class
from tests.integration.test_quotes import _Opener


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> TransformersEngine:
    # One batch for the four essays, so the order they are reported in is the order they finished in.
    return TransformersEngine.load(EngineConfig(model=str(tiny_model_dir), device="cpu", batch_token_budget=200_000))


def _graded(sessions: sessionmaker[Session], assignment_id: int) -> int:
    with sessions() as session:
        return session.scalar(
            select(func.count()).where(Essay.assignment_id == assignment_id, Essay.status == EssayStatus.graded)
        ) or 0


def test_each_essay_is_committed_as_its_answer_finishes(
    pg_sessions: sessionmaker[Session], engine: TransformersEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    fixture = make_class(pg_sessions, make_essays(4, seed=5), tag=uuid.uuid4().hex[:6])
    token = f"task-{uuid.uuid4().hex[:8]}"
    jobs = store.claim_and_load(pg_sessions, fixture.essay_ids, token, lease_s=60, is_retry=False)
    writer = EssayWriter(pg_sessions, token)
    seen: list[tuple[int, int, int]] = []  # (essay, graded in the database before it, graded right after it)
    generating = [False]
    generate = engine.model.generate

    # The second and fourth essays are pushed to quote the essay (longer answers), so the answers end at
    # different steps whatever the random weights prefer.
    pieces = engine._vocab().pieces
    opener = _Opener(pieces + (b"",) * (engine.model.config.vocab_size - len(pieces)), rows={1, 3})

    def watched_generate(*args: object, logits_processor: list[object] | None = None, **kwargs: object) -> object:
        generating[0] = True
        try:
            return generate(*args, logits_processor=[opener, *(logits_processor or [])], **kwargs)
        finally:
            generating[0] = False

    monkeypatch.setattr(engine.model, "generate", watched_generate)

    def write(outcome: EssayOutcome) -> None:
        assert generating[0], "an essay was reported after its batch's generation had ended"
        before = _graded(pg_sessions, fixture.assignment_id)
        writer(outcome)
        seen.append((outcome.essay_id, before, _graded(pg_sessions, fixture.assignment_id)))

    outcomes = grade_jobs(engine, jobs, write)

    assert all(o.error is None for o in outcomes), [o.error for o in outcomes]
    assert sorted(essay for essay, _, _ in seen) == sorted(fixture.essay_ids)  # each once
    assert [(before, after) for _, before, after in seen] == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert writer.written == set(fixture.essay_ids)
    # Reported as they finished, not in input order after the batch: the shorter answers came first.
    lengths = {o.essay_id: o.generated_tokens for o in outcomes}
    order = [lengths[essay] for essay, _, _ in seen]
    assert order == sorted(order), order
    assert len(set(order)) > 1, "the tiny model gave every essay an answer of one length: nothing to tell apart"
