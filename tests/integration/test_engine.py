"""The transformers engine on a tiny random Qwen2, loaded through the same path as a real model; the contract tests
(every answer parses and validates, forced closes included, real-length essays graded) also on tiny models whose
tokenizers are unlike Qwen's (``any_engine``)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import torch
import xgrammar as xgr
from transformers import LogitsProcessor

from services.worker.engine import Conversation, EngineConfig, Generation, ModelUnavailable
from services.worker.engine.schema_bounds import closing_reserve, max_tokens_for_schema
from services.worker.engine.transformers_engine import TransformersEngine
from services.worker.jobs import EssayJob
from services.worker.pipeline import grade_jobs
from shared.prompts.answer_schema import answer_schema, parse_answer
from shared.prompts.render import render_grading_messages
from shared.prompts.rubric import load_rubric
from shared.settings import Settings
from tests.essays import make_essays
from tests.tiny_model import TINY_MODEL_TEXTS, build_tiny_model, build_tiny_qwen2

BANDS = ["一类", "二类", "三类", "四类"]
ERROR_TYPES = ["错别字", "标点", "病句", "用词不当"]


def _string(max_length: int, min_length: int = 0) -> dict[str, Any]:
    return {"type": "string", "minLength": min_length, "maxLength": max_length}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


TRAIT = _object(
    {
        "score": {"type": "integer", "minimum": 0, "maximum": 20},
        "band": {"type": "string", "enum": BANDS},
        "evidence": {"type": "array", "maxItems": 1, "items": _string(40)},
    }
)
ERROR = _object(
    {
        "type": {"type": "string", "enum": ERROR_TYPES},
        "original": _string(20, 1),
        "suggestion": _string(20),
        "explanation": _string(40),
    }
)
GRADING_SCHEMA = _object(
    {
        "content": TRAIT,
        "expression": TRAIT,
        "development": TRAIT,
        "errors": {"type": "array", "maxItems": 12, "items": ERROR},
        "comment": _string(150, 1),
    }
)
SYSTEM = "你是高考语文阅卷老师。请按评分标准给下面的作文打分，指出错别字、标点、病句和用词不当，只输出 JSON。"


def _conversation(index: int) -> list[dict[str, str]]:
    """Essays of different lengths, so every prompt has its own token count."""
    sentences = TINY_MODEL_TEXTS[index % 20 : index % 20 + 1 + index]
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "作文：\n" + "".join(sentences)},
    ]


CONVERSATIONS = [_conversation(i) for i in range(10)]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """A tiny model gains nothing from threads, and on a busy 2-core machine they cost up to 50x."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> TransformersEngine:
    # A budget large enough for a batch of all ten at the schema's worst-case answer length.
    config = EngineConfig(model=str(tiny_model_dir), device="cpu", batch_token_budget=200_000)
    return TransformersEngine.load(config)


@pytest.fixture(scope="module")
def any_engine(any_tiny_model_dir: Path) -> TransformersEngine:
    """The engine on each tiny model of ``any_tiny_model_dir``: Qwen's tokenizer, a byte-level one with few merges and
    Llama 3's special tokens, a SentencePiece-style one with byte fallback."""
    config = EngineConfig(model=str(any_tiny_model_dir), device="cpu", batch_token_budget=400_000)
    return TransformersEngine.load(config)


@pytest.fixture(scope="module")
def baseline(engine: TransformersEngine) -> list[Generation]:
    return engine.generate_json(CONVERSATIONS, GRADING_SCHEMA)


def _with(engine: TransformersEngine, **changes: Any) -> TransformersEngine:
    """The same loaded model under a different engine config."""
    config = dataclasses.replace(engine.config, **changes)
    return TransformersEngine(config, engine.model, engine.tokenizer, engine.device, engine.dtype)


