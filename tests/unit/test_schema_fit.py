"""The schema narrowed to a token budget: what the llama.cpp engine regenerates an unclosed answer under."""

from __future__ import annotations

import pytest

from services.worker.engine.schema_bounds import _narrowed, fit_schema_to_budget, max_tokens_for_schema
from shared.prompts.answer_schema import answer_schema
from shared.prompts.rubric import load_rubric

SCHEMA = answer_schema(load_rubric("gaokao-national"))


@pytest.mark.parametrize("budget", [400, 1024, 3000])
def test_the_narrowed_schema_fits_and_keeps_everything_else(budget: int) -> None:
    fitted = fit_schema_to_budget(SCHEMA, budget)
    assert fitted is not None
    assert max_tokens_for_schema(fitted) <= budget < max_tokens_for_schema(SCHEMA)
    comment, errors = fitted["properties"]["comment"], fitted["properties"]["errors"]
    assert comment["minLength"] == 1 and 1 <= comment["maxLength"] < 150
    assert errors["maxItems"] < 12 and fitted["required"] == SCHEMA["required"]
    scores = [fitted["properties"][d]["properties"]["score"] for d in ("content", "expression", "development")]
    assert scores == [{"type": "integer", "minimum": 0, "maximum": 20}] * 3
    # As little narrowing as the common factor allows: the next step up no longer fits.
    factor = comment["maxLength"] / 150
    assert max_tokens_for_schema(_narrowed(SCHEMA, factor + 0.01)) > budget


def test_a_schema_that_fits_is_kept_and_one_that_cannot_is_refused() -> None:
    assert fit_schema_to_budget(SCHEMA, 7000) is SCHEMA
    shortest = max_tokens_for_schema(_narrowed(SCHEMA, 0.0))
    assert fit_schema_to_budget(SCHEMA, shortest - 1) is None
    assert max_tokens_for_schema(fit_schema_to_budget(SCHEMA, shortest)) == shortest
