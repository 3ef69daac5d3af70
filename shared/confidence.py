"""A model grade's confidence: what counts as low, and the buckets agreement is reported by.

The engine measures confidence as the probability, under the grammar's mask, that greedy decoding gives the score
digits it gave: per dimension the product of the chosen tokens' probabilities over that score's digits, and for
the grade the lowest of its dimensions (one torn dimension is enough to doubt the grade). Quotes the model made up
(dropped before scoring) also mark a grade as low confidence.
"""

from __future__ import annotations

LOW_CONFIDENCE = 0.5
BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("低（<0.5）", 0.0, 0.5),
    ("中（0.5–0.8）", 0.5, 0.8),
    ("高（≥0.8）", 0.8, 1.0000001),
)
UNMEASURED = "未测量"


def is_low_confidence(confidence: float | None, dropped_quotes: int = 0) -> bool:
    return (confidence is not None and confidence < LOW_CONFIDENCE) or dropped_quotes > 0


def bucket(confidence: float | None) -> str:
    """The bucket name of a confidence (``UNMEASURED`` where the engine measured none)."""
    if confidence is None:
        return UNMEASURED
    for name, low, high in BUCKETS:
        if low <= confidence < high:
            return name
    return BUCKETS[-1][0]
