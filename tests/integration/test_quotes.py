"""Quotations that can only be quotations: the continuation logic on a hand-made vocabulary, then on the tiny models
(each tokenizer) every evidence item and error original of an answer is the essay's own text when the engine is
given the essay, while answers still parse; and through the pipeline no evidence is flagged as not a quotation."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import LogitsProcessor

from services.worker.engine import EngineConfig
from services.worker.engine.quotes import QuoteConstrainer, quote_sources
from services.worker.engine.transformers_engine import TransformersEngine
from services.worker.evaluation.quality import NOT_A_QUOTE, degenerate_output
from services.worker.jobs import EssayJob
from services.worker.pipeline import grade_jobs
from shared.prompts.answer_schema import answer_schema, parse_answer
from shared.prompts.render import render_grading_messages
from shared.prompts.rubric import load_rubric
from tests.essays import make_essays

PIECES = (b"", "读".encode(), "书".encode(), "使".encode(), "人".encode(), b'"', b'",', "书\"".encode(), b"x")


def _allowed(quote: str, essay: str = "读书使人") -> set[bytes]:
    constrainer = QuoteConstrainer(PIECES, [quote_sources([essay])])
    return {PIECES[i] for i in constrainer.continuations(quote_sources([essay]), quote.encode())}


def test_a_quotation_continues_a_passage_of_the_essay_or_closes() -> None:
    assert _allowed("") == {"读".encode(), "书".encode(), "使".encode(), "人".encode(), "书\"".encode()}
    assert _allowed("读") == {"书".encode(), "书\"".encode(), b'"', b'",'}, "读 → 书 next, or close after 读"
    assert _allowed("读书使人") == {b'"', b'",'}, "the paragraph ends: only closing"
    assert _allowed("人读") == set(), "not in the essay: nothing (the row is then left to the grammar)"
    assert _allowed("书", essay="读书\n使人") == {b'"', b'",'}, "a quotation does not run across paragraphs"


class _Opener(LogitsProcessor):
    """Pushes the model to open a list with a string (`["`, or `[` then `"`) wherever the grammar lets it: it then has
    to quote something."""

    def __init__(self, pieces: tuple[bytes, ...], rows: set[int] | None = None) -> None:
        self.pieces, self.rows = pieces, rows  # rows: only these (None: all)
        self.opening = torch.tensor([1000.0 if re.fullmatch(rb'\s*\[\s*"?', piece) else 0.0 for piece in pieces])
        self.quote = torch.tensor([1000.0 if piece == b'"' else 0.0 for piece in pieces])

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        width = scores.shape[1]
        for row, last in enumerate(input_ids[:, -1].tolist()):
            if self.rows is not None and row not in self.rows:
                continue
            after_bracket = self.pieces[last].rstrip().endswith(b"[") if last < len(self.pieces) else False
            scores[row] += (self.quote if after_bracket else self.opening)[:width].to(scores.device)
        return scores


@pytest.fixture(scope="module")
def quoting_engine(any_tiny_model_dir: Path) -> Iterator[TransformersEngine]:
    engine = TransformersEngine.load(EngineConfig(model=str(any_tiny_model_dir), device="cpu"))
    pieces = engine._vocab().pieces
    bias = _Opener(pieces + (b"",) * (engine.model.config.vocab_size - len(pieces)))
    generate = engine.model.generate

    def opening(*args: Any, logits_processor: list[LogitsProcessor] | None = None, **kwargs: Any) -> Any:
        return generate(*args, logits_processor=[bias, *(logits_processor or [])], **kwargs)

    engine.model.generate = opening  # type: ignore[method-assign]
    yield engine
    engine.model.generate = generate  # type: ignore[method-assign]


def _quotations(answer: dict) -> list[str]:
    found = [item for key in ("content", "expression", "development") for item in answer[key]["evidence"]]
    return found + [error["original"] for error in answer["errors"]]


def test_every_quotation_is_the_essays_text_on_every_tokenizer(quoting_engine: TransformersEngine) -> None:
    rubric = load_rubric("gaokao-national")
    schema = answer_schema(rubric)
    essays = [text.partition("\n") for text in make_essays(2, seed=53)]
    conversations = [render_grading_messages(
        rubric, assignment_prompt="以“读书”为题写一篇议论文。", genre="议论文", required_length=800, title=title,
        body=body, facts={"字数": len(body)}) for title, _, body in essays]
    shown = [[title, body] for title, _, body in essays]
    outside: dict[bool, int] = {}
    for constrain in (False, True):
        engine = TransformersEngine(dataclasses.replace(quoting_engine.config, quotes_from_essay=constrain),
                                    quoting_engine.model, quoting_engine.tokenizer, quoting_engine.device,
                                    quoting_engine.dtype)
        outside[constrain] = 0
        quoted = 0
        for generation, texts in zip(engine.generate_json(conversations, schema, quotes=shown), shown, strict=True):
            assert generation.finished and generation.error is None
            parse_answer(generation.text, rubric)
            paragraphs = [line for text in texts for line in text.split("\n")]
            for quotation in _quotations(json.loads(generation.text)):
                quoted += 1
                outside[constrain] += not any(quotation in paragraph for paragraph in paragraphs)
        if constrain:
            assert quoted > 0, "the answers quote something"
    assert outside[True] == 0, f"constrained, every quotation is the essay's text ({outside})"
    assert outside[False] > 0, f"the random model, unconstrained, writes text that is not the essay's ({outside})"


def test_graded_evidence_is_never_flagged_as_not_a_quotation(tiny_model_dir: Path) -> None:
    engine = TransformersEngine.load(EngineConfig(model=str(tiny_model_dir), device="cpu"))
    jobs = [EssayJob(essay_id=i, text=text, assignment_prompt="以“读书”为题写一篇议论文。", genre="议论文",
                     required_length=800, rubric_id="gaokao-national", person_names=("张三",))
            for i, text in enumerate(make_essays(3, seed=59))]
    for outcome, job in zip(grade_jobs(engine, jobs), jobs, strict=True):
        assert outcome.error is None, outcome.error
        assert NOT_A_QUOTE not in degenerate_output(outcome, job.text, job.assignment_prompt)
        assert outcome.dropped_quotes == 0, "every error's original was found in the essay"
