"""LoRA adapters over one loaded base model: loaded by name the first time a batch needs one, then switched.

The base model is loaded once per process; an adapter adds its small matrices beside it (transformers' peft
integration: ``load_adapter``/``set_adapter``/``disable_adapters``), so a worker serving several schools holds one
base model and one adapter per school, and a batch without an adapter runs the base model alone.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"


class AdapterSlots:
    """Which adapters are loaded onto ``model`` and which one (if any) is switched on."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.loaded: dict[str, Path] = {}
        self.active: str | None = None

    def use(self, name: str | None, path: Path | None) -> str | None:
        """Switch ``name`` on (loading it from ``path`` the first time), or switch adapters off for None.

        Returns the adapter now on: None when asked for none, or when the adapter's files are missing (it was
        deleted after the batch was queued), in which case the base model grades and the grade says so.
        """
        if name is None:
            self._off()
            return None
        if name not in self.loaded:
            if path is None or not (path / ADAPTER_CONFIG).is_file():
                logger.error("adapter %s has no files at %s: grading with the base model", name, path)
                self._off()
                return None
            self.model.load_adapter(str(path), adapter_name=name)
            self.model.eval()  # the new LoRA layers start in training mode (dropout on)
            self.loaded[name] = path
            logger.info("loaded adapter %s from %s (%s loaded)", name, path, len(self.loaded))
        if self.active != name:
            self.model.set_adapter(name)
            self.model.enable_adapters()
            self.active = name
        return name

    def drop(self, name: str) -> bool:
        """Unload an adapter that will not be used again (one the gate refused, or deleted); True if it was loaded."""
        if name not in self.loaded:
            return False
        if self.active == name:
            self._off()
        self.model.delete_adapter(name)
        del self.loaded[name]
        logger.info("unloaded adapter %s (%s loaded)", name, len(self.loaded))
        return True

    def _off(self) -> None:
        if self.active is not None:
            self.model.disable_adapters()
            self.active = None