@pytest.fixture
def batch_sizes(engine: TransformersEngine, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Record the size of every batch handed to ``_generate_batch``."""
    sizes: list[int] = []
    original = TransformersEngine._generate_batch

    def spy(self: TransformersEngine, prompts: list[list[int]], plan: Any) -> list[Generation]:
        sizes.append(len(prompts))
        return original(self, prompts, plan)

    monkeypatch.setattr(TransformersEngine, "_generate_batch", spy)
    yield sizes


def test_every_answer_is_schema_valid_json(any_engine: TransformersEngine) -> None:
    answers = any_engine.generate_json(CONVERSATIONS, GRADING_SCHEMA)
    assert len(answers) == len(CONVERSATIONS)
    for generation in answers:
        assert generation.error is None
        assert generation.finished and not generation.forced_close
        answer = json.loads(generation.text)
        jsonschema.validate(answer, GRADING_SCHEMA)
        assert all(0 <= answer[trait]["score"] <= 20 for trait in ("content", "expression", "development"))
        assert 0 < generation.new_tokens <= max_tokens_for_schema(GRADING_SCHEMA)
        assert generation.latency_s > 0


def test_answers_fit_the_shipped_rubric(any_engine: TransformersEngine) -> None:
    rubric = load_rubric("gaokao-national")
    for generation in any_engine.generate_json(CONVERSATIONS[:4], answer_schema(rubric)):
        assert generation.finished and generation.error is None
        parse_answer(generation.text, rubric)


def test_input_order_is_restored(engine: TransformersEngine, baseline: list[Generation]) -> None:
    expected = [
        len(engine.tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=True)["input_ids"])
        for c in CONVERSATIONS
    ]
    assert len(set(expected)) == len(expected)
    assert [g.prompt_tokens for g in baseline] == expected
    reversed_run = engine.generate_json(CONVERSATIONS[::-1], GRADING_SCHEMA)
    assert [g.text for g in reversed_run] == [g.text for g in baseline][::-1]


def test_alone_and_in_a_batch_of_eight_give_the_same_answer(
    engine: TransformersEngine, baseline: list[Generation], batch_sizes: list[int]
) -> None:
    alone = engine.generate_json([CONVERSATIONS[5]], GRADING_SCHEMA)
    in_batch = engine.generate_json(CONVERSATIONS[:8], GRADING_SCHEMA)
    assert batch_sizes == [1, 8]
    assert alone[0].text == in_batch[5].text == baseline[5].text
    assert [g.text for g in in_batch] == [g.text for g in baseline[:8]]


def test_generation_is_repeatable(engine: TransformersEngine, baseline: list[Generation]) -> None:
    again = engine.generate_json(CONVERSATIONS, GRADING_SCHEMA)
    assert [g.text for g in again] == [g.text for g in baseline]


def test_batches_respect_the_token_budget(
    engine: TransformersEngine, baseline: list[Generation], batch_sizes: list[int]
) -> None:
    longest = max(g.prompt_tokens for g in baseline)
    per_row = longest + max_tokens_for_schema(GRADING_SCHEMA)
    small = _with(engine, batch_token_budget=3 * per_row)
    results = small.generate_json(CONVERSATIONS, GRADING_SCHEMA)
    assert max(batch_sizes) == 3 and sum(batch_sizes) == len(CONVERSATIONS)
    assert [g.text for g in results] == [g.text for g in baseline]


def test_closing_guard_finishes_every_answer_within_a_tight_budget(any_engine: TransformersEngine) -> None:
    budget = closing_reserve(GRADING_SCHEMA) + 8  # the guard steers from the 9th token on
    results = _with(any_engine, max_new_tokens=budget).generate_json(CONVERSATIONS[:4], GRADING_SCHEMA)
    for generation in results:
        assert generation.finished and generation.forced_close and generation.new_tokens <= budget
        jsonschema.validate(json.loads(generation.text), GRADING_SCHEMA)


CHATTY_SCHEMA = _object(
    {"notes": {"type": "array", "maxItems": 30, "items": _string(60, 1)}, "comment": _string(80, 1)}
)


def test_closing_guard_cuts_long_answers_short(engine: TransformersEngine) -> None:
    chatty = CHATTY_SCHEMA
    free = engine.generate_json(CONVERSATIONS[:2], chatty)
    assert all(g.finished for g in free)
    budget = closing_reserve(chatty) + 4
    assert budget < min(g.new_tokens for g in free)
    cut = _with(engine, max_new_tokens=budget).generate_json(CONVERSATIONS[:2], chatty)
    for generation in cut:
        assert generation.finished and generation.forced_close and generation.new_tokens <= budget
        jsonschema.validate(json.loads(generation.text), chatty)


class _Adversary(LogitsProcessor):
    """Pushes the model to the costliest answer: never close a list or object, open lists with an item,
    prefer tokens that end a string and start another item, spell 4-byte characters a byte at a time."""

    def __init__(self, engine: TransformersEngine) -> None:
        self.bias = torch.zeros(engine.model.config.vocab_size)
        for token_id, raw in enumerate(engine._vocab().info.decoded_vocab):
            if b"]" in raw or b"}" in raw:
                self.bias[token_id] = -1000
            elif raw == b'"':
                self.bias[token_id] = 500  # open strings empty, so that minLength is still to meet
            elif raw[:1] in (b"[", b"{") and len(raw) > 1:
                self.bias[token_id] = 450  # open a list and its first item in one token
            elif b"," in raw:
                self.bias[token_id] = 400 + len(raw)
            elif len(raw) == 1 and raw != b'"':
                self.bias[token_id] = 300 if raw[0] >= 0xF0 else 200 if 0x80 <= raw[0] < 0xC0 else 100

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        return scores + self.bias


@pytest.fixture(scope="module")
def list_engine(tmp_path_factory: pytest.TempPathFactory) -> TransformersEngine:
    """A tiny model whose vocabulary has tokens like `。",` that end a string and start another item."""
    lists = '{"evidence": ["立意深刻。", "结构完整。", "语言流畅！"], "notes": ["好。", "妙！"]}'
    model_dir = build_tiny_qwen2(tmp_path_factory.mktemp("tiny-qwen2-lists"), [*TINY_MODEL_TEXTS, lists])
    return TransformersEngine.load(EngineConfig(model=str(model_dir), device="cpu", batch_token_budget=200_000))


@pytest.mark.parametrize("schema", [GRADING_SCHEMA, CHATTY_SCHEMA], ids=["grading", "chatty"])
def test_closing_guard_holds_against_an_adversarial_model(
    list_engine: TransformersEngine, schema: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = list_engine
    assert any(raw.endswith(b'",') and len(raw) > 2 for raw in engine._vocab().info.decoded_vocab)
    adversary = _Adversary(engine)
    generate = engine.model.generate

    def adversarial_generate(*args: Any, logits_processor: list[LogitsProcessor], **kwargs: Any) -> Any:
        return generate(*args, logits_processor=[adversary, *logits_processor], **kwargs)

    monkeypatch.setattr(engine.model, "generate", adversarial_generate)
    reserve = closing_reserve(schema)
    # The guard may start anywhere in an answer: at a list's first item, inside an empty string, ...
    budgets = range(reserve, reserve + 60, 6) if schema is CHATTY_SCHEMA else (reserve, reserve + 37)
    for budget in budgets:
        for generation in _with(engine, max_new_tokens=budget).generate_json(CONVERSATIONS[:2], schema):
            assert generation.finished and generation.new_tokens <= budget
            jsonschema.validate(json.loads(generation.text), schema)


def _essay_conversations(count: int, seed: int) -> list[Conversation]:
    """Grading prompts as the pipeline renders them, for real-length essays (420-900 characters)."""
    rubric = load_rubric("gaokao-national")
    conversations = []
    for text in make_essays(count, seed=seed):
        title, _, body = text.partition("\n")
        conversations.append(render_grading_messages(
            rubric, assignment_prompt="以“读书”为题写一篇议论文。", genre="议论文", required_length=800,
            title=title, body=body, facts={"字数": len(body)},
        ))
    return conversations


class _Recording:
    """The engine, with every generation it returned kept."""

    def __init__(self, engine: TransformersEngine) -> None:
        self.engine = engine
        self.generations: list[Generation] = []

    def generate_json(self, conversations: Any, schema: dict[str, Any]) -> list[Generation]:
        generations = self.engine.generate_json(conversations, schema)
        self.generations += generations
        return generations

    def describe(self) -> dict[str, Any]:
        return self.engine.describe()


def test_real_length_essays_are_graded_on_every_tokenizer(any_engine: TransformersEngine) -> None:
    rubric = load_rubric("gaokao-national")
    jobs = [
        EssayJob(essay_id=i, text=text, assignment_prompt="以“读书”为题写一篇议论文。", genre="议论文",
                 required_length=800, rubric_id="gaokao-national")
        for i, text in enumerate(make_essays(3, seed=41))
    ]
    recording = _Recording(any_engine)
    outcomes = grade_jobs(recording, jobs)  # type: ignore[arg-type]
    assert [g.finished and g.error is None for g in recording.generations] == [True] * len(jobs)
    for outcome in outcomes:
        assert outcome.error is None, outcome.error
        for dimension in rubric.dimensions:
            score = outcome.dimension_scores[dimension.key]
            assert 0 <= score <= dimension.max
            assert outcome.bands[dimension.key] == rubric.band_for(dimension.key, score).name
        assert 0 <= outcome.total <= rubric.total and outcome.comment
        for error in outcome.errors:
            assert outcome.text[error.start:error.end] == error.original


def _control_characters(raw: bytes) -> bool:
    return any(byte < 0x20 for byte in raw)


class _Tempter(LogitsProcessor):
    """Pushes the model toward one kind of token that the parser would not take or would count otherwise: control
    characters, a UTF-16 surrogate's bytes (ED A0..BF xx, three U+FFFD once decoded), or special tokens."""

    def __init__(self, engine: TransformersEngine, kind: str) -> None:
        self.bias = torch.zeros(engine.model.config.vocab_size)
        tempting: list[int] = []
        if kind == "special":
            tempting = [i for i in engine.tokenizer.all_special_ids if i not in engine.stop_ids]
            self.bias[tempting] = 1000
        for token_id, raw in enumerate(engine._vocab().info.decoded_vocab):
            if kind == "control" and _control_characters(raw):
                self.bias[token_id] = 1000
                tempting.append(token_id)
            elif kind == "surrogate" and len(raw) == 1 and (raw[0] == 0xED or 0x80 <= raw[0] < 0xC0):
                self.bias[token_id] = 1000 if raw[0] == 0xED else 900 if raw[0] >= 0xA0 else 800
                tempting.append(token_id)
        assert tempting, f"no {kind} tokens in this vocabulary"

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        return scores + self.bias


@pytest.mark.parametrize("kind", ["control", "surrogate", "special"])
def test_no_token_the_grammar_allows_breaks_the_answer(
    any_engine: TransformersEngine, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the model prefers, what the grammar lets through parses and validates, forced closes included."""
    rubric = load_rubric("gaokao-national")
    schema = answer_schema(rubric)
    tempter = _Tempter(any_engine, kind)
    generate = any_engine.model.generate

    def tempted_generate(*args: Any, logits_processor: list[LogitsProcessor], **kwargs: Any) -> Any:
        return generate(*args, logits_processor=[tempter, *logits_processor], **kwargs)

    monkeypatch.setattr(any_engine.model, "generate", tempted_generate)
    specials = [any_engine.tokenizer.convert_ids_to_tokens(i) for i in any_engine.tokenizer.all_special_ids]
    conversations = _essay_conversations(2, seed=43)
    # A tight budget (the guard usually closes inside the first string) and a looser one. Whether a given answer is
    # closed by the guard depends on the model's float arithmetic, so only what holds either way is asserted;
    # test_closing_guard_finishes_every_answer_within_a_tight_budget covers forced closes on every tokenizer.
    for budget in (closing_reserve(schema) + 20, closing_reserve(schema) + 150):
        answers = _with(any_engine, max_new_tokens=budget).generate_json(conversations, schema)
        for generation in answers:
            assert generation.finished and generation.error is None and generation.new_tokens <= budget
            parse_answer(generation.text, rubric)
            assert "\ufffd" not in generation.text and not _control_characters(generation.text.encode())
            assert not any(special in generation.text for special in specials)


def test_a_tokenizer_the_grammar_reads_otherwise_is_refused_at_load(tmp_path: Path) -> None:
    """Without its decoder, a byte-level tokenizer decodes `Ġ` where xgrammar reads a space: answers that satisfy the
    grammar would not be the text the tokenizer gives, so the engine will not load such a model."""
    model_dir = build_tiny_model(tmp_path / "model", "small-byte-level")
    spec = json.loads((model_dir / "tokenizer.json").read_text())
    spec["decoder"] = None
    (model_dir / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False))
    with pytest.raises(ValueError, match="xgrammar reads this tokenizer's vocabulary"):
        TransformersEngine.load(EngineConfig(model=str(model_dir), device="cpu"))


def test_unconstrained_decoding_runs_under_the_same_budget(engine: TransformersEngine) -> None:
    free = _with(engine, max_new_tokens=16).generate_json(
        CONVERSATIONS[:3], GRADING_SCHEMA, constrained=False
    )
    assert all(g.error is None and 0 < g.new_tokens <= 16 for g in free)


def test_out_of_memory_splits_the_batch_and_retries(
    engine: TransformersEngine, baseline: list[Generation], monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    original = TransformersEngine._generate_batch

    def small_memory(self: TransformersEngine, prompts: list[list[int]], plan: Any) -> list[Generation]:
        sizes.append(len(prompts))
        if len(prompts) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(self, prompts, plan)

    monkeypatch.setattr(TransformersEngine, "_generate_batch", small_memory)
    results = engine.generate_json(CONVERSATIONS, GRADING_SCHEMA)
    assert sizes[0] == len(CONVERSATIONS) and max(s for s in sizes if s <= 2) == 2
    assert [g.text for g in results] == [g.text for g in baseline]


def test_a_poison_conversation_fails_alone(
    engine: TransformersEngine, baseline: list[Generation], monkeypatch: pytest.MonkeyPatch
) -> None:
    poison = baseline[3].prompt_tokens
    original = TransformersEngine._generate_batch

    def fragile(self: TransformersEngine, prompts: list[list[int]], plan: Any) -> list[Generation]:
        if any(len(p) == poison for p in prompts):
            raise RuntimeError("CPU out of memory")  # even alone: this one can never fit
        return original(self, prompts, plan)

    monkeypatch.setattr(TransformersEngine, "_generate_batch", fragile)
    results = engine.generate_json(CONVERSATIONS, GRADING_SCHEMA)
    assert results[3].error is not None and "out of memory" in results[3].error
    assert not results[3].finished and results[3].prompt_tokens == poison
    others = [g for i, g in enumerate(results) if i != 3]
    assert all(g.error is None for g in others)
    assert [g.text for g in others] == [g.text for i, g in enumerate(baseline) if i != 3]


def test_any_other_failure_is_isolated_too(
    engine: TransformersEngine, baseline: list[Generation], monkeypatch: pytest.MonkeyPatch
) -> None:
    poison = baseline[7].prompt_tokens
    original = TransformersEngine._generate_batch

    def broken(self: TransformersEngine, prompts: list[list[int]], plan: Any) -> list[Generation]:
        if any(len(p) == poison for p in prompts):
            raise ValueError("tokenizer produced garbage")
        return original(self, prompts, plan)

    monkeypatch.setattr(TransformersEngine, "_generate_batch", broken)
    results = engine.generate_json(CONVERSATIONS, GRADING_SCHEMA)
    assert [i for i, g in enumerate(results) if g.error] == [7]
    assert results[7].error == "ValueError: tokenizer produced garbage"


def test_a_time_limit_is_not_swallowed(engine: TransformersEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    class SoftTimeLimitExceeded(Exception):  # what Celery raises inside a task that ran out of time
        pass

    def out_of_time(self: TransformersEngine, prompts: list[list[int]], plan: Any) -> list[Generation]:
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(TransformersEngine, "_generate_batch", out_of_time)
    with pytest.raises(SoftTimeLimitExceeded):
        engine.generate_json(CONVERSATIONS[:4], GRADING_SCHEMA)


def test_describe(engine: TransformersEngine, tiny_model_dir: Path) -> None:
    info = engine.describe()
    assert info["engine"] == "transformers+xgrammar"
    assert info["model"] == str(tiny_model_dir)
    assert (info["device"], info["dtype"], info["quantization"]) == ("cpu", "float32", "none")
    assert info["parameters"] == sum(p.numel() for p in engine.model.parameters())
    assert info["memory_mb"] > 0


def test_missing_local_model_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable) as caught:
        TransformersEngine.load(EngineConfig(model=str(tmp_path / "no-such-model"), device="cpu"))
    message = str(caught.value)
    for hint in ("YUEJUAN_MODEL", "HF_HUB_OFFLINE=1", "modelscope download --model", "找不到模型"):
        assert hint in message


def test_directory_without_a_model_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="config.json"):
        TransformersEngine.load(EngineConfig(model=str(tmp_path), device="cpu"))


def test_uncached_hub_id_while_offline_is_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ModelUnavailable, match="Qwen/Qwen2.5-0.5B-Instruct"):
        TransformersEngine.load(EngineConfig(model="Qwen/Qwen2.5-0.5B-Instruct", device="cpu"))


def test_quantization_on_cpu_is_refused(tiny_model_dir: Path) -> None:
    with pytest.raises(ValueError, match="CUDA"):
        TransformersEngine.load(EngineConfig(model=str(tiny_model_dir), device="cpu", quantization="4bit"))


def test_config_from_settings_picks_the_model_for_the_device() -> None:
    settings = Settings(batch_token_budget=4096)
    on_cpu = EngineConfig.from_settings(settings, cuda_available=False)
    assert on_cpu.model == "Qwen/Qwen2.5-1.5B-Instruct" and on_cpu.batch_token_budget == 4096
    assert EngineConfig.from_settings(settings, cuda_available=True).model == "Qwen/Qwen2.5-7B-Instruct"
    forced_cpu = Settings(device="cpu")
    assert EngineConfig.from_settings(forced_cpu, cuda_available=True).model == "Qwen/Qwen2.5-1.5B-Instruct"
    assert EngineConfig.from_settings(Settings(model="/models/q")).model == "/models/q"


def test_unbounded_schema_needs_a_configured_budget(engine: TransformersEngine) -> None:
    with pytest.raises(ValueError, match="max_new_tokens"):
        engine.generate_json(CONVERSATIONS[:1], _object({"comment": {"type": "string"}}))


def test_token_bound_is_the_longest_answer_the_grammar_accepts(engine: TransformersEngine) -> None:
    """The bound is exact: the longest answer (4-byte characters everywhere) is one xgrammar accepts."""
    widest = "\U00020000"  # a CJK extension-B character, 4 bytes in UTF-8
    trait = {"score": 20, "band": "四类", "evidence": [widest * 40]}
    error = {
        "type": "用词不当",
        "original": widest * 20,
        "suggestion": widest * 20,
        "explanation": widest * 40,
    }
    longest = {
        "content": trait,
        "expression": trait,
        "development": trait,
        "errors": [error] * 12,
        "comment": widest * 150,
    }
    text = json.dumps(longest, ensure_ascii=False)
    grammar = engine._plan(GRADING_SCHEMA, True).grammar
    matcher = xgr.GrammarMatcher(grammar)
    assert matcher.accept_string(text) and matcher.is_completed()
    assert max_tokens_for_schema(GRADING_SCHEMA) == len(text.encode()) + 1


def test_bounded_strings_admit_no_escapes(engine: TransformersEngine) -> None:
    """The byte bound assumes xgrammar writes length-bounded strings without escapes (4 bytes a character)."""
    grammar = engine._plan(GRADING_SCHEMA, True).grammar
    prefix = '{"content": {"score": 1, "band": "一类", "evidence": ["'
    assert xgr.GrammarMatcher(grammar).accept_string(prefix + "好")
    assert not xgr.GrammarMatcher(grammar).accept_string(prefix + "\\u597d")
