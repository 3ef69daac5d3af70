"""The llama.cpp engine on tiny GGUF files converted at test time from the tiny random models (Qwen2 with Qwen's
tokenizer; a Llama with a byte-level tokenizer of few merges and Llama 3's special tokens): the same contract as the
transformers engine (every answer parses and validates, closes within its budget, bounds hold, failures stay alone)."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import torch
from click.testing import CliRunner
from transformers import AutoModelForCausalLM, AutoTokenizer

from services.worker.engine import EngineConfig, ModelUnavailable
from services.worker.engine.gguf_convert import convert
from services.worker.engine.interface import DEFAULT_ENGINE_CLASS, LLAMACPP_ENGINE_CLASS, engine_class_for
from services.worker.engine.llamacpp_engine import LlamaCppEngine, _byte_level_bytes
from services.worker.engine.schema_bounds import fit_schema_to_budget, max_tokens_for_schema
from services.worker.jobs import EssayJob
from services.worker.pipeline import grade_jobs
from services.worker.runtime import load_engine
from shared.prompts.answer_schema import answer_schema, parse_answer
from shared.prompts.rubric import load_rubric
from shared.settings import Settings
from tests.essays import make_essays
from tests.integration.test_engine import CHATTY_SCHEMA, CONVERSATIONS, GRADING_SCHEMA
from tests.tiny_model import build_tiny_model

TRAITS = ("content", "expression", "development")


@pytest.fixture(scope="module", params=["qwen", "small-byte-level"])
def source_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Hugging Face directory each GGUF is converted from."""
    if request.param == "qwen":
        return request.getfixturevalue("tiny_model_dir")
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama-gguf"), "small-byte-level")


@pytest.fixture(scope="module")
def engine(source_dir: Path, tiny_gguf: Path, tiny_model_dir: Path) -> LlamaCppEngine:
    path = tiny_gguf if source_dir == tiny_model_dir else convert(source_dir, source_dir.parent / "tiny.gguf", "f32")
    config = EngineConfig(model=str(path), threads=1, parallel=4, batch_token_budget=4 * 12288, max_new_tokens=1024)
    return LlamaCppEngine.load(config)


def _with(engine: LlamaCppEngine, **changes: Any) -> LlamaCppEngine:
    """The same llama.cpp server under a different engine config."""
    config = dataclasses.replace(engine.config, **changes)
    other = LlamaCppEngine(config, engine.server, engine.facts, engine.threads, engine.parallel)
    other.logit_bias = engine.logit_bias
    return other


