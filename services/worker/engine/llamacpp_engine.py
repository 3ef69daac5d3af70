"""The llama.cpp engine: a GGUF model served in-process by llama.cpp (through ``xllamacpp``), answering with JSON
under the same grammar as the transformers engine, so that a school without a GPU can run a 7B-class model.

The schema's grammar is xgrammar's (strict strings, integer bounds as alternatives of digit strings), translated to
llama.cpp's GBNF; llama.cpp applies it while sampling. Special tokens other than the end of generation are banned
(they are no text to the grammar). The closing guard works by grammar: an answer that reaches ``max_new_tokens``
without closing is generated again under the schema narrowed (shorter strings, fewer list items) until its longest
answer fits the budget, so every answer parses; such answers are marked ``forced_close``. Conversations go to
llama.cpp's parallel slots from a thread pool and are decoded together (continuous batching); one that fails gets
``Generation.error`` and the others are unaffected.
"""

from __future__ import annotations

import codecs
import json
import logging
import os
import secrets
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from services.worker.engine.interface import Conversation, EngineConfig, Generation, ModelUnavailable, is_deadline
from services.worker.engine.schema_bounds import fit_schema_to_budget, max_tokens_for_schema

logger = logging.getLogger(__name__)

# Measured with bench/engine.py --engines llamacpp (README, "CPU schools"): on a 2-core machine one worker process
# decoding 4 essays at once in 2 threads graded the most essays per hour.
DEFAULT_PARALLEL = 4


