"""bench/train.py stays runnable: two training steps of the tiny model on the CPU report speed and memory."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "train.py"


@pytest.mark.slow
def test_the_training_benchmark_reports_tokens_per_second_and_peak_memory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    spec = importlib.util.spec_from_file_location("bench_train", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    # No essay file: the one synthetic essay, so the counts are exact wherever the test runs.
    bench.main(["--steps", "2", "--essays", str(tmp_path / "none.json")])

    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (figures["bench"], figures["shape"], figures["device"], figures["dtype"]) == ("train", "tiny", "cpu",
                                                                                       "float32")
    assert (figures["steps"], figures["examples"], figures["skipped_too_long"]) == (2, 1, 0)
    assert figures["tokens"] == 2 * figures["tokens_per_example_mean"] > 1000  # the real grading prompt
    assert figures["tokens_per_s"] == pytest.approx(figures["tokens"] / figures["seconds"], rel=0.05)
    assert figures["peak_memory_kind"] == "process_peak_rss" and figures["peak_memory_mb"] > 100
    assert 0 < figures["adapter_mb"] < 5
