"""The teaching assistant's shared rules (issue 20): a school's own 素材 as library entries, the candidates an
angle retrieves, and the answers the model may give, checked again before they are stored."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jsonschema
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.material_search import search
from shared.models import SchoolMaterial
from shared.prompts.material_library import SCHOOL_PREFIX, Material, load_library
from shared.prompts.teaching import ANGLES_SCHEMA, LESSON_SCHEMA, picks_schema

CANDIDATES = 10  # entries retrieved for the model to choose among


class InvalidAnswer(ValueError):
    """The model's answer does not satisfy its schema (or names an entry it was not offered)."""


def school_entry(row: SchoolMaterial) -> Material:
    return Material(id=f"{SCHOOL_PREFIX}{row.id}", kind=row.kind, title=row.title, text=row.text or "",
                    themes=tuple(row.themes), summary=row.summary, origin=row.origin, source=row.source)


def school_entries(session: Session, school_id: int | None) -> list[Material]:
    if school_id is None:
        return []
    rows = session.scalars(select(SchoolMaterial).where(SchoolMaterial.school_id == school_id)
                           .order_by(SchoolMaterial.id)).all()
    return [school_entry(row) for row in rows]


def entries_for(session: Session, school_id: int | None) -> list[Material]:
    """The shipped library followed by the school's own entries."""
    return load_library().with_school(school_entries(session, school_id))


def find_entries(session: Session, school_id: int | None, ids: Sequence[str]) -> dict[str, Material]:
    """The entries with these ids that the school may see (shipped, or its own)."""
    wanted = set(ids)
    return {entry.id: entry for entry in entries_for(session, school_id) if entry.id in wanted}


def angle_query(prompt_text: str, angle: dict[str, Any]) -> str:
    return " ".join([str(angle.get("thesis", "")), *[str(k) for k in angle.get("keywords") or []], prompt_text[:200]])


def candidates_for(session: Session, school_id: int | None, prompt_text: str, angle: dict[str, Any]) -> list[str]:
    """Ids of the entries an angle retrieves, best first: its theme's entries ranked by its words."""
    theme = angle.get("theme")
    hits = search(entries_for(session, school_id), angle_query(prompt_text, angle),
                  themes=[theme] if isinstance(theme, str) else (), limit=CANDIDATES)
    return [hit.entry.id for hit in hits]


def _valid(answer: Any, schema: dict[str, Any]) -> None:
    try:
        jsonschema.validate(answer, schema)
    except jsonschema.ValidationError as exc:
        raise InvalidAnswer(f"answer does not satisfy the schema: {exc.message}") from exc


def checked_angles(answer: Any) -> list[dict[str, Any]]:
    _valid(answer, ANGLES_SCHEMA)
    return [dict(angle) for angle in answer["angles"]]


def checked_picks(answer: Any, candidate_ids: Sequence[str]) -> list[dict[str, str]]:
    """The picks in order, each entry once (a repeated id keeps its first usage)."""
    _valid(answer, picks_schema(candidate_ids))
    picks: list[dict[str, str]] = []
    for pick in answer["picks"]:
        if pick["id"] not in {p["id"] for p in picks}:
            picks.append({"id": pick["id"], "usage": pick["usage"]})
    return picks


def checked_lesson(answer: Any) -> dict[str, Any]:
    _valid(answer, LESSON_SCHEMA)
    return dict(answer)
