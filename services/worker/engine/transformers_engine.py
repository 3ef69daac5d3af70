"""The transformers engine: one loaded causal LM that turns chat conversations into schema-valid JSON, decoding
under an xgrammar grammar with the closing guard.

Imported only where it is loaded (``runtime.load_engine``): it imports torch, transformers and xgrammar. The
interface is narrow, in the manner of lm-eval and TGI: ``TransformersEngine.load(config)`` once per process, then
``generate_json`` per batch.
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import transformers
import xgrammar as xgr
from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList

from services.worker.engine.adapters import AdapterSlots
from services.worker.engine.grammar import GrammarProcessor, Plan, Vocabulary, json_schema_grammar, tokenizer_info
from services.worker.engine.interface import AnswerCallback, Conversation, EngineConfig, Generation, is_deadline
from services.worker.engine.loading import load_pretrained
from services.worker.engine.quotes import QuoteConstrainer, quote_sources
from services.worker.engine.repetition import StringRepeatBlocker
from services.worker.engine.schema_bounds import closing_reserve, max_tokens_for_schema

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

# A shorter common prefix (a chat template's header) costs more to copy than it saves.
_MIN_SHARED_PREFIX = 16
# generate's argument for a prefilled cache: ``cache`` from transformers 5.x (``past_key_values`` is deprecated there).
_CACHE_ARGUMENT = "cache" if int(transformers.__version__.split(".")[0]) >= 5 else "past_key_values"


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


class _AnswerWatcher(StoppingCriteria):
    """Never stops generation: after each step it hands every row that has just produced its stop token to
    ``report``, so an answer is used as soon as it is written rather than when the longest row of its batch is."""

    def __init__(self, width: int, stop_ids: set[int], report: Callable[[int, list[int]], None], rows: int) -> None:
        self.width, self.stop_ids, self.report = width, stop_ids, report
        self.pending = set(range(rows))

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        if self.pending:
            last = input_ids[:, -1].tolist()
            for row in sorted(self.pending):
                if input_ids.shape[1] > self.width and last[row] in self.stop_ids:
                    self.pending.discard(row)
                    self.report(row, input_ids[row, self.width:].tolist())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]


class TransformersEngine:
    """A loaded model and tokenizer; generates schema-constrained JSON for batches of conversations."""

    name: ClassVar[str] = "transformers+xgrammar"
    # generate_json takes ``on_answer`` and calls it as each row of a batch finishes (the pipeline asks by this flag).
    reports_answers: ClassVar[bool] = True

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
        # Set for one generate_json call: its on_answer, and the conversation index of each row of the running batch.
        self._on_answer: AnswerCallback | None = None
        self._reporting_rows: list[int] | None = None
        self._quote_sources: list[bytes] | None = None  # per conversation of the current generate_json call
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
        self._vocabulary: Vocabulary | None = None
        self._compiler: xgr.GrammarCompiler | None = None
        self._batch_matcher = xgr.BatchGrammarMatcher()
        self._plans: dict[tuple[str, bool], Plan] = {}
        self._adapters = AdapterSlots(model)
        # Shared-prefix reuse: the KV cache of the prompts' common prefix (the rubric's system prompt), computed once
        # and kept while later batches start with the same tokens under the same adapter.
        self.reuse_prefix = True
        self.prefilled_tokens = 0  # prompt tokens run through the model, for benchmarks
        self._prefix: tuple[tuple[tuple[int, ...], str | None], Any] | None = None

    @classmethod
    def load(cls, config: EngineConfig) -> TransformersEngine:
        """Load the tokenizer and model once per process; failures are logged and re-raised (a tokenizer that
        xgrammar reads otherwise than it decodes among them)."""
        started = time.perf_counter()
        engine = cls(config, *load_pretrained(config))
        try:
            engine._vocab()
        except Exception:
            logger.exception("cannot constrain %s's answers", config.model)
            raise
        logger.info("loaded %s in %.1f s: %s", config.model, time.perf_counter() - started, engine.describe())
        return engine

    def describe(self) -> dict[str, Any]:
        """Which engine, what is loaded and how much memory it holds (CUDA allocated, or the process RSS on CPU)."""
        if self.device == "cuda":
            memory = sum(torch.cuda.memory_allocated(i) for i in range(torch.cuda.device_count())) / 2**20
        else:
            memory = _process_rss_mb()
        return {
            "engine": self.name,
            "model": self.config.model,
            "device": self.device,
            "dtype": str(self.dtype).removeprefix("torch."),
            "quantization": self.config.quantization,
            "parameters": self.model.num_parameters(),
            "memory_mb": round(memory, 1),
            "adapter": self._adapters.active,
            "adapters_loaded": len(self._adapters.loaded),
        }

    def use_adapter(self, name: str | None, path: Path | None) -> str | None:
        """Generate with the LoRA adapter ``name`` (loaded from ``path`` once) over the same base model, or with the
        base model alone (None); returns the adapter now on (``AdapterSlots.use``)."""
        return self._adapters.use(name, path)

    def drop_adapter(self, name: str) -> bool:
        """Unload an adapter no batch will ask for again (``AdapterSlots.drop``)."""
        return self._adapters.drop(name)

    def prepare(self, schema: dict[str, Any]) -> None:
        """Compile the schema's grammar now (seconds for a Qwen vocabulary) rather than in the first batch."""
        self._plan(schema, constrained=True)

    # --- generation ----------------------------------------------------------------------------------

    def generate_json(
        self, conversations: Sequence[Conversation], schema: dict[str, Any], *, constrained: bool = True,
        on_answer: AnswerCallback | None = None, quotes: Sequence[Sequence[str]] | None = None,
    ) -> list[Generation]:
        """Answer each conversation with JSON valid under ``schema``, in input order.

        ``constrained=False`` decodes freely under the same token budget (for comparisons only).
        A conversation that fails on its own gets ``Generation.error``; its batch-mates are unaffected.
        ``on_answer(index, generation)`` is called during generation for each conversation whose answer reached its
        stop token, as it does (an answer cut off by the token limit is only returned). A batch retried in halves
        after a failure may report a conversation twice: the first report stands.
        ``quotes[i]`` are the texts conversation i may quote: its answer's quotation strings (evidence, an error's
        original) can only continue a passage of them (``quotes.QuoteConstrainer``; off with quotes_from_essay).
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
        self._on_answer = on_answer
        self._quote_sources = (
            [quote_sources(texts) for texts in quotes] if quotes is not None and self.config.quotes_from_essay
            else None
        )
        try:
            for batch in batches:
                for index, generation in zip(batch, self._generate_isolating(batch, prompts, plan), strict=True):
                    results[index] = generation
        finally:
            self._on_answer, self._reporting_rows, self._quote_sources = None, None, None
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
        self, batch: list[int], prompts: list[list[int]], plan: Plan
    ) -> list[Generation]:
        """Generate a batch; on failure split it in halves until the failing conversation stands alone."""
        self._reporting_rows = batch
        try:
            return self._generate_batch([prompts[i] for i in batch], plan)
        except Exception as exc:
            if is_deadline(exc):
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

    def _generate_batch(self, prompts: list[list[int]], plan: Plan) -> list[Generation]:
        """One ``generate`` call over left-padded prompts (overridable, e.g. to inject failures in tests)."""
        width = max(len(p) for p in prompts)
        input_ids, attention_mask, cached = self._layout(prompts, width)
        processor = None
        if plan.grammar is not None:
            processor = GrammarProcessor(plan, self._vocab(), self._batch_matcher, len(prompts))
        processors: list[Any] = [processor] if processor else []
        sources, rows = self._quote_sources, self._reporting_rows
        if processor is not None and sources is not None and rows is not None and len(rows) == len(prompts):
            processors.append(QuoteConstrainer(self._vocab().pieces, [sources[i] for i in rows]))
        if processor is not None and self.config.no_repeat_chars >= 2:  # inside strings only: needs the grammar
            processors.append(StringRepeatBlocker(self._vocab().pieces, self.config.no_repeat_chars, len(prompts)))
        started = time.perf_counter()

        def answer(row: int, new: list[int], latency: float) -> Generation:
            stops = [k for k, token in enumerate(new) if token in self.stop_ids]
            finished = bool(stops)
            new = new[: stops[0] + 1] if finished else new
            text = self._vocab().decode(new)  # the bytes the grammar matched, not a re-reading of the tokens
            forced = processor.forced[row] if processor else False
            ends = tuple(itertools.accumulate(len(self._vocab().pieces[token]) for token in new))
            probs = tuple(processor.chosen[row][: len(new)]) if processor else ()
            return Generation(text, len(prompts[row]), len(new), latency, finished, forced_close=forced,
                              token_probs=probs if len(probs) == len(new) else (), token_ends=ends)

        criteria = None
        on_answer, rows = self._on_answer, self._reporting_rows
        if on_answer is not None and rows is not None and len(rows) == len(prompts):
            def report(row: int, new: list[int]) -> None:
                on_answer(rows[row], answer(row, new, (time.perf_counter() - started) / len(prompts)))

            criteria = StoppingCriteriaList([_AnswerWatcher(width, set(self.stop_ids), report, len(prompts))])
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                generation_config=plan.generation_config,
                logits_processor=processors or None,
                stopping_criteria=criteria,
                **cached,
            )
        latency = (time.perf_counter() - started) / len(prompts)
        generations = [answer(row, output[row, width:].tolist(), latency) for row in range(len(prompts))]
        logger.debug(
            "batch of %s, prompts up to %s tokens: %.2f s", len(prompts), width, latency * len(prompts)
        )
        return generations

    # --- shared-prefix reuse --------------------------------------------------------------------------

    def _layout(self, prompts: list[list[int]], width: int) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Padded inputs for ``generate``. Where the prompts share a cached prefix, the padding goes between it and
        each prompt's own tokens (positions follow the attention mask) and ``past_key_values`` holds the prefix, so
        only the rest is prefilled; otherwise the prompts are left-padded."""
        pad_id = self.tokenizer.pad_token_id
        shared = self._shared_prefix(prompts) if self.reuse_prefix else 0
        rows = [p[:shared] + [pad_id] * (width - len(p)) + p[shared:] for p in prompts]
        mask = [[1] * shared + [0] * (width - len(p)) + [1] * (len(p) - shared) for p in prompts]
        cached: dict[str, Any] = {}
        if shared:
            cached[_CACHE_ARGUMENT] = self._prefix_cache(tuple(prompts[0][:shared]), len(prompts))
        self.prefilled_tokens += sum(len(p) - shared for p in prompts)
        device = self.input_device
        return torch.tensor(rows, device=device), torch.tensor(mask, device=device), cached

    def _shared_prefix(self, prompts: list[list[int]]) -> int:
        """Tokens at the start of every prompt whose keys and values can be reused: the cached prefix if every prompt
        starts with it (and goes on past it), else the batch's longest common prefix; 0 when too short to pay."""
        shortest = min(len(p) for p in prompts) - 1  # each row keeps a token of its own to prefill
        if self._prefix is not None:
            (tokens, adapter), _ = self._prefix
            if adapter == self._active_adapter() and len(tokens) <= shortest and all(
                tuple(p[: len(tokens)]) == tokens for p in prompts
            ):
                return len(tokens)
        if len(prompts) < 2:
            return 0
        shared = 0
        for column in zip(*prompts, strict=False):
            if shared >= shortest or any(token != column[0] for token in column):
                break
            shared += 1
        return shared if shared >= _MIN_SHARED_PREFIX else 0

    def _active_adapter(self) -> str | None:
        adapters = getattr(self, "_adapters", None)  # LoRA adapters change the keys and values of the same tokens
        return adapters.active if adapters is not None else None

    def _prefix_cache(self, prefix: tuple[int, ...], batch: int) -> Any:
        """A copy of the prefix's KV cache for ``batch`` rows; the prefix is run through the model once."""
        key = (prefix, self._active_adapter())
        with torch.inference_mode():
            if self._prefix is None or self._prefix[0] != key:
                ids = torch.tensor([prefix], device=self.input_device)
                output = self.model(input_ids=ids, use_cache=True)
                self._prefix = (key, output[_CACHE_ARGUMENT])
                self.prefilled_tokens += len(prefix)
            cache = copy.deepcopy(self._prefix[1])
            if batch > 1:
                cache.batch_repeat_interleave(batch)
        return cache

    # --- grammars ------------------------------------------------------------------------------------

    def _vocab(self) -> Vocabulary:
        if self._vocabulary is None:
            info = tokenizer_info(self.tokenizer, self.model.config.vocab_size, self.stop_ids)
            vocabulary = Vocabulary.build(info, self.input_device)  # generate puts logits there
            vocabulary.check(self.tokenizer)
            self._vocabulary = vocabulary
        return self._vocabulary

    def _plan(self, schema: dict[str, Any], constrained: bool) -> Plan:
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
            grammar = self._compiler.compile_grammar(json_schema_grammar(key[0]))
        generation_config = GenerationConfig(**self._greedy, max_new_tokens=max_new_tokens)
        plan = Plan(grammar, max_new_tokens, reserve, generation_config)
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
