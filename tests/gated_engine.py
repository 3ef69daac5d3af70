"""An engine whose generation waits for a file: a batch that runs as long as a test wants, without timing.

Loaded by workers via ``YUEJUAN_ENGINE_CLASS=tests.gated_engine:GatedEngine``; ``YJ_TEST_GATE_DIR`` names a
directory where the engine touches ``entered`` when a batch starts and waits for ``open`` before generating.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from services.worker.engine import Generation, LLMEngine


class GatedEngine(LLMEngine):
    def _generate_batch(self, prompts: list[list[int]], plan: Any) -> list[Generation]:
        gate = Path(os.environ["YJ_TEST_GATE_DIR"])
        (gate / "entered").touch()
        while not (gate / "open").exists():
            time.sleep(0.05)  # a busy batch, as far as the worker can tell
        return super()._generate_batch(prompts, plan)
