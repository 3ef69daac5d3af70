"""Grade a labelled set through the production pipeline, the way the workers do, and keep each essay's readings.

Each essay is graded in the production batches (``plan_batches`` at the configured token budget); with
``repeat`` the set is graded a second time (run-to-run differences), with ``alone`` each essay once more on its
own (batch differences). Nothing is stored in the database: the rows are the evaluation's record.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from services.worker.engine import Engine
from services.worker.evaluation.quality import degenerate_output
from services.worker.evaluation.sets import LabelledEssay
from services.worker.jobs import EssayJob, EssayOutcome
from services.worker.pipeline import grade_jobs
from shared.prompts.rubric import Rubric
from shared.queueing import plan_batches

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
Grade = Callable[[Engine, Sequence[EssayJob]], list[EssayOutcome]]


@dataclass
class Reading:
    """What one grading of one essay said (the parts compared between runs)."""

    scores: dict[str, int]
    total: int
    comment: str
    errors: list[tuple[str, int, int, str]]  # type, start, end, suggestion
    failure: str | None = None

    @classmethod
    def of(cls, outcome: EssayOutcome) -> Reading:
        return cls(
            scores=dict(outcome.dimension_scores), total=outcome.total, comment=outcome.comment,
            errors=[(e.type, e.start, e.end, e.suggestion) for e in outcome.errors], failure=outcome.error,
        )

    def differences(self, other: Reading) -> list[str]:
        """Which parts differ: scores, comment, errors, failure."""
        parts = []
        if (self.scores, self.total) != (other.scores, other.total):
            parts.append("scores")
        if self.comment != other.comment:
            parts.append("comment")
        if self.errors != other.errors:
            parts.append("errors")
        if (self.failure is None) != (other.failure is None):
            parts.append("failure")
        return parts


@dataclass
class EvalRow:
    """One essay of the set: the teacher's marks, the model's reading, and how the other readings differ."""

    key: str
    fold: int | None
    teacher_scores: dict[str, int]
    teacher_levels: dict[str, str]
    model: dict[str, Any]  # the first reading: scores, total, raw_total, comment, errors, flags, tokens …
    rerun_differs: list[str] | None = None  # None: not measured
    alone_differs: list[str] | None = None
    degenerate: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def grade_set(
    engine: Engine, essays: Sequence[LabelledEssay], rubric: Rubric, token_budget: int, *,
    repeat: bool = True, alone: bool = True, rubric_ref: str | None = None, progress: Progress | None = None,
    adapter: str | None = None, adapters_dir: Path | None = None,
) -> list[EvalRow]:
    """Grade ``essays`` (and again, and alone, as asked); returns a row per essay in input order. ``rubric_ref``
    is how an assignment would name the rubric (a shipped id, or a school's rubric file by path); ``adapter``
    grades with that LoRA adapter from ``adapters_dir`` (the training gate compares adapters this way)."""
    jobs = [
        EssayJob(essay_id=index, text=essay.text, assignment_prompt=essay.prompt, genre=essay.genre,
                 required_length=essay.required_length, rubric_id=rubric_ref or rubric.id,
                 rubric_version=rubric.version, person_names=essay.person_names, school_names=essay.school_names,
                 adapter=adapter)
        for index, essay in enumerate(essays)
    ]
    grade = partial(grade_jobs, adapters_dir=adapters_dir)
    passes = 1 + repeat + alone
    done = 0

    def tick(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done, passes * len(jobs))

    first = _in_batches(grade, engine, jobs, token_budget, tick)
    rerun = _in_batches(grade, engine, jobs, token_budget, tick) if repeat else None
    single = _alone(grade, engine, jobs, tick) if alone else None
    rows = []
    for index, essay in enumerate(essays):
        outcome = first[index]
        reading = Reading.of(outcome)
        rows.append(EvalRow(
            key=essay.key, fold=essay.fold, teacher_scores=dict(essay.scores), teacher_levels=dict(essay.levels),
            model=_model_fields(outcome),
            rerun_differs=reading.differences(Reading.of(rerun[index])) if rerun is not None else None,
            alone_differs=reading.differences(Reading.of(single[index])) if single is not None else None,
            degenerate=degenerate_output(outcome, essay.text, essay.prompt) if outcome.error is None else [],
        ))
    return rows


def _in_batches(grade: Grade, engine: Engine, jobs: Sequence[EssayJob], token_budget: int,
                tick: Callable[[int], None]) -> dict[int, EssayOutcome]:
    outcomes: dict[int, EssayOutcome] = {}
    for batch in plan_batches([(job.essay_id, len(job.text)) for job in jobs], token_budget):
        started = time.perf_counter()
        for outcome in grade(engine, [jobs[i] for i in batch]):
            outcomes[outcome.essay_id] = outcome
        logger.info("graded a batch of %s in %.1f s", len(batch), time.perf_counter() - started)
        tick(len(batch))
    return outcomes


def _alone(grade: Grade, engine: Engine, jobs: Sequence[EssayJob], tick: Callable[[int], None]
           ) -> dict[int, EssayOutcome]:
    outcomes = {}
    for job in jobs:
        (outcomes[job.essay_id],) = grade(engine, [job])
        tick(1)
    return outcomes


def _model_fields(outcome: EssayOutcome) -> dict[str, Any]:
    return {
        "scores": dict(outcome.dimension_scores), "total": outcome.total, "raw_total": outcome.raw_total,
        "bands": dict(outcome.bands), "caps": list(outcome.caps), "comment": outcome.comment,
        "evidence": outcome.evidence,
        "errors": [{"type": e.type, "start": e.start, "end": e.end, "original": e.original,
                    "suggestion": e.suggestion, "origin": e.origin} for e in outcome.errors],
        "deductions": [{"rule": d.rule, "points": d.points} for d in outcome.deductions],
        "flags": list(outcome.flags), "failure": outcome.error, "dropped_quotes": outcome.dropped_quotes,
        "prompt_tokens": outcome.prompt_tokens, "generated_tokens": outcome.generated_tokens,
        "latency_ms": outcome.latency_ms, "engine": outcome.engine_name, "model": outcome.model_name,
        "adapter": outcome.adapter, "confidence": outcome.confidence,
    }
