"""LoRA training speed and memory: tokens per second through the trainer and the peak memory it took.

    python bench/train.py                                   # the tests' tiny model on the CPU
    python bench/train.py --shape qwen2.5-7b --device cuda  # Qwen2.5-7B's shape, random weights, bf16
    python bench/train.py --shape qwen2.5-7b --device cuda --quantization 4bit --gradient-checkpointing  # QLoRA

The examples are what a training job feeds the trainer: real essays (essays-acea, read where it lies; a synthetic
essay if it is missing) through the grading pipeline's own conversation (``prepare_for_training``) with a teacher
answer under the shipped rubric's schema. ``train_lora`` runs as the job runs it (its own load of the model through
``load_pretrained``, LoRA on every projection, one example per forward pass, the loss on the answer only), for
``--steps`` optimizer steps, and saves the adapter. Random weights: the figures are speed and memory only.
Peak memory is CUDA's peak allocation on a GPU, the process's peak RSS on the CPU. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def examples(essays: list[tuple[str, list[str]]], seed: int) -> list[tuple[list[dict[str, str]], str]]:
    from services.worker.jobs import EssayJob
    from services.worker.pipeline import prepare_for_training
    from services.worker.training.dataset import answer_target
    from shared.prompts.rubric import load_rubric

    rubric = load_rubric("gaokao-national")
    rng = random.Random(seed)
    pairs = []
    for index, (title, paragraphs) in enumerate(essays):
        job = EssayJob(essay_id=index, text=title + "\n" + "\n".join(paragraphs),
                       assignment_prompt=f"以“{title}”为题写一篇文章。", genre="议论文", required_length=800,
                       rubric_id=rubric.id)
        conversation, (comment,) = prepare_for_training(job, ["立意明确，论证较充分，语言通顺。"])
        if conversation is None:
            continue
        scores = {dim.key: rng.randint(dim.max // 2, dim.max) for dim in rubric.dimensions}
        pairs.append((conversation, answer_target(rubric, scores, comment)))
    return pairs


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=["tiny", "qwen2.5-0.5b", "qwen2.5-7b"], default="tiny")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--quantization", choices=["none", "4bit"], default="none")
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps (one example each)")
    parser.add_argument("--n-essays", type=int, default=8)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=4096, help="longer examples are left out")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--essays", type=Path, default=REPO.parent / "shared/data/essays-acea/data.json")
    parser.add_argument("--model", type=Path, default=None, help="a model directory instead of a random one")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    here = Path(__file__).resolve().parent  # bench/platform.py must not shadow the standard library's platform
    sys.path[:] = [str(REPO), *(p for p in sys.path if Path(p or ".").resolve() != here)]
    import torch

    from bench.engine import SYNTHETIC_ESSAY, build_model, read_essays
    from services.worker.engine import EngineConfig
    from services.worker.training.params import TrainParams
    from services.worker.training.trainer import train_lora

    if args.device == "cpu":
        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    essays = read_essays(args.essays, args.n_essays) if args.essays.is_file() else [SYNTHETIC_ESSAY]
    pairs = examples(essays, seed=0)
    dtype = torch.float32 if args.device == "cpu" else torch.bfloat16
    with tempfile.TemporaryDirectory(prefix="yuejuan-train-bench-") as scratch:
        started = time.perf_counter()
        if args.model is not None:
            model_dir = args.model
        elif args.shape == "tiny":
            from tests.tiny_model import TINY_MODEL_TEXTS, build_tiny_qwen2

            model_dir = build_tiny_qwen2(Path(scratch) / "model", TINY_MODEL_TEXTS)
        else:  # weights made on the device they will run on, in the dtype they load in
            model_dir = build_model(Path(scratch) / "model", essays, args.shape, args.device, dtype)
        build_s = time.perf_counter() - started
        config = EngineConfig(model=str(model_dir), device=args.device,
                              dtype="float32" if args.device == "cpu" else "bfloat16",
                              quantization=args.quantization)
        params = TrainParams(rank=args.rank, alpha=2 * args.rank, max_steps=args.steps, grad_accum=1,
                             max_tokens=args.max_tokens, gradient_checkpointing=args.gradient_checkpointing)
        steps: list[tuple[int, float]] = []
        stats = train_lora(config, pairs, params, Path(scratch) / "adapter",
                           progress=lambda step, total, loss: steps.append((step, loss)))
        adapter_mb = sum(p.stat().st_size for p in (Path(scratch) / "adapter").iterdir()) / 2**20
    result: dict[str, Any] = {
        "bench": "train", "shape": args.shape if args.model is None else str(args.model), "device": stats.device,
        "dtype": stats.dtype, "quantization": args.quantization, "rank": args.rank, "steps": stats.steps,
        "examples": stats.examples, "skipped_too_long": stats.skipped_too_long,
        "tokens": stats.tokens, "tokens_per_example_mean": round(stats.tokens / max(1, stats.steps), 1),
        "seconds": round(stats.seconds, 2), "tokens_per_s": round(stats.tokens_per_s, 1),
        "peak_memory_mb": stats.peak_memory_mb,
        "peak_memory_kind": "cuda_max_allocated" if stats.device == "cuda" else "process_peak_rss",
        "adapter_mb": round(adapter_mb, 2), "model_build_s": round(build_s, 1),
        "first_loss": steps[0][1] if steps else None, "last_loss": steps[-1][1] if steps else None,
        "gradient_checkpointing": args.gradient_checkpointing, "torch_threads": torch.get_num_threads(),
        "load_average": round(os.getloadavg()[0], 2),
    }
    print(f"{result['tokens_per_s']} training tokens/s, peak memory {result['peak_memory_mb']} MB "
          f"({result['peak_memory_kind']}), {stats.steps} steps in {result['seconds']} s", file=sys.stderr)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
