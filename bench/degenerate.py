"""Degenerate answers with and without the decode-time defences, graded through the production pipeline.

    python bench/degenerate.py [--model DIR] [--set ../shared/data/essays-acea] [--limit 8]

Three settings grade the same essays: neither defence; repeat blocking inside answer strings
(``YUEJUAN_NO_REPEAT_CHARS=6``); and that plus quotations kept to the essay's text (``YUEJUAN_QUOTES_FROM_ESSAY``).
Each grades with ``grade_set`` (the
``yuejuan eval`` path: masking, prompt, constrained decoding, scoring) and counts the answers that
``services/worker/evaluation/quality.py`` calls degenerate (a phrase repeated in a 评语 or evidence, a 评语 copying
the instructions, evidence that is not a quotation), by kind, with failures and generated tokens. Without
``--model`` a tiny random-weight Qwen2 is built (tests/tiny_model.py): its answers are noise, so its figures show
the mechanism, not the quality of a real model. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SET = REPO.parent / "shared/data/essays-acea"


def main() -> None:
    here = Path(__file__).resolve().parent  # bench/platform.py must not stand in for the standard library's
    sys.path[:] = [str(REPO), *(p for p in sys.path if Path(p or ".").resolve() != here)]
    from services.worker.engine import EngineConfig
    from services.worker.engine.transformers_engine import TransformersEngine
    from services.worker.evaluation.runner import grade_set
    from services.worker.evaluation.sets import read_acea
    from shared.prompts.rubric import load_rubric

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--set", dest="set_dir", type=Path, default=DEFAULT_SET)
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=None)
    args = parser.parse_args()

    essays = read_acea(args.set_dir)[: args.limit]
    rubric = load_rubric("gaokao-national")
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = args.model
        if model_dir is None:
            from tests.tiny_model import build_tiny_qwen2

            model_dir = build_tiny_qwen2(Path(scratch) / "tiny")
        base = TransformersEngine.load(EngineConfig(model=str(model_dir), device="cpu",
                                                    max_new_tokens=args.max_new_tokens))
        figures: dict[str, Any] = {}
        for name, chars, quotes in (("off", 0, False), ("no_repeat", 6, False), ("no_repeat+quotes", 6, True)):
            config = dataclasses.replace(base.config, no_repeat_chars=chars, quotes_from_essay=quotes)
            engine = TransformersEngine(config, base.model, base.tokenizer, base.device, base.dtype)
            rows = grade_set(engine, essays, rubric, base.config.batch_token_budget, repeat=False, alone=False)
            kinds = Counter(kind for row in rows for kind in row.degenerate)
            graded = [row for row in rows if row.model["failure"] is None]
            figures[name] = {
                "degenerate": sum(1 for row in rows if row.degenerate), "by_kind": dict(kinds),
                "failed": len(rows) - len(graded),
                "dropped_quotes": sum(row.model["dropped_quotes"] for row in graded),
                "generated_tokens_mean": round(sum(r.model["generated_tokens"] for r in graded) / len(graded), 1)
                if graded else None,
            }
            print(f"{name}: {figures[name]}", flush=True)
    print(json.dumps({"essays": len(essays), "model": str(args.model or "tiny random qwen2"),
                      "settings": figures}, ensure_ascii=False))


if __name__ == "__main__":
    main()
