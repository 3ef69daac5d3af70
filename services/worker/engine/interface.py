"""What an engine is, without torch: its config, its result, the protocol it follows, and the one it loads by default.

An engine is a class with ``load(config)`` (once per process), ``generate_json(conversations, schema)`` (per batch)
and ``describe()``, whose ``"engine"`` names the implementation that generated (grades record it). Implementations
live one per module beside this one and are imported only where one is loaded (``runtime.load_engine``), so the
pipeline, the tasks and the commands can import this module anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, Self

from shared.settings import DeviceChoice, DtypeChoice, Quantization

if TYPE_CHECKING:
    from shared.settings import Settings

DEFAULT_ENGINE_CLASS = "services.worker.engine.transformers_engine:TransformersEngine"
LLAMACPP_ENGINE_CLASS = "services.worker.engine.llamacpp_engine:LlamaCppEngine"

Conversation = list[dict[str, str]]


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
    threads: int | None = None  # CPU threads (llama.cpp); None: the cores this process may use
    parallel: int | None = None  # essays decoded at once (llama.cpp's slots); None: the engine's measured default
    no_repeat_chars: int = 6  # inside a JSON string, no run of this many characters copied again; 0: off
    quotes_from_essay: bool = True  # evidence and errors' originals only continue passages of the essay

    @classmethod
    def from_settings(cls, settings: Settings, *, cuda_available: bool | None = None) -> EngineConfig:
        """Engine settings from the application settings; the default model depends on the device."""
        if settings.device == "cpu":
            on_gpu = False
        elif cuda_available is None:
            import torch  # only when asked which device there is: importing this module stays torch-free

            on_gpu = torch.cuda.is_available()
        else:
            on_gpu = cuda_available
        return cls(
            model=settings.resolved_model(on_gpu),
            device=settings.device,
            dtype=settings.dtype,
            quantization=settings.quantization,
            batch_token_budget=settings.batch_token_budget,
            max_new_tokens=settings.max_new_tokens,
            threads=settings.cpu_threads,
            parallel=settings.parallel_slots,
            no_repeat_chars=settings.no_repeat_chars,
            quotes_from_essay=settings.quotes_from_essay,
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
    # Per generated token: the probability greedy decoding gave it under the grammar's mask, and where its bytes end in
    # the answer (engines that measure it; services/worker/confidence.py turns them into a grade's confidence).
    token_probs: tuple[float, ...] = ()
    token_ends: tuple[int, ...] = ()


# Called with a conversation's index and its answer as soon as that answer is complete (engines that stream).
AnswerCallback = Callable[[int, Generation], None]


class Engine(Protocol):
    """A loaded model that answers conversations with JSON valid under a schema."""

    @classmethod
    def load(cls, config: EngineConfig) -> Self:
        """Load once per process; failures are logged and re-raised."""
        ...

    def generate_json(self, conversations: Sequence[Conversation], schema: dict[str, Any]) -> Sequence[Generation]:
        """One answer per conversation, in input order; a conversation that fails alone gets ``error``."""
        ...

    def describe(self) -> dict[str, Any]:
        """``engine`` (the implementation's name, recorded on grades), ``model``, ``device``, ``memory_mb``, ..."""
        ...


def engine_class_for(settings: Settings) -> str:
    """``module:Class`` of the engine to load: YUEJUAN_ENGINE_CLASS if set; else YUEJUAN_ENGINE; else llama.cpp for a
    ``.gguf`` model path and transformers for anything else."""
    if settings.engine_class:
        return settings.engine_class
    if settings.engine == "llamacpp" or (settings.engine == "auto" and (settings.model or "").endswith(".gguf")):
        return LLAMACPP_ENGINE_CLASS
    return DEFAULT_ENGINE_CLASS


def is_deadline(exc: BaseException) -> bool:
    """Celery's time limits must reach the task; matched by name so that an engine needs no Celery."""
    return any(cls.__name__ in ("SoftTimeLimitExceeded", "TimeLimitExceeded") for cls in type(exc).__mro__)
