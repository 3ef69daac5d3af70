"""Render the training-plan narrative messages (system + user) from a computed plan's facts.

The template is versioned like the grading prompt (``templates/plan-v1.j2``); the facts are numbers and labels
only, so no name or essay text can reach the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from shared.prompts.render import _template

PLAN_PROMPT_VERSION = "plan-v1"


class PlanFocus(Protocol):
    kind: str  # "dimension" or "error"
    label: str
    reason: str
    goal: str


class PlanTrend(Protocol):
    first: float
    last: float
    slope: float

    @property
    def direction(self) -> str: ...


def render_plan_messages(
    *, essay_count: int, focus_areas: Sequence[PlanFocus], trend: PlanTrend | None, exercise_titles: Sequence[str],
    max_chars: int, standings: Sequence[tuple[str, float, float]] = (),
    strength: tuple[str, float, float] | None = None,
) -> list[dict[str, str]]:
    """Return ``[system, user]`` chat messages asking for a narrative of at most ``max_chars`` characters.

    ``standings`` are (dimension name, student's score rate, class mean rate) for every dimension, ``strength``
    the one the student does best in relative to the class (if any)."""
    module = _template(PLAN_PROMPT_VERSION).module
    user = module.user(  # type: ignore[attr-defined]
        essay_count, focus_areas, trend, list(exercise_titles), list(standings), strength)
    return [
        {"role": "system", "content": str(module.system(max_chars)).strip()},  # type: ignore[attr-defined]
        {"role": "user", "content": str(user).strip()},
    ]
