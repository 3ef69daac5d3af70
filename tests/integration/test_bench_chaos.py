"""bench/chaos.py stays runnable: a small fairness + kill run with real processes settles with exact counts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_ADMIN_URL

# It starts its own PostgreSQL database, redis-server and workers, and builds the tiny model: no fixtures say so.
pytestmark = [pytest.mark.slow, pytest.mark.processes, pytest.mark.pg, pytest.mark.redis, pytest.mark.model]

REPO = Path(__file__).resolve().parents[2]


def test_the_chaos_benchmark_grades_every_essay_once_through_a_worker_kill() -> None:
    # A subprocess: the benchmark starts and stops its own database, Redis and workers, and cleans up on exit.
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "chaos.py"), "--scenarios", "fairness,kill", "--classes", "3",
         "--essays", "2", "--essays-from", "synthetic", "--pg-url", PG_ADMIN_URL],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["essays"] == 3 * 2 + 12  # three classes of two, and the kill class (at least 12)
    assert figures["graded"] == figures["essays"]
    assert (figures["failed_innocent"], figures["stuck"], figures["duplicates"]) == (0, 0, 0)
    assert figures["report_jobs_stuck"] == 0 and set(figures["report_jobs"]) == {"done"} and figures["settled"]
    kill = figures["scenarios"]["kill"]
    assert kill["held_at_kill"] >= 1 and kill["held_essays_graded_s"] is not None
    assert figures["recovery_s"] == kill["recovery_s"] and kill["recovery_s"] > 0
    fairness = figures["scenarios"]["fairness"]
    assert len(fairness["first_essay_s"]) == 3 and None not in fairness["completion_s"]
    assert figures["fairness_first_essay_s_max"] == max(fairness["first_essay_s"])
