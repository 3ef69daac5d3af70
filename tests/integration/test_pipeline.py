"""The grading pipeline with the tiny random model loaded through the real engine: every answer valid,
batching and repetition change nothing, and nothing personal reaches the model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from services.worker.engine import EngineConfig
from services.worker.engine.transformers_engine import TransformersEngine
from services.worker.jobs import EssayJob, EssayOutcome
from services.worker.pipeline import grade_jobs
from shared.prompts.rubric import load_rubric
from tests.essays import make_essays


class RecordingEngine:
    """The real engine, with the conversations it was given kept for inspection."""

    def __init__(self, engine: TransformersEngine) -> None:
        self.engine = engine
        self.conversations: list[list[dict[str, str]]] = []

    def generate_json(self, conversations: Sequence[list[dict[str, str]]], schema: dict) -> Sequence[Any]:
        self.conversations.extend(conversations)
        return self.engine.generate_json(conversations, schema)

    def describe(self) -> dict[str, Any]:
        return self.engine.describe()


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> TransformersEngine:
    return TransformersEngine.load(EngineConfig(model=str(tiny_model_dir), device="cpu", max_new_tokens=600))


def _jobs(count: int) -> list[EssayJob]:
    return [
        EssayJob(
            essay_id=i, text=text, assignment_prompt="以“读书”为题写一篇议论文。", genre="议论文",
            required_length=800, rubric_id="gaokao-national",
        )
        for i, text in enumerate(make_essays(count, seed=21))
    ]


def _scores(outcome: EssayOutcome) -> tuple[Any, ...]:
    errors = [(e.start, e.end, e.type) for e in outcome.errors]
    return (outcome.dimension_scores, outcome.total, outcome.comment, errors)


def test_every_answer_is_valid_and_batching_or_repeating_changes_nothing(engine: TransformersEngine) -> None:
    rubric = load_rubric("gaokao-national")
    jobs = _jobs(8)
    batch = grade_jobs(engine, jobs)
    assert [o.essay_id for o in batch] == [j.essay_id for j in jobs]
    for outcome in batch:
        assert outcome.error is None, outcome.error
        assert outcome.rubric_version == rubric.version and outcome.prompt_version
        for dimension in rubric.dimensions:
            score = outcome.dimension_scores[dimension.key]
            assert 0 <= score <= dimension.max
            assert outcome.bands[dimension.key] == rubric.band_for(dimension.key, score).name
        assert 0 <= outcome.total <= rubric.total
        for error in outcome.errors:
            assert outcome.text[error.start:error.end] == error.original
    alone = grade_jobs(engine, [jobs[3]])[0]
    assert _scores(alone) == _scores(batch[3])
    again = grade_jobs(engine, jobs)
    assert [_scores(o) for o in again] == [_scores(o) for o in batch]


def test_names_school_and_contacts_never_reach_the_model_and_come_back_for_display(engine: TransformersEngine) -> None:
    text = make_essays(1, seed=22)[0] + "\n我是第一中学的李明远，电话13812345678，邮箱li@example.com。"
    job = replace(_jobs(1)[0], text=text, person_names=("李明远",), school_names=("第一中学",))
    recorder = RecordingEngine(engine)
    outcome = grade_jobs(recorder, [job])[0]
    assert outcome.error is None
    sent = "".join(message["content"] for conversation in recorder.conversations for message in conversation)
    for secret in ("李明远", "明远", "第一中学", "13812345678", "li@example.com"):
        assert secret not in sent
    assert "李明远" in outcome.text  # the stored text, which offsets refer to, is the original


def test_blank_and_two_sentence_essays_are_scored_without_the_model(engine: TransformersEngine) -> None:
    recorder = RecordingEngine(engine)
    blank = replace(_jobs(1)[0], text="　\n\n")
    short = replace(_jobs(1)[0], essay_id=1, text="读书\n我爱读书。书很好。")
    outcomes = grade_jobs(recorder, [blank, short])
    assert recorder.conversations == []
    assert outcomes[0].total == 0 and 1 <= outcomes[1].total <= 2
