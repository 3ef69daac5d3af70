"""The inference engine: one loaded causal LM that turns chat conversations into schema-valid JSON.

Only the worker imports this module (it imports torch and transformers). The interface is narrow, in the
manner of lm-eval and TGI: ``LLMEngine.load(config)`` once per process, then ``generate_json`` per batch.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import xgrammar as xgr
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig, LogitsProcessor

from shared.settings import DeviceChoice, DtypeChoice, Quantization

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from shared.settings import Settings

logger = logging.getLogger(__name__)

Conversation = list[dict[str, str]]

# xgrammar (0.2.8, measured) writes length-bounded JSON strings without escapes, so a character is at
# most 4 UTF-8 bytes, and a byte-level BPE token carries at least one byte: bytes bound tokens.
BYTES_PER_CHAR = 4
_SEPARATOR = 2  # ", " and ": " with whitespace constrained
_STRING_CLOSER = re.compile(rb'"[\]}]*')
_CONTAINER_CLOSER = re.compile(rb"[\]}]+")
_STRUCTURAL = re.compile(rb'["\\\[\]{}]')


class ModelUnavailable(RuntimeError):
    """The configured model is neither a local directory nor fetchable from the hub cache."""


@dataclass(frozen=True)
class EngineConfig:
    """How to load and drive the model; ``max_new_tokens=None`` derives a guaranteed bound from the schema."""

    model: str
    device: DeviceChoice = "auto"
    dtype: DtypeChoice = "auto"
    quantization: Quantization = "none"
    batch_token_budget: int = 16384
    max_new_tokens: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, cuda_available: bool | None = None) -> EngineConfig:
        """Engine settings from the application settings; the default model depends on the device."""
        if cuda_available is None:
            cuda_available = torch.cuda.is_available()
        on_gpu = settings.device != "cpu" and cuda_available
        return cls(
            model=settings.resolved_model(on_gpu),
            device=settings.device,
            dtype=settings.dtype,
            quantization=settings.quantization,
            batch_token_budget=settings.batch_token_budget,
            max_new_tokens=settings.max_new_tokens,
        )


@dataclass(frozen=True)
class Generation:
    """One conversation's answer.

    ``latency_s`` is the wall time of the batch that produced it divided evenly among its members, so the
    latencies of a call add up to the time spent generating. ``finished`` means the stop token came (with a
    schema: the JSON is complete); ``forced_close`` means the closing guard cut the answer short to fit
    ``max_new_tokens``, so a string or list in it may be truncated.
    """

    text: str
    prompt_tokens: int
    new_tokens: int
    latency_s: float
    finished: bool
    error: str | None = None
    forced_close: bool = False


# --- token bounds of a JSON schema -------------------------------------------------------------------


@dataclass(frozen=True)
class _Bounds:
    longest: int  # bytes of the longest valid value
    guarded: int  # tokens to write the value, from anywhere up to its start, while the guard steers


def _json_bytes(value: object) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode())


def _resolve_ref(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = node["$ref"]
    if not ref.startswith("#/"):
        raise ValueError(f"cannot bound a schema with a non-local $ref: {ref}")
    target: Any = root
    for part in ref[2:].split("/"):
        target = target[part]
    return target


def _bounds(node: dict[str, Any], root: dict[str, Any]) -> _Bounds:
    """Both bounds of a schema node; ``ValueError`` where a part is unbounded."""
    if "$ref" in node:
        return _bounds(_resolve_ref(node, root), root)
    if "enum" in node or "const" in node:
        size = max(_json_bytes(v) for v in node.get("enum", [node.get("const")]))
        return _Bounds(size, size)
    alternatives = node.get("anyOf") or node.get("oneOf")
    if isinstance(node.get("type"), list):
        alternatives = [{**node, "type": t} for t in node["type"]]
    if alternatives:
        parts = [_bounds(alt, root) for alt in alternatives]
        return _Bounds(max(p.longest for p in parts), max(p.guarded for p in parts))
    kind = node.get("type")
    if kind == "string":
        if "maxLength" not in node or "pattern" in node or "format" in node:
            raise ValueError("cannot bound a string without maxLength (or with a pattern or format)")
        # Guarded: the quotes, the shortest content allowed, and a character half written past it.
        least = node.get("minLength", 0)
        return _Bounds(2 + BYTES_PER_CHAR * node["maxLength"], 2 + BYTES_PER_CHAR * (least + 1))
    if kind == "integer":
        if "minimum" not in node or "maximum" not in node:
            raise ValueError("cannot bound an integer without minimum and maximum")
        size = max(len(str(node["minimum"])), len(str(node["maximum"])))
        return _Bounds(size, size)
    if kind in ("boolean", "null"):
        return _Bounds(5, 5)
    if kind == "array":
        if "maxItems" not in node or not isinstance(node.get("items"), dict) or "prefixItems" in node:
            raise ValueError("cannot bound an array without maxItems and a single items schema")
        item = _bounds(node["items"], root)
        most = node["maxItems"]
        # One token may open the list and its first item together, so even an empty list may get one.
        least = max(node.get("minItems", 0), 1)
        return _Bounds(
            2 + most * item.longest + _SEPARATOR * max(most - 1, 0),
            2 + least * item.guarded + _SEPARATOR * (least - 1),
        )
    if kind == "object":
        if node.get("additionalProperties", False) is not False or "patternProperties" in node:
            raise ValueError("cannot bound an object that allows additional properties")
        # Every property counts, optional ones too: the model, not the guard, decides whether to write them.
        entries = [
            (_json_bytes(key) + _SEPARATOR, _bounds(value, root))
            for key, value in node.get("properties", {}).items()
        ]
        separators = _SEPARATOR * max(len(entries) - 1, 0)
        return _Bounds(
            2 + separators + sum(key + value.longest for key, value in entries),
            2 + separators + sum(key + value.guarded for key, value in entries),
        )
    raise ValueError(f"cannot bound schema node {node!r}")


def max_tokens_for_schema(schema: dict[str, Any]) -> int:
    """New tokens that always suffice for a whole answer: its longest valid JSON in bytes, plus the stop.

    Raises ``ValueError`` for schemas with unbounded parts (strings without maxLength, and the like).
    """
    return _bounds(schema, schema).longest + 1


def closing_reserve(schema: dict[str, Any]) -> int:
    """New tokens within which the closing guard finishes any partial answer, the stop token included.

    From any point of an answer, what is left to write under the guard is at most what the guard needs to
    write the whole answer from its start: every property, each string at its minLength, lists at minItems.
    """
    return _bounds(schema, schema).guarded + 1


# --- constrained decoding ----------------------------------------------------------------------------

_NO_COMMA, _SHALLOW_COMMA, _DEEP_COMMA = 0, 1, 2


def _comma_kind(raw: bytes, in_string: bool) -> int:
    """Whether a token, read from inside or outside a string, writes a comma outside strings.

    Shallow: only at the current nesting level (a new property, or a new item if that level is a list);
    deep: after opening or closing a bracket within the token.
    """
    kind, moved, escaped = _NO_COMMA, False, False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in b"[]{}":
            moved = True
        elif byte == 0x2C:
            if moved:
                return _DEEP_COMMA
            kind = _SHALLOW_COMMA
    return kind


@dataclass
class _JsonCursor:
    """Where a row's JSON stands: inside a string or not, and the open brackets."""

    in_string: bool = False
    escaped: bool = False
    brackets: str = ""

    def feed(self, raw: bytes) -> None:
        for byte in raw:
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif byte == 0x5C:
                    self.escaped = True
                elif byte == 0x22:
                    self.in_string = False
            elif byte == 0x22:
                self.in_string = True
            elif byte in b"[{":
                self.brackets += chr(byte)
            elif byte in b"]}":
                self.brackets = self.brackets[:-1]


