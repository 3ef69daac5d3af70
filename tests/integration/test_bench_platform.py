"""bench/platform.py stays runnable: a small run through real PostgreSQL and Redis reports every stage."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests.conftest import PG_ADMIN_URL, REDIS_TEST_URL

BENCH = Path(__file__).resolve().parents[2] / "bench" / "platform.py"


def test_the_platform_benchmark_times_every_stage_of_a_small_run(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("bench_platform", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    bench.main(["--classes", "2", "--per-class", "5", "--repeat", "2", "--pg-url", PG_ADMIN_URL,
                "--redis-url", REDIS_TEST_URL, "--model-seconds-per-essay", "1.0"])

    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["essays"] == 10 and figures["runs"] == 2
    assert figures["report_jobs"] == 3  # the warm-up class and the two timed ones each finished
    assert figures["messages_in_redis"] >= 3
    stages = [figures[f"{stage}_ms_per_essay"] for stage in ("ingest", "enqueue", "claim", "write")]
    assert all(ms > 0 for ms in stages)
    assert len(figures["platform_ms_per_essay_each_run"]) == 2
    assert figures["share_of_model_time_percent"] == pytest.approx(figures["platform_ms_per_essay"] / 10, rel=0.05)
