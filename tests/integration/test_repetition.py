"""Repeat blocking inside JSON strings: the ban logic on hand-made token runs, and on the tiny models (each
tokenizer) a model pushed to loop copies no run of 6 characters inside a string, while its answers still parse."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from transformers import LogitsProcessor

from services.worker.engine import EngineConfig
from services.worker.engine.repetition import StringRepeatBlocker
from services.worker.engine.transformers_engine import TransformersEngine
from shared.prompts.answer_schema import answer_schema, parse_answer
from shared.prompts.render import render_grading_messages
from shared.prompts.rubric import load_rubric
from tests.essays import make_essays

PIECES = (b'{"c": "', "读".encode(), "书".encode(), "使".encode(), b'"', b"}", b"\\", b'\\"')
OPEN, DU, SHU, SHI, QUOTE, BRACE, BACKSLASH, ESCAPED_QUOTE = range(len(PIECES))


def _banned_after(tokens: list[int], min_chars: int = 3) -> set[int]:
    """Feed ``tokens`` through a one-row blocker; the ids it bans for the next step."""
    blocker = StringRepeatBlocker(PIECES, min_chars, rows=1)
    scores = torch.zeros(1, len(PIECES))
    blocker(torch.tensor([[0]]), scores.clone())
    for step in range(len(tokens)):
        scores = blocker(torch.tensor([tokens[: step + 1]]), torch.zeros(1, len(PIECES)))
    return {i for i in range(len(PIECES)) if scores[0, i] == float("-inf")}


def test_a_second_copy_of_a_run_is_banned_inside_a_string_only() -> None:
    assert _banned_after([OPEN, DU, SHU, DU]) == set(), "读书读: no run of 3 repeated yet"
    assert _banned_after([OPEN, DU, SHU, DU, SHU]) == {DU}, "读书读书 → a third 读 would copy 读书读"
    assert _banned_after([OPEN, DU, SHU, DU, SHU], min_chars=5) == set(), "读书读 is only 3 characters"
    assert _banned_after([OPEN, DU, SHU, SHI, DU, SHU]) == {SHI}, "读书使读书 → 使 would repeat 读书使"
    assert _banned_after([OPEN, DU, SHU, DU, SHU, QUOTE]) == set(), "outside a string nothing is banned"
    assert _banned_after([OPEN, DU, SHU, QUOTE, BRACE, OPEN, DU, SHU]) == set(), "each string counts on its own"
    assert _banned_after([OPEN, DU, ESCAPED_QUOTE, DU, ESCAPED_QUOTE]) == {DU}, "an escaped quote stays inside"


def test_a_ban_that_would_leave_no_token_is_dropped() -> None:
    blocker = StringRepeatBlocker(PIECES, 2, rows=1)
    masked = torch.full((1, len(PIECES)), float("-inf"))
    masked[0, DU] = 0.0  # the grammar allows 读 only
    for step, tokens in enumerate(([0], [OPEN], [OPEN, DU], [OPEN, DU, DU])):
        out = blocker(torch.tensor([tokens]), masked.clone())
        assert torch.isfinite(out[0, DU]), f"step {step}: the only allowed token stays allowed"


class _Looper(LogitsProcessor):
    """Pushes every row to write 读书读书… (the tokens of 读书 in turn) wherever the grammar lets it."""

    def __init__(self, cycle: list[int]) -> None:
        self.cycle = cycle

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for row, last in enumerate(input_ids[:, -1].tolist()):
            following = self.cycle[(self.cycle.index(last) + 1) % len(self.cycle)] if last in self.cycle else None
            scores[row, following if following is not None else self.cycle[0]] += 1000
        return scores


COMMENT_SCHEMA = {
    "type": "object", "properties": {"comment": {"type": "string", "minLength": 1, "maxLength": 40}},
    "required": ["comment"], "additionalProperties": False,
}


def _looping(model_dir: Path) -> TransformersEngine:
    engine = TransformersEngine.load(EngineConfig(model=str(model_dir), device="cpu"))
    generate = engine.model.generate
    cycle = engine.tokenizer.encode("读书", add_special_tokens=False)
    assert len(set(cycle)) == len(cycle), cycle

    def looping(*args: Any, logits_processor: list[LogitsProcessor] | None = None, **kwargs: Any) -> Any:
        return generate(*args, logits_processor=[_Looper(cycle), *(logits_processor or [])], **kwargs)

    engine.model.generate = looping  # type: ignore[method-assign]
    return engine


def _with_blocking(engine: TransformersEngine, min_chars: int) -> TransformersEngine:
    return TransformersEngine(dataclasses.replace(engine.config, no_repeat_chars=min_chars), engine.model,
                              engine.tokenizer, engine.device, engine.dtype)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _most_repeated(text: str, size: int = 6) -> int:
    """How often the most frequent run of ``size`` characters occurs in ``text`` (overlaps counted)."""
    runs = [text[i:i + size] for i in range(len(text) - size + 1)]
    return max((runs.count(run) for run in runs), default=0)


def _conversations(count: int) -> list[Any]:
    rubric = load_rubric("gaokao-national")
    conversations = []
    for text in make_essays(count, seed=47):
        title, _, body = text.partition("\n")
        conversations.append(render_grading_messages(
            rubric, assignment_prompt="以“读书”为题写一篇议论文。", genre="议论文", required_length=800,
            title=title, body=body, facts={"字数": len(body)}))
    return conversations


def test_every_tokenizer_is_held_to_the_same_characters(any_tiny_model_dir: Path) -> None:
    """Byte-level tokenizers spell 读书 in 4 tokens, Qwen's in 1 or 2: the repeat is counted in characters."""
    engine = _looping(any_tiny_model_dir)
    worst = {}
    for min_chars in (0, 6):
        (answer,) = _with_blocking(engine, min_chars).generate_json(_conversations(1), COMMENT_SCHEMA)
        assert answer.finished and answer.error is None
        comment = json.loads(answer.text)["comment"]
        worst[min_chars] = _most_repeated(comment)
    assert worst[0] >= 3, f"without blocking the pushed model loops ({worst})"
    assert worst[6] == 1, f"with blocking no run of 6 characters occurs twice ({worst})"


def test_a_looping_model_copies_no_run_and_its_answers_still_parse(tiny_model_dir: Path) -> None:
    rubric = load_rubric("gaokao-national")
    schema = answer_schema(rubric)
    engine = _looping(tiny_model_dir)
    worst = {}
    for min_chars in (0, 6):
        strings = []
        for generation in _with_blocking(engine, min_chars).generate_json(_conversations(2), schema):
            assert generation.finished and generation.error is None
            parse_answer(generation.text, rubric)
            strings += list(_strings(json.loads(generation.text)))
        worst[min_chars] = max((_most_repeated(s) for s in strings), default=0)
    assert worst[0] >= 3, f"without blocking the pushed model loops ({worst})"
    assert worst[6] == 1, f"with blocking no run of 6 characters occurs twice in a string ({worst})"
