"""Engines that fail in the ways production does for marked essays, loaded by workers via YUEJUAN_ENGINE_CLASS.

Each is the real engine except for a batch whose prompt carries its mark: an exception (PoisonEngine), the
process killed like an out-of-memory kill (CrashEngine), generation that never ends (HangEngine), or
generation held until the test opens a gate (GateEngine: to stop a worker while a batch is running).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from services.worker.engine import Generation
from services.worker.engine.transformers_engine import TransformersEngine

POISON_MARK = "【测试毒丸】"
CRASH_MARK = "【测试崩溃】"
HANG_MARK = "【测试卡死】"
GATE_MARK = "【测试闸门】"
GATE_DIR_ENV = "YUEJUAN_TEST_GATE_DIR"


class _MarkedEngine(TransformersEngine):
    mark = ""

    def _generate_batch(self, prompts: list[list[int]], plan: Any) -> list[Generation]:
        if any(self.mark in self.tokenizer.decode(prompt) for prompt in prompts):
            self.on_mark()
        return super()._generate_batch(prompts, plan)

    def on_mark(self) -> None:
        raise NotImplementedError


class PoisonEngine(_MarkedEngine):
    mark = POISON_MARK

    def on_mark(self) -> None:
        raise RuntimeError("injected generation failure for the poison essay")


class CrashEngine(_MarkedEngine):
    mark = CRASH_MARK

    def on_mark(self) -> None:
        os.kill(os.getpid(), signal.SIGKILL)


class HangEngine(_MarkedEngine):
    """Never returns: the soft time limit interrupts it, unless ``YUEJUAN_TEST_IGNORE_SOFT_LIMIT`` is set, in which
    case only the hard time limit (the pool child killed) ends it."""

    mark = HANG_MARK

    def on_mark(self) -> None:
        from celery.exceptions import SoftTimeLimitExceeded

        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline:
            try:
                time.sleep(0.2)
            except SoftTimeLimitExceeded:
                if not os.environ.get("YUEJUAN_TEST_IGNORE_SOFT_LIMIT"):
                    raise


class GateEngine(_MarkedEngine):
    """Touches ``entered`` in the directory ``YUEJUAN_TEST_GATE_DIR`` names and waits for ``open`` there: a batch
    that runs as long as the test wants, without timing."""

    mark = GATE_MARK

    def on_mark(self) -> None:
        gate = Path(os.environ[GATE_DIR_ENV])
        (gate / "entered").touch()
        while not (gate / "open").exists():
            time.sleep(0.05)


class StepGateEngine(TransformersEngine):
    """Hands each finished answer on only when the test allows it: before the k-th answer of the process goes to the
    pipeline (and so to the database) it touches ``entered-k`` in ``YUEJUAN_TEST_GATE_DIR`` and waits for ``open-k``.
    A test opens the gates one by one and watches progress move essay by essay, without timing."""

    answers = 0

    def generate_json(self, conversations: Any, schema: Any, *, constrained: bool = True,
                      on_answer: Any = None) -> list[Generation]:
        if on_answer is None:
            return super().generate_json(conversations, schema, constrained=constrained)
        reported: set[int] = set()

        def gated(index: int, generation: Generation) -> None:
            if index in reported:
                return
            reported.add(index)
            StepGateEngine.answers += 1
            gate = Path(os.environ[GATE_DIR_ENV])
            (gate / f"entered-{StepGateEngine.answers}").touch()
            while not (gate / f"open-{StepGateEngine.answers}").exists():
                time.sleep(0.05)
            on_answer(index, generation)

        generations = super().generate_json(conversations, schema, constrained=constrained, on_answer=gated)
        for index, generation in enumerate(generations):  # answers cut off by the token limit come only here
            gated(index, generation)
        return generations
