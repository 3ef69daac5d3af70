"""A chat engine for tests, loaded by workers via YUEJUAN_ENGINE_CLASS: the real transformers engine, except that
the first answer of the process pauses once a few characters have been written, until the test opens a gate.

The test sees a partial answer on the page (and after a reload) for as long as it needs, without timing: it touches
``chat-open`` in the directory YUEJUAN_TEST_GATE_DIR names; the engine touches ``chat-entered`` when it pauses.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from services.worker.chat.stream import StreamResult, TextCallback, stream_with_transformers
from services.worker.engine.transformers_engine import TransformersEngine

GATE_DIR_ENV = "YUEJUAN_TEST_GATE_DIR"
PAUSE_AFTER_CHARS = 12  # visible characters of the answer before the pause (more than any blocked word holds back)


class ChatGateEngine(TransformersEngine):
    paused = False

    def stream_chat(self, messages: Sequence[dict[str, str]], *, max_new_tokens: int,
                    on_text: TextCallback) -> StreamResult:
        def gated(text: str) -> bool:
            keep_going = on_text(text)
            if not ChatGateEngine.paused and len(text.strip()) >= PAUSE_AFTER_CHARS:
                ChatGateEngine.paused = True
                gate = Path(os.environ[GATE_DIR_ENV])
                (gate / "chat-entered").touch()
                while not (gate / "chat-open").exists():
                    time.sleep(0.05)
            return keep_going

        return stream_with_transformers(self, messages, max_new_tokens=max_new_tokens, on_text=gated)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "engine": "chat-gate-test"}
