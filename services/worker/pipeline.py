"""The grading pipeline: pure functions around one batched, schema-constrained model call.

normalise → mask personal data → deterministic analysis → prompt from the rubric → generation →
parse → unmask → map quoted errors to offsets → compose the score with bands, caps and deductions.
"""

from __future__ import annotations

import inspect
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from services.worker.analysis import Analysis, analyse, merge_findings
from services.worker.confidence import grade_confidence
from services.worker.engine import Engine, Generation
from services.worker.injection import strip_score_talk, withhold_suspected
from services.worker.jobs import EssayJob, EssayOutcome, LocatedError
from services.worker.locate import locate_quotes
from services.worker.scoring import ScoreResult, compose_score, needs_model
from shared.deidentify import Deidentifier
from shared.prompts.answer_schema import AnswerInvalid, answer_schema, parse_answer
from shared.prompts.render import PROMPT_VERSION, render_grading_messages
from shared.prompts.rubric import Rubric, resolve_rubric

logger = logging.getLogger(__name__)

# Between the essay and a training target's texts when they are masked together; no placeholder or name spans it.
EXTRA_SEPARATOR = "\x00"
# Rubric files do not change under a path or version (a school's edit is stored as a new file): cache per worker.
cached_rubric = lru_cache(maxsize=32)(resolve_rubric)


@dataclass
class _Prepared:
    index: int
    job: EssayJob
    rubric: Rubric
    analysis: Analysis
    masker_mapping: dict[str, str]
    messages: list[dict[str, str]] | None
    masked_extras: tuple[str, ...] = ()
    adapter: str | None = None  # the LoRA adapter this essay is graded with (None: the base model)
    shown: tuple[str, ...] = ()  # the title and body as the prompt shows them: what a quotation may quote


def grade_jobs(
    engine: Engine, jobs: Sequence[EssayJob], on_outcome: Callable[[EssayOutcome], None] | None = None, *,
    adapters_dir: Path | None = None,
) -> list[EssayOutcome]:
    """Grade essays as one batch per (LoRA adapter, rubric); outcomes come back in input order, one per job.

    A job's adapter is switched on over the engine's one base model (``use_adapter``, loaded from
    ``adapters_dir`` the first time); without ``adapters_dir``, or with an engine that takes no adapters, the base
    model grades alone and the outcome records no adapter.

    ``on_outcome`` gets each outcome once, as soon as it is known: during generation for an engine that reports
    answers as they finish (``reports_answers``), otherwise when its batch ends.
    """
    outcomes: dict[int, EssayOutcome] = {}
    streams = on_outcome is not None and getattr(engine, "reports_answers", False)

    def settle(index: int, outcome: EssayOutcome) -> None:
        if index in outcomes:
            return  # a batch retried in halves reports an answer again: the first one stands
        outcomes[index] = outcome
        if on_outcome is not None:
            on_outcome(outcome)
    by_rubric: dict[tuple[str, str], list[_Prepared]] = defaultdict(list)
    takes_adapters = adapters_dir is not None and hasattr(engine, "use_adapter")
    for index, job in enumerate(jobs):
        try:
            prepared = _prepare(index, job)
        except Exception as exc:  # a bad rubric reference or text fails this essay, not the batch
            logger.warning("essay %s could not be prepared: %s", job.essay_id, exc)
            settle(index, EssayOutcome(essay_id=job.essay_id, error=f"预处理失败: {exc}"))
            continue
        if prepared.messages is None:
            settle(index, _outcome(prepared, compose_score(prepared.rubric, prepared.analysis, None, []), None))
        else:
            prepared.adapter = job.adapter if takes_adapters else None
            by_rubric[(prepared.adapter or "", prepared.rubric.ref)].append(prepared)
    names = _names(engine) if by_rubric else (None, None)
    for (adapter, _), items in sorted(by_rubric.items(), key=lambda group: group[0]):  # one switch per adapter
        rubric = items[0].rubric
        if hasattr(engine, "use_adapter"):
            path = adapters_dir / adapter if adapter and adapters_dir else None
            switched_on = engine.use_adapter(adapter or None, path)
            for item in items:
                item.adapter = switched_on  # None if its files were gone: the grade must not claim it
        conversations = [item.messages for item in items]
        options: dict[str, Any] = {}
        if _takes_quotes(engine):  # quotations can only be the essay's own text
            options["quotes"] = [item.shown for item in items]
        if streams:
            def answered(position: int, generation: Generation, items: list[_Prepared] = items) -> None:
                settle(items[position].index, _finish(items[position], generation, *names))

            generations = engine.generate_json(conversations, answer_schema(rubric), on_answer=answered,  # type: ignore[call-arg, arg-type]
                                               **options)
        else:
            generations = engine.generate_json(conversations, answer_schema(rubric), **options)  # type: ignore[arg-type]
        for item, generation in zip(items, generations, strict=True):
            settle(item.index, _finish(item, generation, *names))
    return [outcomes[i] for i in range(len(jobs))]


def _takes_quotes(engine: Engine) -> bool:
    """Whether the engine's generate_json keeps quotations to given texts (``quotes``; the transformers engine)."""
    try:
        return "quotes" in inspect.signature(engine.generate_json).parameters
    except (TypeError, ValueError):
        return False


def _names(engine: Engine) -> tuple[str, str]:
    """The model and the engine that generate, as grades record them: the engine is what ``describe()`` names
    (its ``module:Class`` if it names none)."""
    info = engine.describe()
    kind = type(engine)
    return str(info.get("model", "")), str(info.get("engine") or f"{kind.__module__}:{kind.__qualname__}")


