"""The exercise catalog (``shared/prompts/catalog/exercises.yaml``): versioned data, validated on load."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.prompts.material_library import load_library
from shared.prompts.rubric import RUBRIC_DIR

logger = logging.getLogger(__name__)

CATALOG_PATH = RUBRIC_DIR.parent / "catalog" / "exercises.yaml"
DEFAULT_KEY = "default"


class CatalogError(ValueError):
    """The catalog file is missing or invalid; the message names the file and the problem."""


class Exercise(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(min_length=1)
    detail: str = Field(min_length=1)
    # 素材 library entries (shared/prompts/materials) the exercise names; checked against the library on load.
    materials: tuple[str, ...] = ()

    def filled(self, name: str, examples: str) -> Exercise:
        """The exercise with ``{name}`` and ``{examples}`` filled in (plain replacement: data may hold braces)."""
        def fill(text: str) -> str:
            return text.replace("{name}", name).replace("{examples}", examples).rstrip("：: ")

        return Exercise(title=fill(self.title), detail=fill(self.detail), materials=self.materials)

    def as_json(self) -> dict[str, Any]:
        """Title and detail, and each named 素材 with its title, origin and source from the library."""
        library = load_library()
        entries = [entry for entry in (library.get(i) for i in self.materials) if entry is not None]
        data: dict[str, Any] = {"title": self.title, "detail": self.detail}
        if entries:
            data["materials"] = [{"id": e.id, "title": e.title, "origin": e.origin, "source": e.source}
                                 for e in entries]
        return data


class ExerciseCatalog(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1)
    dimensions: dict[str, list[Exercise]]
    error_types: dict[str, list[Exercise]]

    def for_dimension(self, key: str) -> list[Exercise]:
        return self.dimensions.get(key) or self.dimensions.get(DEFAULT_KEY, [])

    def for_error_type(self, error_type: str) -> list[Exercise]:
        return self.error_types.get(error_type) or self.error_types.get(DEFAULT_KEY, [])


@lru_cache(maxsize=4)
def load_catalog(path: Path = CATALOG_PATH) -> ExerciseCatalog:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        catalog = ExerciseCatalog.model_validate(data)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise CatalogError(f"练习目录 {path} 无效：{exc}") from exc
    library = load_library()
    unknown = [f"{exercise.title}：{material}"
               for exercises in (*catalog.dimensions.values(), *catalog.error_types.values())
               for exercise in exercises for material in exercise.materials if library.get(material) is None]
    if unknown:
        raise CatalogError(f"练习目录 {path} 引用了素材库中没有的条目：{'；'.join(unknown)}")
    logger.debug("loaded exercise catalog %s from %s", catalog.version, path)
    return catalog
