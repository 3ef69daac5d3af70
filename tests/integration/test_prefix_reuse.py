"""Shared-prefix reuse in the transformers engine: the rubric's system prompt is prefilled once and its keys and values
reused for every essay (within a batch and across batches), with greedy answers identical to full prefill."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.worker.engine import EngineConfig
from services.worker.engine.transformers_engine import TransformersEngine
from shared.prompts.answer_schema import answer_schema
from shared.prompts.rubric import load_rubric
from tests.integration.test_engine import _essay_conversations


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> TransformersEngine:
    return TransformersEngine.load(
        EngineConfig(model=str(tiny_model_dir), device="cpu", batch_token_budget=200_000, max_new_tokens=400)
    )


def _common_prefix(prompts: list[list[int]]) -> int:
    length = 0
    while all(len(p) > length + 1 and p[length] == prompts[0][length] for p in prompts):
        length += 1
    return length


def test_reused_prefix_gives_the_answers_of_full_prefill(engine: TransformersEngine) -> None:
    schema = answer_schema(load_rubric("gaokao-national"))
    conversations = _essay_conversations(5, seed=47)
    prompts = [
        engine.tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=True)["input_ids"]
        for c in conversations
    ]
    shared = _common_prefix(prompts)
    assert shared > 500  # the rubric's system prompt and the start of the user turn

    engine.reuse_prefix, engine.prefilled_tokens = False, 0
    full = engine.generate_json(conversations, schema)
    assert engine.prefilled_tokens == sum(len(p) for p in prompts)

    engine.reuse_prefix, engine.prefilled_tokens, engine._prefix = True, 0, None
    reused = engine.generate_json(conversations, schema)
    assert engine.prefilled_tokens == shared + sum(len(p) - shared for p in prompts)
    assert [g.text for g in reused] == [g.text for g in full]
    assert all(g.finished and g.error is None for g in reused)

    # A later batch of the same rubric, one essay alone: only its own tokens are prefilled.
    engine.prefilled_tokens = 0
    alone = engine.generate_json(conversations[2:3], schema)
    assert engine.prefilled_tokens == len(prompts[2]) - shared
    assert alone[0].text == full[2].text


def test_a_different_prefix_replaces_the_cached_one(engine: TransformersEngine) -> None:
    schema = answer_schema(load_rubric("gaokao-national"))
    conversations = _essay_conversations(2, seed=53)
    other_rubric = [[{**m, "content": "另一份评分标准。" + m["content"]} if m["role"] == "system" else m for m in c]
                    for c in conversations]
    engine.reuse_prefix = False
    expected = engine.generate_json(other_rubric, schema)
    engine.reuse_prefix = True
    engine.generate_json(conversations, schema)
    assert [g.text for g in engine.generate_json(other_rubric, schema)] == [g.text for g in expected]