def prepare_for_training(job: EssayJob, target_texts: Sequence[str]) -> tuple[list[dict[str, str]] | None,
                                                                             tuple[str, ...]]:
    """The conversation the model gets for ``job`` at grading time, and ``target_texts`` (a teacher's comment and
    quotes) masked with the same placeholders, so a training example sees exactly what grading shows."""
    prepared = _prepare(0, job, target_texts)
    return prepared.messages, prepared.masked_extras


def _prepare(index: int, job: EssayJob, extras: Sequence[str] = ()) -> _Prepared:
    rubric = cached_rubric(job.rubric_id, job.rubric_version)
    analysis = analyse(job.text, rubric, job.required_length)
    masker = Deidentifier(job.person_names, job.school_names)
    # Title and body are masked together so one person always gets one placeholder; extras (a training target's
    # texts) come after them, so the essay's placeholders are numbered as when it is masked alone.
    title, body = analysis.title, analysis.body
    # What may instruct the grader never reaches the model: for a flagged essay every suspected passage (its score
    # is withheld for review as well), for any essay the sentences that name a top score or deductions.
    withhold = withhold_suspected if analysis.injection_flags else strip_score_talk
    title = (withhold(title)[0].strip() or None) if title else None
    body = withhold(body)[0]
    joined = f"{title}\n{body}" if title else body
    masked = masker.mask(EXTRA_SEPARATOR.join([joined, *extras]))
    masked_text, *masked_extras = masked.text.split(EXTRA_SEPARATOR)
    if title:
        masked_title, _, masked_body = masked_text.partition("\n")
    else:
        masked_title, masked_body = None, masked_text
    messages = None
    if needs_model(analysis):
        messages = render_grading_messages(
            rubric, assignment_prompt=job.assignment_prompt, genre=job.genre,
            required_length=job.required_length, title=masked_title, body=masked_body,
            facts=analysis.facts(),
        )
    return _Prepared(index, job, rubric, analysis, masked.mapping, messages, tuple(masked_extras),
                     shown=tuple(text for text in (masked_title, masked_body) if text))


def _finish(item: _Prepared, generation: Generation, model_name: str | None, engine_name: str | None) -> EssayOutcome:
    if generation.error:
        return EssayOutcome(essay_id=item.job.essay_id, error=f"生成失败: {generation.error}")
    try:
        answer = parse_answer(generation.text, item.rubric)
    except AnswerInvalid as exc:
        return EssayOutcome(
            essay_id=item.job.essay_id, error=f"模型输出无效: {exc}", forced_close=generation.forced_close
        )
    answer = _unmask_answer(answer, item.masker_mapping)
    located, dropped = locate_quotes(item.analysis.text, answer.get("errors", []))
    score = compose_score(item.rubric, item.analysis, answer, located)
    outcome = _outcome(item, score, answer, dropped=dropped, located=located)
    outcome.model_name, outcome.engine_name, outcome.adapter = model_name, engine_name, item.adapter
    outcome.prompt_tokens, outcome.generated_tokens = generation.prompt_tokens, generation.new_tokens
    outcome.latency_ms = int(generation.latency_s * 1000)
    outcome.forced_close = generation.forced_close
    outcome.confidence = grade_confidence(generation.text, generation.token_ends, generation.token_probs,
                                          [dim.key for dim in item.rubric.dimensions])
    return outcome


def _unmask_answer(answer: Any, mapping: dict[str, str]) -> Any:
    """Put real names back into every string of the answer (for display and for locating quotes)."""
    from shared.deidentify import unmask

    if isinstance(answer, str):
        return unmask(answer, mapping)
    if isinstance(answer, list):
        return [_unmask_answer(value, mapping) for value in answer]
    if isinstance(answer, dict):
        return {key: _unmask_answer(value, mapping) for key, value in answer.items()}
    return answer


def _outcome(
    item: _Prepared, score: ScoreResult, answer: dict[str, Any] | None, *, dropped: int = 0,
    located: Sequence[LocatedError] = (),
) -> EssayOutcome:
    rubric, analysis = item.rubric, item.analysis
    findings = merge_findings(analysis.mechanical_errors, located)
    evidence = {
        dim.key: list(answer[dim.key].get("evidence", [])) for dim in rubric.dimensions
    } if answer else {}
    return EssayOutcome(
        essay_id=item.job.essay_id,
        rubric_id=rubric.id,
        rubric_version=rubric.version,
        prompt_version=PROMPT_VERSION if answer else None,
        title=analysis.title,
        text=analysis.text,
        char_count=analysis.char_count,
        dimension_scores=dict(score.dimension_scores),
        model_scores=dict(score.model_scores),
        bands=dict(score.bands),
        evidence=evidence,
        raw_total=score.raw_total,
        total=score.total,
        caps=list(score.caps),
        comment=(answer or {}).get("comment", "") if answer else _no_model_comment(analysis),
        errors=findings,
        deductions=list(score.deductions),
        flags=list(analysis.injection_flags),
        needs_review=bool(analysis.injection_flags) and answer is not None,
        dropped_quotes=dropped,
    )


def _no_model_comment(analysis: Analysis) -> str:
    if analysis.char_count == 0:
        return "空白卷，按规定记 0 分。"
    return f"全文仅 {analysis.char_count} 字，按残篇规定评分，未送模型评阅。"
