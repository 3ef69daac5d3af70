"""Rubrics, the answer schema and prompt templates: versioned data plus the code that renders them."""

from shared.prompts.rubric import (
    Band,
    Dimension,
    Rubric,
    RubricError,
    RubricInfo,
    list_rubrics,
    load_rubric,
    load_rubric_file,
)

__all__ = [
    "Band",
    "Dimension",
    "Rubric",
    "RubricError",
    "RubricInfo",
    "list_rubrics",
    "load_rubric",
    "load_rubric_file",
]
