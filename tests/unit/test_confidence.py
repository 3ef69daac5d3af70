"""Confidence from token probabilities: which tokens write a score, and how their probabilities combine."""

from __future__ import annotations

import math

import pytest

from services.worker.confidence import dimension_confidences, grade_confidence, score_spans
from shared.confidence import bucket, is_low_confidence

ANSWER = '{"content": {"score": 16, "band": "二等", "evidence": ["读书"]}, "expression": {"score": 9, "band": "三等"}}'


def _tokens(text: str, pieces: list[str]) -> list[int]:
    assert "".join(pieces) == text
    ends, total = [], 0
    for piece in pieces:
        total += len(piece.encode("utf-8"))
        ends.append(total)
    return ends


def test_score_spans_are_the_digits_of_each_dimension() -> None:
    raw = ANSWER.encode()
    spans = score_spans(ANSWER, ["content", "expression", "development"])
    assert {key: raw[a:b] for key, (a, b) in spans.items()} == {"content": b"16", "expression": b"9"}


def test_probabilities_of_the_tokens_over_the_digits_multiply() -> None:
    head = '{"content": {"score": '
    rest_content = ', "band": "二等", "evidence": ["读书"]}, "expression": {"score": '
    tail = ', "band": "三等"}}'
    pieces = [head, "1", "6", rest_content, "9", tail]
    ends = _tokens(ANSWER, pieces)
    probs = [0.99, 0.5, 0.8, 0.97, 0.3, 0.99]
    found = dimension_confidences(ANSWER, ends, probs, ["content", "expression"])
    assert found["content"] == pytest.approx(0.4) and found["expression"] == pytest.approx(0.3)
    assert grade_confidence(ANSWER, ends, probs, ["content", "expression"]) == 0.3
    # a token that carries the digit with punctuation around it counts once, for its whole probability
    merged = [head[:-1], " 16,", rest_content[1:], "9", tail]
    assert dimension_confidences(ANSWER, _tokens(ANSWER, merged), [0.9, 0.6, 0.9, 0.7, 0.9],
                                 ["content"]) == {"content": pytest.approx(0.6)}


def test_nothing_measured_is_none_not_a_guess() -> None:
    assert grade_confidence(ANSWER, [], [], ["content"]) is None
    ends = _tokens(ANSWER, [ANSWER])
    assert grade_confidence(ANSWER, ends, [0.9], ["content", "development"]) is None  # development missing
    assert math.isclose(grade_confidence(ANSWER, ends, [0.9], ["content"]) or 0, 0.9)


def test_low_confidence_and_buckets() -> None:
    assert is_low_confidence(0.49) and not is_low_confidence(0.5) and not is_low_confidence(None)
    assert is_low_confidence(None, dropped_quotes=1)
    assert [bucket(v) for v in (0.1, 0.5, 0.79, 0.8, 1.0, None)] == [
        "低（<0.5）", "中（0.5–0.8）", "中（0.5–0.8）", "高（≥0.8）", "高（≥0.8）", "未测量"]
