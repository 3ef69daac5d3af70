"""The engine's confidence measurement on the tiny model: every generated token carries the probability greedy
decoding gave it under the grammar's mask, checked against an independent forward pass, and the grade's confidence
is the product over its score digits."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import xgrammar as xgr

from services.worker.confidence import dimension_confidences, grade_confidence, score_spans
from services.worker.engine.interface import EngineConfig
from services.worker.engine.transformers_engine import TransformersEngine
from shared.prompts.answer_schema import answer_schema
from shared.prompts.rubric import load_rubric
from tests.integration.test_engine import _essay_conversations

RUBRIC = load_rubric("gaokao-national")
KEYS = [dim.key for dim in RUBRIC.dimensions]


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> Iterator[TransformersEngine]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield TransformersEngine.load(EngineConfig(model=str(tiny_model_dir), device="cpu", batch_token_budget=200_000))
    torch.set_num_threads(before)


def _independent_probability(engine: TransformersEngine, prompt: list[int], new: list[int], k: int,
                             grammar: xgr.CompiledGrammar) -> float:
    """p(new[k]) from one forward pass over prompt + new[:k], masked by a fresh matcher fed new[:k]."""
    matcher = xgr.GrammarMatcher(grammar)
    for token in new[:k]:
        assert matcher.accept_token(token)
    bitmask = xgr.allocate_token_bitmask(1, engine._vocab().info.vocab_size)
    matcher.fill_next_token_bitmask(bitmask)
    with torch.inference_mode():
        logits = engine.model(torch.tensor([prompt + new[:k]])).logits[:, -1, :].float()
    xgr.apply_token_bitmask_inplace(logits, bitmask)
    return float(torch.softmax(logits, dim=-1)[0, new[k]])


def test_token_probabilities_and_score_confidence(engine: TransformersEngine) -> None:
    conversations = _essay_conversations(2, seed=11)
    schema = answer_schema(RUBRIC)
    generations = engine.generate_json(conversations, schema)
    grammar = engine._plan(schema, True).grammar
    assert grammar is not None
    for conversation, generation in zip(conversations, generations, strict=True):
        assert generation.error is None and generation.finished
        assert len(generation.token_probs) == len(generation.token_ends) == generation.new_tokens
        assert all(0.0 < p <= 1.0 for p in generation.token_probs)
        assert generation.token_ends[-1] == len(generation.text.encode("utf-8"))
        text = engine.tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
        prompt = engine.tokenizer(text, add_special_tokens=False)["input_ids"]
        pieces = engine._vocab().pieces
        spans = score_spans(generation.text, KEYS)
        assert set(spans) == set(KEYS)
        # check every token that writes a score digit against an independent masked forward pass
        generated = _generated_tokens(engine, conversation, schema)
        assert b"".join(pieces[t] for t in generated) == generation.text.encode("utf-8")
        begin = 0
        checked = 0
        for k, end in enumerate(generation.token_ends):
            if any(begin < stop and end > start for start, stop in spans.values()) and end > begin:
                expected = _independent_probability(engine, prompt, generated, k, grammar)
                assert math.isclose(generation.token_probs[k], expected, rel_tol=1e-3, abs_tol=1e-4), (k, expected)
                checked += 1
            begin = end
        assert checked >= len(KEYS)
        per_dimension = dimension_confidences(generation.text, generation.token_ends, generation.token_probs, KEYS)
        confidence = grade_confidence(generation.text, generation.token_ends, generation.token_probs, KEYS)
        assert confidence is not None and 0.0 < confidence <= 1.0
        assert confidence == round(min(per_dimension.values()), 4)


def _generated_tokens(engine: TransformersEngine, conversation: list[dict[str, str]],
                      schema: dict[str, object]) -> list[int]:
    """The token ids greedy decoding produced for one conversation (the engine returns only their text)."""
    captured: list[list[int]] = []
    original = engine.model.generate

    def spy(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        output = original(*args, **kwargs)
        width = kwargs["input_ids"].shape[1]  # type: ignore[union-attr]
        captured.extend(row[width:].tolist() for row in output)
        return output

    engine.model.generate = spy  # type: ignore[method-assign]
    try:
        engine.generate_json([conversation], schema)  # type: ignore[arg-type]
    finally:
        engine.model.generate = original  # type: ignore[method-assign]
    tokens = captured[0]
    stops = [k for k, token in enumerate(tokens) if token in engine.stop_ids]
    return tokens[: stops[0] + 1] if stops else tokens
