"""Synthetic essays for queue and platform tests, built from the tiny model's sentences."""

from __future__ import annotations

import random

from tests.tiny_model import TINY_MODEL_TEXTS

TITLES = ["读书的意义", "论坚持", "青春的答卷", "家乡的河", "远行"]
# Only prose sentences: the tokenizer corpus also holds JSON and rubric vocabulary.
SENTENCES = [
    text for text in TINY_MODEL_TEXTS
    if text.endswith(("。", "！", "？", "”")) and not any(ch.isascii() for ch in text)
]


def make_essay(seed: int, *, min_chars: int = 420, max_chars: int = 900) -> str:
    """A title line and three to five paragraphs of plausible sentences; length varies with the seed."""
    rng = random.Random(seed)
    target = rng.randint(min_chars, max_chars)
    paragraphs: list[str] = []
    length = 0
    while length < target:
        paragraph = "".join(rng.choice(SENTENCES) for _ in range(rng.randint(2, 4)))
        paragraphs.append(paragraph)
        length += len(paragraph)
    return rng.choice(TITLES) + "\n" + "\n".join(paragraphs)


def make_essays(count: int, seed: int = 0) -> list[str]:
    return [make_essay(seed * 100_000 + i) for i in range(count)]