@dataclass(frozen=True)
class _Vocabulary:
    """Token facts the closing guard needs, computed once per engine, on the device the logits are on."""

    info: xgr.TokenizerInfo
    string_closers: torch.Tensor  # ids: `"` followed only by `]`/`}`, ends a string and opens nothing
    container_closers: torch.Tensor  # ids: only `]`/`}`
    structural: dict[int, bytes]  # tokens with `"`, `\`, brackets: they move a _JsonCursor
    adds_item: tuple[torch.Tensor, torch.Tensor]  # masks by in_string: a comma at the current level
    deep_comma: tuple[torch.Tensor, torch.Tensor]  # masks by in_string: a comma past a bracket

    @classmethod
    def build(cls, info: xgr.TokenizerInfo, device: torch.device) -> _Vocabulary:
        special = set(info.special_token_ids)
        string_closers, container_closers, structural = [], [], {}
        size = info.vocab_size
        adds_item = (torch.zeros(size, dtype=torch.bool), torch.zeros(size, dtype=torch.bool))
        deep = (torch.zeros(size, dtype=torch.bool), torch.zeros(size, dtype=torch.bool))
        for token_id, raw in enumerate(info.decoded_vocab):
            if token_id in special or not raw:
                continue
            if _STRING_CLOSER.fullmatch(raw):
                string_closers.append(token_id)
            elif _CONTAINER_CLOSER.fullmatch(raw):
                container_closers.append(token_id)
            if _STRUCTURAL.search(raw):
                structural[token_id] = raw
            if b"," in raw:
                for in_string in (False, True):
                    kind = _comma_kind(raw, in_string)
                    adds_item[in_string][token_id] = kind != _NO_COMMA
                    deep[in_string][token_id] = kind == _DEEP_COMMA
        ids = lambda values: torch.tensor(values, dtype=torch.long, device=device)  # noqa: E731
        masks = lambda pair: (pair[0].to(device), pair[1].to(device))  # noqa: E731
        return cls(
            info, ids(string_closers), ids(container_closers), structural, masks(adds_item), masks(deep)
        )