def test_converted_weights_compute_what_transformers_computes(engine: LlamaCppEngine, source_dir: Path) -> None:
    """Same tokens, same next-token distribution: the converter keeps weights, tokenizer and template."""
    tokenizer = AutoTokenizer.from_pretrained(source_dir)
    model = AutoModelForCausalLM.from_pretrained(source_dir, dtype=torch.float32)
    for conversation in CONVERSATIONS[:3]:
        text = tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
        assert engine.render(conversation) == text
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        response = engine.server.handle_completions(
            {"prompt": engine.render(conversation), "n_predict": 1, "n_probs": 5, "temperature": 0.0, "top_k": 1}
        )
        assert response["usage"]["prompt_tokens"] == len(ids)
        top = response["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
        with torch.inference_mode():
            expected = torch.log_softmax(model(torch.tensor([ids])).logits[0, -1], dim=-1)
        # llama.cpp keeps its KV cache in f16: a thousandth or two apart, where a wrong weight moves tenths.
        assert [entry["id"] for entry in top] == expected.topk(5).indices.tolist()
        for entry in top:
            assert math.isclose(entry["logprob"], expected[entry["id"]].item(), abs_tol=5e-3)


def test_every_answer_is_schema_valid_json(engine: LlamaCppEngine) -> None:
    answers = engine.generate_json(CONVERSATIONS, GRADING_SCHEMA)
    assert len(answers) == len(CONVERSATIONS)
    for generation in answers:
        assert generation.error is None and generation.finished and not generation.forced_close
        answer = json.loads(generation.text)
        jsonschema.validate(answer, GRADING_SCHEMA)
        assert 0 < generation.new_tokens <= max_tokens_for_schema(GRADING_SCHEMA) and generation.latency_s > 0


def test_input_order_is_restored(engine: LlamaCppEngine) -> None:
    """By prompt length (each conversation has its own); the texts are not compared: llama.cpp's arithmetic depends on
    which slots decode together, and the tiny random model has near-ties that flip (README)."""
    conversations = CONVERSATIONS[:6]
    forward = engine.generate_json(conversations, GRADING_SCHEMA)
    backward = engine.generate_json(conversations[::-1], GRADING_SCHEMA)
    assert len({g.prompt_tokens for g in forward}) == len(conversations)
    assert [g.prompt_tokens for g in backward] == [g.prompt_tokens for g in forward][::-1]


def test_real_length_essays_are_graded(engine: LlamaCppEngine) -> None:
    rubric = load_rubric("gaokao-national")
    jobs = [
        EssayJob(essay_id=i, text=text, assignment_prompt="以“读书”为题写一篇议论文。", genre="议论文",
                 required_length=800, rubric_id="gaokao-national")
        for i, text in enumerate(make_essays(2, seed=41))
    ]
    outcomes = grade_jobs(engine, jobs)  # type: ignore[arg-type]
    for outcome in outcomes:
        assert outcome.error is None, outcome.error
        assert outcome.engine_name == "llamacpp+gbnf"
        for dimension in rubric.dimensions:
            assert 0 <= outcome.dimension_scores[dimension.key] <= dimension.max
        assert 0 <= outcome.total <= rubric.total and outcome.comment


def test_the_closing_guard_finishes_answers_that_run_out_of_tokens(engine: LlamaCppEngine) -> None:
    free = engine.generate_json(CONVERSATIONS[:3], CHATTY_SCHEMA)
    budget = 36  # the narrowest CHATTY_SCHEMA answer takes 33 tokens at most; these answers take more
    assert fit_schema_to_budget(CHATTY_SCHEMA, budget) is not None
    assert all(g.finished and g.new_tokens > budget for g in free)
    for generation in _with(engine, max_new_tokens=budget).generate_json(CONVERSATIONS[:3], CHATTY_SCHEMA):
        assert generation.finished and generation.forced_close and generation.new_tokens <= budget
        jsonschema.validate(json.loads(generation.text), CHATTY_SCHEMA)


def _tempt(engine: LlamaCppEngine, pattern: str, bias: float) -> dict[int, float]:
    return {i: bias for i, token in enumerate(engine.facts.tokens) if re.fullmatch(pattern, token)}


def test_a_score_never_exceeds_its_maximum(engine: LlamaCppEngine) -> None:
    """Pushed toward digits, the model writes numbers far past 20 when free; under the grammar no score does."""
    schema = answer_schema(load_rubric("gaokao-national"))
    tempted = _with(engine, max_new_tokens=40)
    tempted.logit_bias = _tempt(engine, r"[2-9][0-9]*", 30.0)
    free = tempted.generate_json(CONVERSATIONS[:1], schema, constrained=False)
    numbers = re.findall(r"[0-9]+", free[0].text)
    assert numbers and int(numbers[0]) > 20
    for generation in _with(tempted, max_new_tokens=400).generate_json(CONVERSATIONS[:4], schema):
        answer = json.loads(generation.text)
        assert [0 <= answer[trait]["score"] <= 20 for trait in TRAITS] == [True] * 3


def _lone_bytes(engine: LlamaCppEngine) -> dict[int, float]:
    """Single non-ASCII bytes: lead bytes of every length and continuation bytes, overlong and out-of-range ones too."""
    tempting = {}
    for token_id, token in enumerate(engine.facts.tokens):
        raw = _byte_level_bytes(token)
        if raw is not None and len(raw) == 1 and raw[0] >= 0x80:
            tempting[token_id] = 1000.0 if raw[0] in (0xC0, 0xE0, 0xF0, 0xF4, 0xF5) else 900.0
    return tempting


@pytest.mark.parametrize("kind", ["special", "bytes"])
def test_no_token_the_grammar_allows_breaks_the_answer(engine: LlamaCppEngine, kind: str) -> None:
    """Pushed toward special tokens, or toward bytes that make no character (or one llama.cpp's grammar would read
    otherwise), the answers still parse, fit their lengths and hold neither."""
    rubric = load_rubric("gaokao-national")
    tempted = _with(engine, max_new_tokens=400)
    tempted.logit_bias = _tempt(engine, r"<\|.*\|>", 1000.0) if kind == "special" else _lone_bytes(engine)
    assert tempted.logit_bias
    for generation in tempted.generate_json(CONVERSATIONS[:2], answer_schema(rubric)):
        assert generation.finished and generation.error is None
        parse_answer(generation.text, rubric)
        assert "<|" not in generation.text and "\ufffd" not in generation.text


def test_a_conversation_too_long_for_the_context_fails_alone(engine: LlamaCppEngine) -> None:
    small = _with(engine)
    too_long = [{"role": "user", "content": "读书使人明智。" * 8000}]  # past a slot's 12288 tokens
    results = small.generate_json([CONVERSATIONS[0], too_long, CONVERSATIONS[1]], GRADING_SCHEMA)
    assert results[1].error is not None and not results[1].finished
    assert [r.error for r in (results[0], results[2])] == [None, None]
    jsonschema.validate(json.loads(results[2].text), GRADING_SCHEMA)


def test_a_time_limit_is_not_swallowed(engine: LlamaCppEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    class SoftTimeLimitExceeded(Exception):  # what Celery raises inside a task that ran out of time
        pass

    def out_of_time(*args: Any) -> Any:
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(engine, "_complete", out_of_time)
    with pytest.raises(SoftTimeLimitExceeded):
        engine.generate_json(CONVERSATIONS[:2], GRADING_SCHEMA)


def test_describe(engine: LlamaCppEngine) -> None:
    info = engine.describe()
    assert (info["engine"], info["device"], info["dtype"], info["threads"], info["parallel"]) == (
        "llamacpp+gbnf", "cpu", "all_f32", 1, 4
    )
    assert info["model"] == engine.config.model and info["parameters"] > 0 and info["memory_mb"] > 0


def test_a_gguf_path_selects_the_llamacpp_engine(tiny_gguf: Path) -> None:
    assert engine_class_for(Settings(model=str(tiny_gguf))) == LLAMACPP_ENGINE_CLASS
    assert engine_class_for(Settings(model="/models/qwen")) == DEFAULT_ENGINE_CLASS
    assert engine_class_for(Settings(model="/models/qwen", engine="llamacpp")) == LLAMACPP_ENGINE_CLASS
    assert engine_class_for(Settings(model=str(tiny_gguf), engine="transformers")) == DEFAULT_ENGINE_CLASS
    loaded = load_engine(Settings(model=str(tiny_gguf), device="cpu", cpu_threads=1, parallel_slots=2))
    assert type(loaded) is LlamaCppEngine and (loaded.threads, loaded.parallel) == (1, 2)


def test_missing_gguf_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="yuejuan model convert"):
        LlamaCppEngine.load(EngineConfig(model=str(tmp_path / "none.gguf")))


def test_model_check_and_convert_commands(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.cli import main

    runner = CliRunner()
    out = tmp_path / "tiny-q8.gguf"
    converted = runner.invoke(main, ["model", "convert", str(tiny_model_dir), "--out", str(out), "--quant", "Q8_0"])
    assert converted.exit_code == 0, converted.output
    assert f"YUEJUAN_MODEL={out}" in converted.output and out.stat().st_size > 0
    refused = runner.invoke(main, ["model", "convert", str(tiny_model_dir), "--out", str(tmp_path / "k.gguf"),
                                   "--quant", "Q4_K_M"])
    assert refused.exit_code != 0 and "llama-quantize" in refused.output and not (tmp_path / "k.gguf").exists()
    spm = build_tiny_model(tmp_path / "spm", "byte-fallback")
    refused = runner.invoke(main, ["model", "convert", str(spm), "--out", str(tmp_path / "s.gguf")])
    assert refused.exit_code != 0 and "tokenizer.json" in refused.output and not (tmp_path / "s.gguf").exists()

    monkeypatch.setenv("YUEJUAN_MODEL", str(out))
    monkeypatch.setenv("YUEJUAN_CPU_THREADS", "1")
    checked = runner.invoke(main, ["model", "check"])
    assert checked.exit_code == 0, checked.output
    assert "engine: llamacpp+gbnf" in checked.output and "dtype: q8_0" in checked.output
    assert "smoke_grade: total=" in checked.output
