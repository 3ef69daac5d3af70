"""The inference engine: a torch-free interface here, one module per implementation beside it.

Importing this package imports no model library; ``runtime.load_engine`` imports the implementation it loads
(``transformers_engine`` unless ``YUEJUAN_ENGINE_CLASS`` names another).
"""

from services.worker.engine.interface import (
    DEFAULT_ENGINE_CLASS,
    Conversation,
    Engine,
    EngineConfig,
    Generation,
    ModelUnavailable,
    is_deadline,
)

__all__ = [
    "DEFAULT_ENGINE_CLASS", "Conversation", "Engine", "EngineConfig", "Generation", "ModelUnavailable", "is_deadline",
]