@dataclass(frozen=True)
class _Plan:
    """How one ``generate_json`` call decodes: grammar (None: unconstrained), token budget, guard start."""

    grammar: xgr.CompiledGrammar | None
    max_new_tokens: int
    reserve: int | None
    generation_config: GenerationConfig


class _GrammarProcessor(LogitsProcessor):
    """Masks each row to its grammar; near the end of the budget, steers unfinished rows to close.

    Like ``xgrammar.contrib.hf.LogitsProcessor`` (stateful: one per ``generate`` call, masks filled by
    xgrammar's thread pool), plus the closing guard: once no more than ``reserve`` tokens are left, a row
    that may end its string or close a list or object is made to, and a row that may not is kept from
    starting another list item, so every answer completes within ``max_new_tokens``.
    """

    def __init__(
        self, plan: _Plan, vocabulary: _Vocabulary, batch: xgr.BatchGrammarMatcher, batch_size: int
    ) -> None:
        assert plan.grammar is not None
        self.matchers = [xgr.GrammarMatcher(plan.grammar) for _ in range(batch_size)]
        self.bitmask = xgr.allocate_token_bitmask(batch_size, vocabulary.info.vocab_size)
        self.batch = batch
        self.vocabulary = vocabulary
        self.guard_from = plan.max_new_tokens - plan.reserve if plan.reserve is not None else None
        self.step = 0
        self.live = list(range(batch_size))
        self.cursors = [_JsonCursor() for _ in range(batch_size)]
        self.forced = [False] * batch_size

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.step > 0:
            last = input_ids[:, -1].tolist()
            for i in self.live:
                if not self.matchers[i].accept_token(last[i]):
                    raise RuntimeError(f"grammar rejected token {last[i]} in row {i}")
                raw = self.vocabulary.structural.get(last[i])
                if raw is not None:
                    self.cursors[i].feed(raw)
                else:
                    self.cursors[i].escaped = False
            self.live = [i for i in self.live if not self.matchers[i].is_terminated()]
        self.batch.batch_fill_next_token_bitmask(
            [self.matchers[i] for i in self.live], self.bitmask, self.live
        )
        xgr.apply_token_bitmask_inplace(scores, self.bitmask.to(scores.device))
        if self.guard_from is not None and self.step >= self.guard_from:
            for i in self.live:
                self._steer_to_close(i, scores)
        self.step += 1
        return scores

    def _steer_to_close(self, row: int, scores: torch.Tensor) -> None:
        vocab, cursor = self.vocabulary, self.cursors[row]
        inside = cursor.in_string
        closers = vocab.string_closers if inside else vocab.container_closers
        choice = scores[row].argmax()
        allowed = scores[row, closers]
        if torch.isfinite(allowed).any():
            steered = torch.full_like(scores[row], float("-inf"))
            steered[closers] = allowed
        else:
            banned = vocab.adds_item[inside] if cursor.brackets.endswith("[") else vocab.deep_comma[inside]
            steered = scores[row].masked_fill(banned, float("-inf"))
            if not torch.isfinite(steered).any():
                return
        self.forced[row] = self.forced[row] or bool(steered.argmax() != choice)
        scores[row] = steered


