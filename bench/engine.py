"""Throughput of the inference engine on a random-weight model of Qwen2.5's real shape.

    python bench/engine.py [--essays PATH] [--device cpu|cuda] [--shape qwen2.5-0.5b|qwen2.5-7b]
                           [--quantization none|4bit] [--batches 1,4,16] [--n-essays N]
                           [--max-new-tokens N] [--compare-batch N] [--model DIR]

The model is built into a temporary directory and loaded through ``TransformersEngine.load``, so the real loading
and generation path is measured. Its tokenizer is a byte-level BPE trained on the essays, padded with
filler tokens to Qwen2.5's vocabulary size so that xgrammar's per-token mask costs what it costs for the
real model. Random weights decide nothing worth reading: the figures are speed only. Prompts are the
real grading prompt (``render_grading_messages``) and the answer schema is the shipped rubric's.

Each batch size runs one ``generate_json`` call over that many essays (cycled from the first
``--n-essays``), constrained, with ``--max-new-tokens`` (small by default, so that the default run
ends within about ten minutes on 2 CPU cores; answers then stop before the JSON closes). Then the
``--compare-batch`` batch runs unconstrained for the same number of steps, and the time spent inside the
grammar processor is reported beside the whole step (``ms_per_step``: wall time over steps, prefill
included). The last line is one JSON object with every figure. On a GPU, each run also gets the
memory-bandwidth roofline: the weights' bytes read once per decoding step over the card's bandwidth
(``--bandwidth-gbs``, known cards detected), and the fraction of it the run reached.

Engines compared (``--engines transformers,llamacpp``): the same weights (``--model DIR``, or the random
``--shape``) go to both engines, the llama.cpp one through ``yuejuan model convert`` (``--gguf-quant``);
``--n-essays`` real essays, the real prompt and schema, each engine at each of its settings
(transformers: ``--batches`` x ``--torch-threads``; llama.cpp: ``--parallel`` x ``--threads``), all in one
run. Then the transformers engine grades the same batch with the rubric prefix prefilled for every essay
and reused (prefill tokens per essay, wall time), and llama.cpp its best setting without the grammar (the
mask's cost). The last line is one JSON object with essays per hour for each engine at its best setting.

    python bench/engine.py --engines transformers,llamacpp --model DIR --n-essays 8 --max-new-tokens 64
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ESSAYS = Path(__file__).resolve().parents[2] / "shared/data/essays-acea/data.json"
QWEN_TOKENIZER_SIZE = 151_665  # Qwen2.5's tokenizer, special tokens included (the model rounds up)
SHAPES: dict[str, dict[str, Any]] = {
    "qwen2.5-0.5b": dict(
        vocab_size=151_936,
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        tie_word_embeddings=True,
    ),
    "qwen2.5-7b": dict(
        vocab_size=152_064,
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        tie_word_embeddings=False,
    ),
}
SYNTHETIC_ESSAY = (
    "读书的意义",
    [
        "读书使人明智。古人说“腹有诗书气自华”，一个人读过的书，会慢慢变成他看世界的眼睛。" * 3,
        "在信息爆炸的今天，我们更需要沉下心来读几本好书，而不是只在手机上浏览碎片化的信息。" * 3,
        "读书也需要方法。只有边读边思考，把书中的道理与生活联系起来，读书才能真正改变我们。" * 3,
    ],
)


def read_essays(path: Path, limit: int | None = None) -> list[tuple[str, list[str]]]:
    """(title, paragraphs) from the ACEA JSON lines, or one synthetic essay when the file is absent."""
    if not path.is_file():
        logger.warning("%s not found: using a synthetic essay", path)
        return [SYNTHETIC_ESSAY]
    essays = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            paragraphs = ["".join(sentence[0] for sentence in para) for para in record["para"]]
            essays.append((record["title"], paragraphs))
            if limit is not None and len(essays) >= limit:
                break
    return essays


def _byte_symbols() -> dict[int, str]:
    """The printable stand-in byte-level BPE vocabularies use for each byte (the GPT-2 convention)."""
    kept = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    symbols = {byte: chr(byte) for byte in kept}
    spare = (chr(0x100 + n) for n in range(256))
    for byte in range(256):
        if byte not in symbols:
            symbols[byte] = next(spare)
    return symbols


def _filler_pieces(rng: random.Random) -> Iterator[str]:
    """Endless plausible vocabulary entries: Chinese words, English word pieces, code-like fragments."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    while True:
        roll = rng.random()
        if roll < 0.35:
            yield "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(rng.choice((1, 2, 2, 3, 4))))
        elif roll < 0.9:
            word = "".join(rng.choice(letters) for _ in range(rng.randint(2, 10)))
            yield (" " if rng.random() < 0.6 else "") + (word.title() if rng.random() < 0.2 else word)
        else:
            yield "".join(
                rng.choice(letters + "0123456789_.(){}[]<>=+-*/:;,'\"") for _ in range(rng.randint(2, 6))
            )


