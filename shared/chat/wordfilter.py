"""The sensitive-word filter on questions and on answers as they stream.

Text and words are compared after NFKC, case folding and dropping whitespace and punctuation, so that spacing or
full-width letters do not slip a word through; a hit reports where it starts in the original text, so a streamed
answer can be cut just before it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass


def _fold(char: str) -> str:
    """A character as compared: '' for whitespace and punctuation."""
    folded = unicodedata.normalize("NFKC", char).casefold()
    return "".join(c for c in folded if not (c.isspace() or unicodedata.category(c).startswith(("P", "S", "C"))))


@dataclass(frozen=True)
class Hit:
    word: str
    start: int  # index in the original text where the word begins


class WordFilter:
    def __init__(self, words: Iterable[str]) -> None:
        folded = {"".join(_fold(c) for c in word): word for word in words}
        self.words = {key: word for key, word in folded.items() if key}

    def first_hit(self, text: str) -> Hit | None:
        """The earliest blocked word in ``text``, or None."""
        chars: list[str] = []
        origin: list[int] = []
        for index, char in enumerate(text):
            for folded in _fold(char):
                chars.append(folded)
                origin.append(index)
        flat = "".join(chars)
        best: Hit | None = None
        for key, word in self.words.items():
            at = flat.find(key)
            if at >= 0 and (best is None or origin[at] < best.start):
                best = Hit(word, origin[at])
        return best