def cpu_threads() -> int:
    """The cores this process may run on (a container's CPU set, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class _ModelFacts:
    """What the GGUF file says about itself: chat template, special tokens, size and weight type."""

    chat_template: str
    tokens: tuple[str, ...]  # as the GGUF spells them (byte-level BPE: Ġ for a space)
    bos_text: str
    eos_text: str
    adds_bos: bool
    banned_ids: tuple[int, ...]  # control tokens other than the end of generation
    parameters: int
    file_type: str

    @classmethod
    def read(cls, path: Path) -> _ModelFacts:
        import gguf

        reader = gguf.GGUFReader(str(path))
        fields = reader.fields

        def value(key: str, default: Any = None) -> Any:
            return fields[key].contents() if key in fields else default

        tokens: list[str] = value("tokenizer.ggml.tokens", [])
        types: list[int] = value("tokenizer.ggml.token_type", [])
        template = value("tokenizer.chat_template")
        if not template:
            raise ValueError(f"{path}: the GGUF file has no chat template (tokenizer.chat_template)")
        eos, bos = value("tokenizer.ggml.eos_token_id"), value("tokenizer.ggml.bos_token_id")
        end_of_generation = {eos, value("tokenizer.ggml.eot_token_id"), value("tokenizer.ggml.eom_token_id")}
        end_of_generation |= {i for i, t in enumerate(tokens) if t in ("<|im_end|>", "<|endoftext|>", "<|eot_id|>")}
        control, normal = int(gguf.TokenType.CONTROL), int(gguf.TokenType.NORMAL)
        banned = tuple(
            i for i, (token, kind) in enumerate(zip(tokens, types, strict=False))
            if (kind == control and i not in end_of_generation)
            or (kind == normal and not _utf8_safe(_byte_level_bytes(token)))
        )
        file_type = value("general.file_type")
        return cls(
            chat_template=template,
            tokens=tuple(tokens),
            bos_text=tokens[bos] if bos is not None else "",
            eos_text=tokens[eos] if eos is not None else "",
            adds_bos=bool(value("tokenizer.ggml.add_bos_token", False)),
            banned_ids=banned,
            parameters=sum(int(t.n_elements) for t in reader.tensors),
            file_type=gguf.LlamaFileType(file_type).name.removeprefix("MOSTLY_").lower() if file_type is not None
            else "unknown",
        )


class LlamaCppEngine:
    """A GGUF model in llama.cpp's server (in this process, no port used by callers), with parallel slots."""

    name: ClassVar[str] = "llamacpp+gbnf"

    def __init__(self, config: EngineConfig, server: Any, facts: _ModelFacts, threads: int, parallel: int) -> None:
        self.config = config
        self.server = server
        self.facts = facts
        self.threads = threads
        self.parallel = parallel
        self._template = _compile_template(facts.chat_template)
        self._grammars: dict[str, str] = {}
        self.logit_bias: dict[int, float] = {}  # added to the model's logits (tests tempt the model with it)
        self._pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="llamacpp-slot")

    @classmethod
    def load(cls, config: EngineConfig) -> LlamaCppEngine:
        """Start llama.cpp on the GGUF file with ``threads`` threads and ``parallel`` slots; failures are logged and
        re-raised (a missing file as ``ModelUnavailable``)."""
        import xllamacpp

        path = Path(config.model).expanduser()
        if not path.is_file():
            raise ModelUnavailable(
                f"找不到 GGUF 模型文件 {config.model}。请设置 YUEJUAN_MODEL=/path/to/model.gguf，或用 "
                f"`yuejuan model convert` 从本地 Hugging Face 模型目录生成。"
                f"No GGUF file at {config.model}: set YUEJUAN_MODEL to a .gguf file, or make one with "
                f"`yuejuan model convert SRC`."
            )
        if config.device == "cuda" or config.quantization != "none":
            raise ValueError("the llama.cpp engine runs on the CPU with the GGUF file's own weight type: "
                             "set YUEJUAN_DEVICE=cpu (or auto) and YUEJUAN_QUANTIZATION=none")
        threads = config.threads or cpu_threads()
        parallel = config.parallel or DEFAULT_PARALLEL
        started = time.perf_counter()
        try:
            facts = _ModelFacts.read(path)
            params = xllamacpp.CommonParams()
            params.model.path = str(path)
            params.n_parallel = parallel
            # Each slot has its own share of the context (prompt + answer of one essay): a long essay fails alone
            # rather than starving the others mid-answer, as a shared pool would.
            params.kv_unified = False
            params.n_ctx = config.batch_token_budget
            params.n_batch = params.n_ubatch = 512
            params.cpuparams.n_threads = threads
            params.cpuparams_batch.n_threads = threads
            params.n_gpu_layers = 0
            params.warmup = False
            params.verbosity = -1
            # xllamacpp also opens llama.cpp's HTTP endpoint on a free loopback port; the engine calls the server
            # in-process, so that endpoint gets a key nobody knows.
            params.api_keys = [secrets.token_urlsafe(32)]
            server = xllamacpp.Server(params)
        except Exception:
            logger.exception("could not load %s with llama.cpp", config.model)
            raise
        engine = cls(config, server, facts, threads, parallel)
        logger.info("loaded %s in %.1f s: %s", config.model, time.perf_counter() - started, engine.describe())
        return engine

    def describe(self) -> dict[str, Any]:
        return {
            "engine": self.name,
            "model": self.config.model,
            "device": "cpu",
            "dtype": self.facts.file_type,
            "quantization": "gguf",
            "parameters": self.facts.parameters,
            "threads": self.threads,
            "parallel": self.parallel,
            "memory_mb": round(_process_rss_mb(), 1),
        }

    def prepare(self, schema: dict[str, Any]) -> None:
        """Translate the schema's grammar now rather than in the first batch."""
        self._grammar(schema)

    # --- generation ----------------------------------------------------------------------------------

    def render(self, conversation: Conversation) -> str:
        """The prompt text, rendered with the model's own chat template (as ``apply_chat_template`` does)."""
        text = self._template.render(
            messages=list(conversation), add_generation_prompt=True, bos_token=self.facts.bos_text,
            eos_token=self.facts.eos_text,
        )
        if self.facts.adds_bos and self.facts.bos_text and text.startswith(self.facts.bos_text):
            text = text[len(self.facts.bos_text):]  # llama.cpp adds the BOS itself when it tokenizes
        return text

    def generate_json(
        self, conversations: Sequence[Conversation], schema: dict[str, Any], *, constrained: bool = True
    ) -> list[Generation]:
        """Answer each conversation with JSON valid under ``schema``, in input order; the slots decode together."""
        if not conversations:
            return []
        budget = self._budget(schema)
        grammar = self._grammar(schema) if constrained else None
        prompts = [self.render(c) for c in conversations]
        started = time.perf_counter()
        futures = [self._pool.submit(self._answer, prompt, grammar, schema, budget) for prompt in prompts]
        results = [future.result() for future in futures]
        elapsed = time.perf_counter() - started
        latency = elapsed / len(results)
        logger.info("generated %s answers in %.1f s (%s failed)", len(results), elapsed,
                    sum(1 for r in results if r.error))
        return [Generation(r.text, r.prompt_tokens, r.new_tokens, latency, r.finished, r.error, r.forced_close)
                for r in results]

    def _answer(self, prompt: str, grammar: str | None, schema: dict[str, Any], budget: int) -> Generation:
        """One conversation; an error is this conversation's alone."""
        try:
            generation = self._complete(prompt, grammar, budget)
            if grammar is not None and not generation.finished:
                try:
                    narrowed = fit_schema_to_budget(schema, budget)
                except ValueError:  # an unbounded schema: nothing narrower is known to fit
                    narrowed = None
                if narrowed is None:
                    return generation
                logger.info("answer reached %s tokens unclosed: generating it again under a narrowed schema", budget)
                again = self._complete(prompt, self._grammar(narrowed), budget)
                return Generation(again.text, again.prompt_tokens, again.new_tokens, 0.0,
                                  again.finished, again.error, forced_close=True)
            return generation
        except Exception as exc:
            if is_deadline(exc):
                raise
            logger.exception("generation failed for a prompt of %s characters", len(prompt))
            return Generation("", 0, 0, 0.0, finished=False, error=f"{type(exc).__name__}: {exc}")

    def _complete(self, prompt: str, grammar: str | None, budget: int) -> Generation:
        """One request to llama.cpp: greedy, ``budget`` new tokens at most, special tokens banned."""
        request: dict[str, Any] = {
            "prompt": prompt,
            "n_predict": budget,
            "temperature": 0.0,
            "top_k": 1,
            "repeat_penalty": 1.0,
            "cache_prompt": True,
            # llama.cpp adds every entry to the logits; a ban (False: minus infinity) outweighs any bias.
            "logit_bias": [[token_id, bias] for token_id, bias in self.logit_bias.items()]
            + [[token_id, False] for token_id in self.facts.banned_ids],
        }
        if grammar is not None:
            request["grammar"] = grammar
        response = self.server.handle_completions(request)
        if "error" in response:
            error = response["error"]
            raise RuntimeError(error.get("message", str(error)) if isinstance(error, dict) else str(error))
        choice = response["choices"][0]
        usage = response.get("usage", {})
        return Generation(
            text=choice["text"],
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            new_tokens=int(usage.get("completion_tokens", 0)),
            latency_s=0.0,
            finished=choice.get("finish_reason") == "stop",
        )

    # --- grammars ------------------------------------------------------------------------------------

    def _grammar(self, schema: dict[str, Any]) -> str:
        """The schema's GBNF, once per schema (the same grammar the transformers engine compiles with xgrammar)."""
        from services.worker.engine.grammar import gbnf_from_ebnf, json_schema_grammar

        key = json.dumps(schema, ensure_ascii=False, separators=(",", ":"))
        if key not in self._grammars:
            self._grammars[key] = gbnf_from_ebnf(json_schema_grammar(key))
        return self._grammars[key]

    def _budget(self, schema: dict[str, Any]) -> int:
        """New tokens per answer: configured, or the schema's worst case, whichever is smaller."""
        configured = self.config.max_new_tokens
        try:
            longest = max_tokens_for_schema(schema)
        except ValueError as exc:
            if configured is None:
                raise ValueError(f"{exc}; set EngineConfig.max_new_tokens for this schema") from exc
            return configured
        return longest if configured is None else min(configured, longest)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _gpt2_byte_table() -> dict[str, int]:
    """Byte-level BPE's spelling of bytes: printable Latin-1 stands for itself, the other bytes are shifted past 255."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, shifted = {}, 0
    for byte in range(256):
        if byte in printable:
            table[chr(byte)] = byte
        else:
            table[chr(256 + shifted)] = byte
            shifted += 1
    return table


_BYTE_TABLE = _gpt2_byte_table()


def _byte_level_bytes(token: str) -> bytes | None:
    """The bytes a byte-level BPE token stands for; None where the token is not spelled that way."""
    try:
        return bytes(_BYTE_TABLE[char] for char in token)
    except KeyError:
        return None


def _utf8_safe(raw: bytes | None) -> bool:
    """Whether llama.cpp's grammar reads this token's bytes as Python decodes them.

    llama.cpp checks only the continuation bytes that finish a character begun in an earlier token; within a token it
    takes the bytes after a lead byte without looking, and it never checks for overlong or out-of-range forms. So a
    token may carry, after any continuation bytes that finish such a character, only whole valid characters and then
    the valid start of one whose every completion is valid (not a bare E0, F0 or F4, which an overlong or
    out-of-range byte could follow). Tokens that fail are banned: the grammar would count, or even close, otherwise.
    """
    if raw is None:
        return True
    start = 0
    while start < len(raw) and 0x80 <= raw[start] < 0xC0:
        start += 1
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(raw[start:], final=False)
    except UnicodeDecodeError:
        return False
    pending, _ = decoder.getstate()
    return pending not in (b"\xe0", b"\xf0", b"\xf4")


def _process_rss_mb() -> float:
    try:
        import psutil
    except ImportError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # peak, KiB on Linux
    return psutil.Process().memory_info().rss / 2**20


def _compile_template(source: str) -> Any:
    """The chat template as transformers compiles it (sandboxed Jinja, trimmed blocks)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise ValueError(message)

    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    environment.globals["raise_exception"] = raise_exception
    environment.filters["tojson"] = lambda value, **kw: json.dumps(value, ensure_ascii=False, **kw)
    return environment.from_string(source)
