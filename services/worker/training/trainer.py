"""Train a LoRA adapter with peft on the configured base model: the loss only on the answer's tokens, fixed seeds,
one example per forward pass with gradient accumulation (no padding), progress and a stop check after every step.

The base model is loaded here as the engine loads it (``load_pretrained``: same device, dtype and quantization;
4-bit is QLoRA). The grading worker's own model is left untouched: training holds a second copy while it runs.
"""

from __future__ import annotations

import logging
import math
import random
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from services.worker.engine.interface import EngineConfig
from services.worker.engine.loading import load_pretrained
from services.worker.training.params import TrainParams

logger = logging.getLogger(__name__)

# The linear layers LoRA adapts: attention and MLP projections, as named in Qwen2 and Llama.
TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class TrainingCancelled(Exception):
    """The stop check said stop; nothing is saved."""


@dataclass
class TrainStats:
    steps: int
    examples: int
    skipped_too_long: int
    tokens: int  # prompt and answer tokens through the forward passes
    seconds: float
    tokens_per_s: float
    peak_memory_mb: float  # CUDA peak allocated, or the process's peak RSS on CPU
    device: str
    dtype: str
    losses: list[tuple[int, float]] = field(default_factory=list)


Progress = Callable[[int, int, float], None]  # step, total steps, that step's mean loss


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def encode(tokenizer: Any, conversation: list[dict[str, str]], target: str, stop_id: int) -> tuple[list[int], int]:
    """Prompt tokens as the engine builds them (chat template with the generation prompt, no extra special tokens)
    followed by the answer and the stop token; returns the ids and where the answer starts."""
    prompt = tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(target, add_special_tokens=False)["input_ids"]
    return [*prompt_ids, *answer_ids, stop_id], len(prompt_ids)


def stop_token(model: Any, tokenizer: Any) -> int:
    """The token the engine stops at: the tokenizer's EOS, else the model's first."""
    if tokenizer.eos_token_id is not None:
        return int(tokenizer.eos_token_id)
    eos = model.generation_config.eos_token_id
    return int(eos[0] if isinstance(eos, list) else eos)


def load_for_training(config: EngineConfig, params: TrainParams) -> tuple[Any, Any, str, torch.dtype]:
    """The base model wrapped with fresh LoRA layers (seeded), ready to train."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    seed_everything(params.seed)
    model, tokenizer, device, dtype = load_pretrained(config)
    if config.quantization != "none":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=params.gradient_checkpointing)
    elif params.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    lora = LoraConfig(r=params.rank, lora_alpha=params.alpha, lora_dropout=params.dropout,
                      target_modules=TARGET_MODULES, bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, lora), tokenizer, device, dtype


def train_lora(
    config: EngineConfig, examples: Sequence[tuple[list[dict[str, str]], str]], params: TrainParams, out_dir: Path,
    *, progress: Progress | None = None, should_stop: Callable[[], bool] | None = None,
) -> TrainStats:
    """Train on (conversation, target) pairs and save the adapter to ``out_dir`` (adapter_config.json and
    adapter_model.safetensors). Raises TrainingCancelled when ``should_stop`` says so (checked every step)."""
    model, tokenizer, device, dtype = load_for_training(config, params)
    stop_id = stop_token(model, tokenizer)
    encoded = [encode(tokenizer, conversation, target, stop_id) for conversation, target in examples]
    usable = [item for item in encoded if len(item[0]) <= params.max_tokens]
    if not usable:
        raise ValueError(f"没有不超过 {params.max_tokens} 个词元的训练样本")
    total = params.max_steps or math.ceil(len(usable) / params.grad_accum) * params.epochs
    order_rng = random.Random(params.seed)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=params.learning_rate)
    input_device = model.get_input_embeddings().weight.device
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    model.train()
    stats = TrainStats(steps=0, examples=len(usable), skipped_too_long=len(encoded) - len(usable), tokens=0,
                       seconds=0.0, tokens_per_s=0.0, peak_memory_mb=0.0, device=device,
                       dtype=str(dtype).removeprefix("torch."))
    queue: list[tuple[list[int], int]] = []
    started = time.perf_counter()
    for step in range(1, total + 1):
        if should_stop is not None and should_stop():
            raise TrainingCancelled(f"stopped before step {step} of {total}")
        batch = []
        for _ in range(params.grad_accum):
            if not queue:
                queue = list(usable)
                order_rng.shuffle(queue)
            batch.append(queue.pop())
        step_loss = 0.0
        for ids, answer_start in batch:
            input_ids = torch.tensor([ids], device=input_device)
            labels = input_ids.clone()
            labels[0, :answer_start] = -100  # learn the answer, not the prompt
            loss = model(input_ids=input_ids, labels=labels).loss / len(batch)
            loss.backward()
            step_loss += float(loss.detach())
            stats.tokens += len(ids)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        stats.steps = step
        stats.losses.append((step, round(step_loss, 5)))
        if progress is not None:
            progress(step, total, step_loss)
    stats.seconds = time.perf_counter() - started
    stats.tokens_per_s = stats.tokens / stats.seconds if stats.seconds else 0.0
    stats.peak_memory_mb = round(peak_memory_mb(device), 1)
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    logger.info("trained %s steps on %s examples: %.0f tokens/s, loss %.4f → %.4f", total, len(usable),
                stats.tokens_per_s, stats.losses[0][1], stats.losses[-1][1])
    del model, optimizer
    if device == "cuda":
        torch.cuda.empty_cache()
    return stats


def peak_memory_mb(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