# --- loading -------------------------------------------------------------------------------------------


def _unavailable_message(model: str, reason: str) -> str:
    hub_id = model if re.fullmatch(r"[\w.-]+/[\w.-]+", model) else "Qwen/Qwen2.5-7B-Instruct"
    return (
        f"找不到模型 {model}（{reason}）。请任选一种方式提供模型：\n"
        f"  1. 设置 YUEJUAN_MODEL=/path/to/model，指向含 config.json 与权重文件的本地目录；\n"
        f"  2. 预先把模型下载进 Hugging Face 缓存，并设置 HF_HUB_OFFLINE=1；\n"
        f"  3. 从 ModelScope 下载：modelscope download --model {hub_id} --local_dir /path/to/model，"
        f"再设置 YUEJUAN_MODEL=/path/to/model。\n"
        f"Model {model} is not available ({reason}). Provide one: set YUEJUAN_MODEL=/path/to/model (a local "
        f"directory with config.json and the weights); or pre-fill the Hugging Face cache and set "
        f"HF_HUB_OFFLINE=1; or download from ModelScope with "
        f"`modelscope download --model {hub_id} --local_dir /path/to/model` and set YUEJUAN_MODEL to it."
    )


def _locate_model(model: str) -> str:
    """A local model directory, or a hub id whose config can be had (cache or hub); else ModelUnavailable."""
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelUnavailable(_unavailable_message(model, "directory has no config.json"))
        return str(path)
    if path.is_absolute() or model.startswith((".", "~")) or model.count("/") > 1:
        raise ModelUnavailable(_unavailable_message(model, "no such directory"))
    try:
        AutoConfig.from_pretrained(model)
    except (OSError, ValueError) as exc:  # missing from the cache while offline, unknown id, no network
        raise ModelUnavailable(_unavailable_message(model, f"{type(exc).__name__}: {exc}")) from exc
    return model


def _resolve_device(choice: DeviceChoice) -> str:
    if choice == "cuda" and not torch.cuda.is_available():
        raise ValueError("device=cuda was asked for, but no CUDA GPU is available")
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return choice


def _resolve_dtype(choice: DtypeChoice, device: str) -> torch.dtype:
    if choice != "auto":
        return getattr(torch, choice)
    if device == "cpu":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _quantization_config(quantization: Quantization, device: str) -> Any:
    """A bitsandbytes config for 4/8-bit loading; bitsandbytes is imported only when asked for."""
    if quantization == "none":
        return None
    if device != "cuda":
        raise ValueError(f"quantization={quantization} needs a CUDA GPU (bitsandbytes); use none on CPU")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"quantization={quantization} needs bitsandbytes: pip install bitsandbytes"
        ) from exc
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
    )


def _is_deadline(exc: BaseException) -> bool:
    """Celery's time limits must reach the task; matched by name so that the engine needs no Celery."""
    return any(cls.__name__ in ("SoftTimeLimitExceeded", "TimeLimitExceeded") for cls in type(exc).__mro__)


def _is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )


def _process_rss_mb() -> float:
    try:
        import psutil
    except ImportError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # peak, KiB on Linux
    return psutil.Process().memory_info().rss / 2**20


# --- the engine ----------------------------------------------------------------------------------------


