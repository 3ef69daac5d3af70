"""An engine whose generation fails for marked essays, loaded by workers via YUEJUAN_ENGINE_CLASS."""

from __future__ import annotations

from typing import Any

from services.worker.engine import Generation, LLMEngine

POISON_MARK = "【测试毒丸】"


class PoisonEngine(LLMEngine):
    """The real engine, except that any batch containing the poison mark raises during generation."""

    def _generate_batch(self, prompts: list[list[int]], plan: Any) -> list[Generation]:
        if any(POISON_MARK in self.tokenizer.decode(prompt) for prompt in prompts):
            raise RuntimeError("injected generation failure for the poison essay")
        return super()._generate_batch(prompts, plan)
