"""A grade's confidence from the engine's own token probabilities: for each dimension, the probability (under the
grammar's mask, as greedy decoding saw it) of the tokens that wrote that dimension's score, and for the grade the
lowest of them. Torch-free: the engine hands over one probability and one byte end per generated token."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence


def score_spans(text: str, keys: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Byte spans of each dimension's ``"score"`` digits in an answer (``{"<key>": {"score": 16, ...}, ...}``)."""
    raw = text.encode("utf-8")
    spans: dict[str, tuple[int, int]] = {}
    for key in keys:
        match = re.search(rb'"' + re.escape(key.encode()) + rb'"\s*:\s*\{[^{}]*?"score"\s*:\s*(\d+)', raw)
        if match is not None:
            spans[key] = match.span(1)
    return spans


def dimension_confidences(text: str, token_ends: Sequence[int], token_probs: Sequence[float],
                          keys: Sequence[str]) -> dict[str, float]:
    """Per dimension, the product of the probabilities of the tokens whose bytes overlap its score's digits."""
    if not token_probs or len(token_ends) != len(token_probs):
        return {}
    confidences: dict[str, float] = {}
    for key, (start, end) in score_spans(text, keys).items():
        log_p, touched, begin = 0.0, False, 0
        for stop, prob in zip(token_ends, token_probs, strict=True):
            if stop > begin and begin < end and stop > start:
                log_p += math.log(max(prob, 1e-12))
                touched = True
            begin = stop
        if touched:
            confidences[key] = math.exp(log_p)
    return confidences


def grade_confidence(text: str, token_ends: Sequence[int], token_probs: Sequence[float],
                     keys: Sequence[str]) -> float | None:
    """The lowest dimension confidence; None where the engine measured nothing or a score was not found."""
    confidences = dimension_confidences(text, token_ends, token_probs, keys)
    if len(confidences) != len(keys):
        return None
    return round(min(confidences.values()), 4)