class LLMEngine:
    """A loaded model and tokenizer; generates schema-constrained JSON for batches of conversations."""

    def __init__(
        self,
        config: EngineConfig,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        device: str,
        dtype: torch.dtype,
    ) -> None:
        self.config = config
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.dtype = dtype
        self.input_device = model.get_input_embeddings().weight.device
        eos = model.generation_config.eos_token_id
        eos_ids = {tokenizer.eos_token_id, *(eos if isinstance(eos, list) else [eos])} - {None}
        self.stop_ids = sorted(eos_ids)
        # Greedy, and nothing inherited from the checkpoint's sampling defaults (repetition_penalty included).
        self._greedy: dict[str, Any] = dict(
            do_sample=False,
            num_beams=1,
            repetition_penalty=1.0,
            temperature=1.0,
            top_p=1.0,
            top_k=50,
            eos_token_id=self.stop_ids,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=model.generation_config.bos_token_id,
        )
        self._vocabulary: _Vocabulary | None = None
        self._compiler: xgr.GrammarCompiler | None = None
        self._batch_matcher = xgr.BatchGrammarMatcher()
        self._plans: dict[tuple[str, bool], _Plan] = {}

    @classmethod
    def load(cls, config: EngineConfig) -> LLMEngine:
        """Load the tokenizer and model once per process; failures are logged and re-raised."""
        device = _resolve_device(config.device)
        dtype = _resolve_dtype(config.dtype, device)
        try:
            source = _locate_model(config.model)
            kwargs: dict[str, Any] = {"dtype": dtype}
            quantization = _quantization_config(config.quantization, device)
            if quantization is not None:
                kwargs["quantization_config"] = quantization
            if device == "cuda":
                kwargs["device_map"] = "auto"  # accelerate spreads the layers over every visible GPU
            started = time.perf_counter()
            tokenizer = AutoTokenizer.from_pretrained(source, padding_side="left")
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
            model.eval()
        except Exception:
            logger.exception("could not load model %s (device=%s, dtype=%s)", config.model, device, dtype)
            raise
        engine = cls(config, model, tokenizer, device, dtype)
        logger.info("loaded %s in %.1f s: %s", config.model, time.perf_counter() - started, engine.describe())
        return engine

    def describe(self) -> dict[str, Any]:
        """What is loaded and how much memory it holds (CUDA allocated, or the process RSS on CPU)."""
        if self.device == "cuda":
            memory = sum(torch.cuda.memory_allocated(i) for i in range(torch.cuda.device_count())) / 2**20
        else:
            memory = _process_rss_mb()
        return {
            "model": self.config.model,
            "device": self.device,
            "dtype": str(self.dtype).removeprefix("torch."),
            "quantization": self.config.quantization,
            "parameters": self.model.num_parameters(),
            "memory_mb": round(memory, 1),
        }

    def prepare(self, schema: dict[str, Any]) -> None:
        """Compile the schema's grammar now (seconds for a Qwen vocabulary) rather than in the first batch."""
        self._plan(schema, constrained=True)

    # --- generation ----------------------------------------------------------------------------------

    def generate_json(
        self, conversations: Sequence[Conversation], schema: dict[str, Any], *, constrained: bool = True
    ) -> list[Generation]:
        """Answer each conversation with JSON valid under ``schema``, in input order.

        ``constrained=False`` decodes freely under the same token budget (for comparisons only).
        A conversation that fails on its own gets ``Generation.error``; its batch-mates are unaffected.
        """
        if not conversations:
            return []
        plan = self._plan(schema, constrained)
        texts = [
            self.tokenizer.apply_chat_template(list(c), add_generation_prompt=True, tokenize=False)
            for c in conversations
        ]
        prompts: list[list[int]] = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        results: list[Generation | None] = [None] * len(prompts)
        started = time.perf_counter()
        batches = list(self._batches(prompts, plan.max_new_tokens))
        for batch in batches:
            for index, generation in zip(batch, self._generate_isolating(batch, prompts, plan), strict=True):
                results[index] = generation
        logger.info(
            "generated %s answers in %s batches in %.1f s (%s failed)",
            len(prompts),
            len(batches),
            time.perf_counter() - started,
            sum(1 for r in results if r is not None and r.error),
        )
        return [r for r in results if r is not None]

    def _batches(self, prompts: list[list[int]], max_new_tokens: int) -> Iterator[list[int]]:
        """Indices, longest prompt first, grouped so size * (longest prompt + new tokens) fits the budget."""
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]), reverse=True)
        batch: list[int] = []
        for index in order:
            row_cost = len(prompts[batch[0]] if batch else prompts[index]) + max_new_tokens
            if batch and (len(batch) + 1) * row_cost > self.config.batch_token_budget:
                yield batch
                batch = []
            batch.append(index)
        if batch:
            yield batch

    def _generate_isolating(
        self, batch: list[int], prompts: list[list[int]], plan: _Plan
    ) -> list[Generation]:
        """Generate a batch; on failure split it in halves until the failing conversation stands alone."""
        try:
            return self._generate_batch([prompts[i] for i in batch], plan)
        except Exception as exc:
            if _is_deadline(exc):
                raise
            if len(batch) == 1:
                logger.exception("generation failed for a prompt of %s tokens", len(prompts[batch[0]]))
                error = f"{type(exc).__name__}: {exc}"
                return [Generation("", len(prompts[batch[0]]), 0, 0.0, finished=False, error=error)]
            if _is_out_of_memory(exc):
                logger.warning("out of memory on a batch of %s; retrying in halves", len(batch))
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
            else:
                logger.warning("batch of %s failed (%s); retrying in halves to isolate it", len(batch), exc)
        half = len(batch) // 2
        return self._generate_isolating(batch[:half], prompts, plan) + self._generate_isolating(
            batch[half:], prompts, plan
        )

    def _generate_batch(self, prompts: list[list[int]], plan: _Plan) -> list[Generation]:
        """One ``generate`` call over left-padded prompts (overridable, e.g. to inject failures in tests)."""
        width = max(len(p) for p in prompts)
        pad_id = self.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in prompts], device=self.input_device)
        attention_mask = torch.tensor(
            [[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.input_device
        )
        processor = None
        if plan.grammar is not None:
            processor = _GrammarProcessor(plan, self._vocab(), self._batch_matcher, len(prompts))
        started = time.perf_counter()
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                generation_config=plan.generation_config,
                logits_processor=[processor] if processor else None,
            )
        latency = (time.perf_counter() - started) / len(prompts)
        generations = []
        for row, prompt in enumerate(prompts):
            new = output[row, width:].tolist()
            stops = [k for k, token in enumerate(new) if token in self.stop_ids]
            finished = bool(stops)
            new = new[: stops[0] + 1] if finished else new
            text = self.tokenizer.decode(new, skip_special_tokens=True)
            forced = processor.forced[row] if processor else False
            generations.append(
                Generation(text, len(prompt), len(new), latency, finished, forced_close=forced)
            )
        logger.debug(
            "batch of %s, prompts up to %s tokens: %.2f s", len(prompts), width, latency * len(prompts)
        )
        return generations

    # --- grammars ------------------------------------------------------------------------------------

    def _vocab(self) -> _Vocabulary:
        if self._vocabulary is None:
            info = xgr.TokenizerInfo.from_huggingface(
                self.tokenizer, vocab_size=self.model.config.vocab_size, stop_token_ids=self.stop_ids
            )
            self._vocabulary = _Vocabulary.build(info, self.input_device)  # generate puts logits there
        return self._vocabulary

    def _plan(self, schema: dict[str, Any], constrained: bool) -> _Plan:
        """Compile the schema and size the token budget, once per schema (key: its JSON text, order kept)."""
        key = (json.dumps(schema, ensure_ascii=False, separators=(",", ":")), constrained)
        if key in self._plans:
            return self._plans[key]
        max_new_tokens, reserve = self._token_budget(schema)
        grammar = None
        if not constrained:
            reserve = None
        else:
            if reserve is not None and reserve > max_new_tokens:
                logger.warning(
                    "max_new_tokens=%s is below the %s the closing guard needs", max_new_tokens, reserve
                )
                reserve = None
            if self._compiler is None:
                self._compiler = xgr.GrammarCompiler(self._vocab().info)
            grammar = self._compiler.compile_json_schema(key[0], any_whitespace=False, strict_mode=True)
        generation_config = GenerationConfig(**self._greedy, max_new_tokens=max_new_tokens)
        plan = _Plan(grammar, max_new_tokens, reserve, generation_config)
        logger.info(
            "schema plan: max_new_tokens=%s, closing guard from %s tokens left", max_new_tokens, reserve
        )
        self._plans[key] = plan
        return plan

    def _token_budget(self, schema: dict[str, Any]) -> tuple[int, int | None]:
        """New tokens per answer (configured, or the schema's worst case) and the closing guard's reserve."""
        configured = self.config.max_new_tokens
        try:
            longest, reserve = max_tokens_for_schema(schema), closing_reserve(schema)
        except ValueError as exc:
            if configured is None:
                raise ValueError(f"{exc}; set EngineConfig.max_new_tokens for this schema") from exc
            logger.warning(
                "schema is unbounded (%s): answers may not close within %s tokens", exc, configured
            )
            return configured, None
        return (longest if configured is None else min(configured, longest)), reserve