def pad_vocabulary(tokenizer: Any, size: int, seed: int = 0) -> Any:
    """Extend a trained byte-level BPE with unmerged filler entries until it holds ``size`` tokens."""
    from tokenizers import Tokenizer

    data = json.loads(tokenizer.to_str())
    vocab: dict[str, int] = data["model"]["vocab"]
    symbols = _byte_symbols()
    next_id = max(vocab.values()) + 1
    pieces = _filler_pieces(random.Random(seed))
    while next_id < size:
        entry = "".join(symbols[b] for b in next(pieces).encode())
        if entry not in vocab:
            vocab[entry] = next_id
            next_id += 1
    return Tokenizer.from_str(json.dumps(data))


def build_model(
    out_dir: Path, essays: list[tuple[str, list[str]]], shape: str, device: str, dtype: Any
) -> Path:
    """Random-weight model of ``shape`` with an essay-trained, Qwen-sized tokenizer, saved to ``out_dir``."""
    from tests.tiny_model import (
        TINY_MODEL_TEXTS,
        qwen2_config,
        save_random_qwen2,
        train_tokenizer,
        wrap_tokenizer,
    )

    texts = [title + "\n" + "\n".join(paragraphs) for title, paragraphs in essays] + TINY_MODEL_TEXTS
    trained = train_tokenizer(texts, vocab_size=32_000)
    hf_tokenizer = wrap_tokenizer(pad_vocabulary(trained, QWEN_TOKENIZER_SIZE))
    shape_kwargs = dict(SHAPES[shape])
    vocab_size = shape_kwargs.pop("vocab_size")
    config = qwen2_config(hf_tokenizer, vocab_size, **shape_kwargs)
    return save_random_qwen2(out_dir, hf_tokenizer, config, dtype=dtype, device=device)


def grading_conversations(essays: list[tuple[str, list[str]]]) -> tuple[list[list[dict[str, str]]], dict]:
    """The real grading prompt for each essay, and the shipped rubric's answer schema."""
    from services.worker.analysis import analyse
    from shared.prompts.answer_schema import answer_schema
    from shared.prompts.render import render_grading_messages
    from shared.prompts.rubric import load_rubric

    rubric = load_rubric("gaokao-national")
    conversations = []
    for title, paragraphs in essays:
        analysis = analyse(title + "\n" + "\n".join(paragraphs), rubric, 800)
        conversations.append(
            render_grading_messages(
                rubric,
                assignment_prompt=f"以“{title}”为题写一篇文章。",
                genre="议论文",
                required_length=800,
                title=analysis.title,
                body=analysis.body,
                facts=analysis.facts(),
            )
        )
    return conversations, answer_schema(rubric)


