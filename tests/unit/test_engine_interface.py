"""The engine's interface imports no model library, and the worker loads whichever class YUEJUAN_ENGINE_CLASS names."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.worker.engine import Conversation, EngineConfig, Generation
from services.worker.runtime import load_engine
from shared.settings import Settings
from tests.import_probe import model_libraries_imported

PROBE = """
import services.worker.engine
from services.worker.engine import Engine, EngineConfig, Generation, ModelUnavailable, is_deadline
from services.worker.engine.schema_bounds import closing_reserve, max_tokens_for_schema
import services.worker.pipeline, services.worker.runtime, services.worker.cli_commands
from shared.settings import Settings
EngineConfig.from_settings(Settings(), cuda_available=False)
schema = {"type": "object", "properties": {"a": {"type": "string", "maxLength": 3}}, "additionalProperties": False}
max_tokens_for_schema(schema), closing_reserve(schema)
"""


def test_the_interface_pipeline_and_runtime_import_no_model_libraries() -> None:
    assert model_libraries_imported(PROBE) == []


class StubEngine:
    """An engine with the interface and no model."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config

    @classmethod
    def load(cls, config: EngineConfig) -> StubEngine:
        return cls(config)

    def generate_json(self, conversations: Sequence[Conversation], schema: dict[str, Any]) -> list[Generation]:
        return [Generation("{}", 1, 1, 0.0, finished=True) for _ in conversations]

    def describe(self) -> dict[str, Any]:
        return {"engine": "stub", "model": self.config.model}


def test_load_engine_loads_the_class_yuejuan_engine_class_names() -> None:
    settings = Settings(model="/models/q", device="cpu", batch_token_budget=4096, engine_class=f"{__name__}:StubEngine")
    engine = load_engine(settings)
    assert isinstance(engine, StubEngine)
    assert (engine.config.model, engine.config.device, engine.config.batch_token_budget) == ("/models/q", "cpu", 4096)
    assert engine.describe()["engine"] == "stub"

