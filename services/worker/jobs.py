"""What the grading pipeline takes in and gives back; plain data so tests and the CLI share it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class EssayJob:
    """One essay to grade with everything the pipeline needs; no database objects."""

    essay_id: int
    text: str
    assignment_prompt: str
    genre: str
    required_length: int
    rubric_id: str
    rubric_version: str | None = None
    person_names: tuple[str, ...] = ()
    school_names: tuple[str, ...] = ()
    adapter: str | None = None  # the school's active LoRA adapter (its name under data_dir/adapters), if any


@dataclass(frozen=True)
class LocatedError:
    """One located error: ``text[start:end] == original`` in the normalised full text; ``origin`` says who found it
    (a rule of the deterministic analysis, or the model)."""

    type: str
    start: int
    end: int
    original: str
    suggestion: str
    explanation: str
    origin: str


@dataclass(frozen=True)
class DeductionItem:
    """One deduction: the rule's name, negative points and a Chinese explanation for the teacher."""

    rule: str
    points: int
    detail: str


@dataclass
class EssayOutcome:
    """A graded essay (error is None) or the reason it could not be graded."""

    essay_id: int
    error: str | None = None
    rubric_id: str = ""
    rubric_version: str = ""
    prompt_version: str | None = None
    title: str | None = None
    text: str = ""  # the normalised essay text that error offsets refer to
    char_count: int = 0
    dimension_scores: dict[str, int] = field(default_factory=dict)
    model_scores: dict[str, int] = field(default_factory=dict)  # the model's own, before the rubric's caps
    bands: dict[str, str] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    raw_total: int = 0
    total: int = 0
    caps: list[str] = field(default_factory=list)
    comment: str = ""
    errors: list[LocatedError] = field(default_factory=list)
    deductions: list[DeductionItem] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    needs_review: bool = False  # a flagged essay's model score: withheld (待复核) until a teacher confirms it
    model_name: str | None = None
    engine_name: str | None = None
    adapter: str | None = None  # the LoRA adapter the model graded with (None: the base model alone)
    prompt_tokens: int = 0
    generated_tokens: int = 0
    latency_ms: int = 0
    dropped_quotes: int = 0
    forced_close: bool = False  # the engine's closing guard cut the answer short (Generation.forced_close)
    confidence: float | None = None  # lowest p(score tokens) over the dimensions (services/worker/confidence.py)

    def as_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)