class _GrammarTimer:
    """Accumulates the wall time spent inside the engine's grammar logits processor."""

    def __init__(self, processor_class: Any) -> None:
        self.seconds = 0.0
        self.calls = 0
        original = processor_class.__call__

        def timed(processor: Any, input_ids: Any, scores: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(processor, input_ids, scores)
            finally:
                self.seconds += time.perf_counter() - started
                self.calls += 1

        processor_class.__call__ = timed

    def take(self) -> tuple[float, int]:
        taken = self.seconds, self.calls
        self.seconds, self.calls = 0.0, 0
        return taken


def measure(
    engine: Any, conversations: list, schema: dict, batch: int, constrained: bool, timer: _GrammarTimer
) -> dict:
    """One ``generate_json`` call over ``batch`` essays; speed figures for it."""
    chosen = [conversations[i % len(conversations)] for i in range(batch)]
    timer.take()
    started = time.perf_counter()
    generations = engine.generate_json(chosen, schema, constrained=constrained)
    wall = time.perf_counter() - started
    grammar_s, grammar_calls = timer.take()
    steps = max(g.new_tokens for g in generations)
    new_tokens = sum(g.new_tokens for g in generations)
    return {
        "batch": batch,
        "constrained": constrained,
        "wall_s": round(wall, 2),
        "essays_per_s": round(batch / wall, 4),
        "new_tokens_per_s": round(new_tokens / wall, 2),
        "prompt_tokens_mean": round(sum(g.prompt_tokens for g in generations) / batch, 1),
        "steps": steps,
        "ms_per_step": round(1000 * wall / steps, 1),
        "grammar_ms_per_step": round(1000 * grammar_s / grammar_calls, 2) if grammar_calls else 0.0,
        "finished": sum(g.finished for g in generations),
        "errors": sum(g.error is not None for g in generations),
        "load_1m": round(os.getloadavg()[0], 2),  # other work on the machine skews CPU figures
    }


# Memory bandwidth (GB/s) of cards a device may lend, for the roofline; --bandwidth-gbs for any other.
GPU_BANDWIDTH_GBS = {"H200": 4800.0, "H100 80GB HBM3": 3350.0, "H100 PCIe": 2000.0, "H100": 3350.0,
                     "A100-SXM4-80GB": 2039.0, "A100": 1555.0, "L40S": 864.0, "L4": 300.0, "A10": 600.0}


def roofline(engine: Any, bandwidth_gbs: float | None) -> dict[str, Any]:
    """Weights bytes read per decoding step and the fastest step the card's bandwidth allows."""
    import torch

    weights = sum(p.numel() * p.element_size() for p in engine.model.parameters())
    weights += sum(b.numel() * b.element_size() for b in engine.model.buffers())
    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""
    if bandwidth_gbs is None:
        bandwidth_gbs = next((v for k, v in GPU_BANDWIDTH_GBS.items() if k in name), None)
    floor_ms = 1000 * weights / (bandwidth_gbs * 1e9) if bandwidth_gbs else None
    return {"gpu": name, "weights_bytes": weights, "bandwidth_gbs": bandwidth_gbs,
            "roofline_ms_per_step": round(floor_ms, 3) if floor_ms else None}


def _engine_run(engine: Any, conversations: list, schema: dict, label: dict[str, Any],
                constrained: bool = True) -> dict[str, Any]:
    """One generate_json call over every conversation: essays per hour and what it took."""
    started = time.perf_counter()
    generations = engine.generate_json(conversations, schema, constrained=constrained)
    wall = time.perf_counter() - started
    new_tokens = sum(g.new_tokens for g in generations)
    return {
        **label,
        "constrained": constrained,
        "essays": len(generations),
        "wall_s": round(wall, 2),
        "essays_per_hour": round(3600 * len(generations) / wall, 1),
        "new_tokens": new_tokens,
        "ms_per_new_token": round(1000 * wall / max(new_tokens, 1), 2),
        "prompt_tokens_mean": round(sum(g.prompt_tokens for g in generations) / len(generations), 1),
        "finished": sum(g.finished for g in generations),
        "errors": sum(g.error is not None for g in generations),
        "load_1m": round(os.getloadavg()[0], 2),
    }


def compare_engines(args: argparse.Namespace, model_dir: Path, scratch: Path) -> dict[str, Any]:
    """Both engines on the same weights and essays, each at each of its settings; prefix reuse; llama.cpp's mask."""
    import torch

    from services.worker.engine import EngineConfig
    from services.worker.engine.gguf_convert import convert

    essays = read_essays(args.essays, args.n_essays or 8)
    conversations, schema = grading_conversations(essays)
    names = args.engines.split(",")
    results: dict[str, Any] = {"essays": len(conversations), "max_new_tokens": args.max_new_tokens, "runs": []}
    best: dict[str, dict[str, Any]] = {}

    def keep(run: dict[str, Any]) -> None:
        print(json.dumps(run, ensure_ascii=False))
        results["runs"].append(run)
        usable = run["constrained"] and run["errors"] == 0 and run.get("prefix_reuse", True)
        if usable and run["essays_per_hour"] > best.get(run["engine"], {}).get("essays_per_hour", 0):
            best[run["engine"]] = run

    if "transformers" in names:
        from services.worker.engine.transformers_engine import TransformersEngine

        config = EngineConfig(model=str(model_dir), device="cpu", batch_token_budget=10**9,
                              max_new_tokens=args.max_new_tokens)
        engine = TransformersEngine.load(config)
        engine.generate_json(conversations[:1], schema)  # warm-up
        for threads in [int(t) for t in args.torch_threads.split(",")]:
            torch.set_num_threads(threads)
            for batch in [int(b) for b in args.batches.split(",")]:
                engine.config = dataclasses.replace(config, batch_token_budget=_budget_for(engine, conversations,
                                                                                           batch, args))
                keep(_engine_run(engine, conversations, schema,
                                 {"engine": "transformers", "threads": threads, "batch": batch}))
        # Prefix reuse, before and after, on the best setting's batch.
        setting = best["transformers"]
        torch.set_num_threads(setting["threads"])
        engine.config = dataclasses.replace(config, batch_token_budget=_budget_for(
            engine, conversations, setting["batch"], args))
        reuse: dict[str, Any] = {}
        for enabled in (False, True):
            engine.reuse_prefix, engine.prefilled_tokens, engine._prefix = enabled, 0, None
            run = _engine_run(engine, conversations, schema, {"engine": "transformers", "threads": setting["threads"],
                                                              "batch": setting["batch"], "prefix_reuse": enabled})
            run["prefill_tokens_per_essay"] = round(engine.prefilled_tokens / len(conversations), 1)
            keep(run)
            reuse["after" if enabled else "before"] = {
                k: run[k] for k in ("wall_s", "essays_per_hour", "prefill_tokens_per_essay")
            }
        results["prefix_reuse"] = reuse
        del engine

    if "llamacpp" in names:
        from services.worker.engine.llamacpp_engine import LlamaCppEngine

        gguf = convert(model_dir, scratch / f"model-{args.gguf_quant}.gguf", args.gguf_quant)
        for threads in [int(t) for t in args.threads.split(",")]:
            for parallel in [int(p) for p in args.parallel.split(",")]:
                budget = parallel * (max(len(c[0]["content"]) + len(c[1]["content"]) for c in conversations) * 2
                                     + args.max_new_tokens + 64)
                engine = LlamaCppEngine.load(EngineConfig(
                    model=str(gguf), threads=threads, parallel=parallel, batch_token_budget=budget,
                    max_new_tokens=args.max_new_tokens))
                engine.generate_json(conversations[:1], schema)  # warm-up
                keep(_engine_run(engine, conversations, schema,
                                 {"engine": "llamacpp", "threads": threads, "parallel": parallel}))
                if args.free_every_setting or (threads, parallel) == (
                        max(int(t) for t in args.threads.split(",")), max(int(p) for p in args.parallel.split(","))):
                    free = _engine_run(engine, conversations, schema,
                                       {"engine": "llamacpp", "threads": threads, "parallel": parallel}, False)
                    keep(free)
                    constrained = results["runs"][-2]
                    results["llamacpp_mask_cost_per_token"] = round(
                        constrained["ms_per_new_token"] / free["ms_per_new_token"] - 1, 4)
                engine.close()
                del engine
    results["best"] = best
    results["essays_per_hour"] = {name: run["essays_per_hour"] for name, run in best.items()}
    if len(best) == 2:
        results["llamacpp_over_transformers"] = round(
            best["llamacpp"]["essays_per_hour"] / best["transformers"]["essays_per_hour"], 2)
    return results


def _budget_for(engine: Any, conversations: list, batch: int, args: argparse.Namespace) -> int:
    """A token budget that puts ``batch`` of these essays in each generate call."""
    longest = max(len(engine.tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=True)["input_ids"])
                  for c in conversations)
    return batch * (longest + args.max_new_tokens)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--essays", type=Path, default=DEFAULT_ESSAYS, help="ACEA data.json (JSON lines)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="qwen2.5-0.5b")
    parser.add_argument("--quantization", choices=["none", "4bit"], default="none")
    parser.add_argument("--batches", default="1,4", help="comma-separated batch sizes (GPU: try 1,4,16,64)")
    parser.add_argument(
        "--n-essays", type=int, default=None, help="distinct essays to cycle through (default: largest batch)"
    )
    parser.add_argument(
        "--max-new-tokens", type=int, default=64, help="new tokens per answer (GPU: try 1024)"
    )
    parser.add_argument(
        "--compare-batch", type=int, default=None, help="batch for constrained vs free (default: smallest)"
    )
    parser.add_argument(
        "--model", type=Path, default=None, help="a real model directory instead of a random one"
    )
    parser.add_argument("--bandwidth-gbs", type=float, default=None, help="GPU memory bandwidth for the roofline")
    parser.add_argument("--engines", default=None, help="compare engines on the CPU: transformers,llamacpp")
    parser.add_argument("--threads", default="1,2", help="llama.cpp threads to try (with --engines)")
    parser.add_argument("--parallel", default="1,2,4", help="llama.cpp parallel slots to try (with --engines)")
    parser.add_argument("--torch-threads", default="1,2", help="torch threads to try (with --engines)")
    parser.add_argument("--gguf-quant", default="q8_0", help="weights type of the GGUF made for llama.cpp")
    parser.add_argument("--free-every-setting", action="store_true",
                        help="llama.cpp without its grammar at every setting, not only the largest")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    load_at_start = round(os.getloadavg()[0], 2)
    batches = [int(b) for b in args.batches.split(",")]
    compare_batch = args.compare_batch or min(batches)
    # Run as a script, this folder heads the import path, and bench/platform.py would shadow the standard
    # library's platform; the repository root takes its place (tests.tiny_model lives there).
    here = Path(__file__).resolve().parent
    sys.path[:] = [str(REPO), *(p for p in sys.path if Path(p or ".").resolve() != here)]
    import torch

    from services.worker.engine import EngineConfig
    from services.worker.engine.grammar import GrammarProcessor
    from services.worker.engine.schema_bounds import closing_reserve, max_tokens_for_schema
    from services.worker.engine.transformers_engine import TransformersEngine

    essays = read_essays(args.essays, args.n_essays or max(batches + [compare_batch]))
    dtype = torch.float32 if args.device == "cpu" else torch.bfloat16
    if args.engines:
        with tempfile.TemporaryDirectory(prefix="yuejuan-bench-") as scratch:
            model_dir = args.model or build_model(Path(scratch), read_essays(args.essays), args.shape, "cpu", dtype)
            compared = compare_engines(args, model_dir, Path(scratch))
        compared.pop("runs")  # each printed above as it finished
        print(json.dumps({"bench": "engines", "model": str(args.model or args.shape),
                          "weights": "random" if args.model is None else "given", **compared,
                          "load_1m_at_start": load_at_start}, ensure_ascii=False))
        return
    with tempfile.TemporaryDirectory(prefix="yuejuan-bench-") as scratch:
        started = time.perf_counter()
        if args.model is None:
            all_essays = read_essays(args.essays)  # the whole corpus trains the tokenizer
            model_dir = build_model(Path(scratch), all_essays, args.shape, args.device, dtype)
            print(
                f"built a random {args.shape} in {time.perf_counter() - started:.0f} s; tokenizer trained "
                f"on {len(all_essays)} essays, padded with filler tokens to {QWEN_TOKENIZER_SIZE} (Qwen2.5's "
                f"size) so the grammar mask is as costly as for the real vocabulary"
            )
            if args.device == "cuda":
                torch.cuda.empty_cache()
        else:
            model_dir = args.model
        config = EngineConfig(
            model=str(model_dir),
            device=args.device,
            quantization=args.quantization,
            batch_token_budget=10**9,  # one generate call per measurement: the bench picks the batch size
            max_new_tokens=args.max_new_tokens,
        )
        started = time.perf_counter()
        engine = TransformersEngine.load(config)
        load_s = time.perf_counter() - started
    description = engine.describe()
    print(f"loaded in {load_s:.1f} s: {description}; torch threads: {torch.get_num_threads()}")

    conversations, schema = grading_conversations(essays)
    started = time.perf_counter()
    engine.prepare(schema)
    compile_s = time.perf_counter() - started
    engine.generate_json([[{"role": "user", "content": "你好"}]], schema, constrained=False)  # warm-up
    longest, reserve = max_tokens_for_schema(schema), closing_reserve(schema)
    short = (
        f" (below {reserve}: answers stop before the JSON closes)" if args.max_new_tokens < reserve else ""
    )
    print(
        f"grammar compiled in {compile_s:.2f} s; worst-case answer {longest} tokens, closing guard needs "
        f"{reserve}; this run: {args.max_new_tokens}{short}"
    )
    timer = _GrammarTimer(GrammarProcessor)
    bounds = roofline(engine, args.bandwidth_gbs) if args.device == "cuda" else {}
    runs = []
    for batch in batches:
        runs.append(measure(engine, conversations, schema, batch, True, timer))
        if bounds.get("roofline_ms_per_step"):
            runs[-1]["roofline_fraction"] = round(bounds["roofline_ms_per_step"] / runs[-1]["ms_per_step"], 3)
        print(json.dumps(runs[-1]))
    constrained = next((r for r in runs if r["batch"] == compare_batch), None)
    if constrained is None:
        constrained = measure(engine, conversations, schema, compare_batch, True, timer)
        print(json.dumps(constrained))
    free = measure(engine, conversations, schema, compare_batch, False, timer)
    print(json.dumps(free))
    # Same prompts and (random weights never close the JSON early) the same number of steps, so the
    # wall times compare directly; the time inside the processor is the same cost measured from within.
    overhead = constrained["wall_s"] / free["wall_s"] - 1
    grammar_share = constrained["grammar_ms_per_step"] / constrained["ms_per_step"]
    print(
        f"constrained vs free, batch {compare_batch}: {constrained['wall_s']} vs {free['wall_s']} s "
        f"({overhead:+.1%}; steps {constrained['steps']} vs {free['steps']}); in the grammar processor: "
        f"{constrained['grammar_ms_per_step']} ms of {constrained['ms_per_step']} ms per step "
        f"({grammar_share:.1%})"
    )
    summary = {
        "bench": "engine",
        "shape": args.shape if args.model is None else str(args.model),
        "weights": "random" if args.model is None else "real",
        "tokenizer_vocab": len(engine.tokenizer),
        "model_vocab": engine.model.config.vocab_size,
        "max_new_tokens": args.max_new_tokens,
        "load_s": round(load_s, 1),
        "grammar_compile_s": round(compile_s, 3),
        "describe": description,
        "torch_threads": torch.get_num_threads(),
        "runs": runs,
        "roofline": bounds,
        "unconstrained": free,
        "constrained_wall_overhead": round(overhead, 4),
        "grammar_share_of_step": round(grammar_share, 4),
        "load_1m_at_start": load_at_start,
    }
    print(json.dumps(summary, ensure_ascii=False))


if __name__ == "__main__":
    main()
