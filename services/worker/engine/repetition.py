"""Repeat blocking inside JSON strings: a model must not write the same run of text twice in one string value.

Real small models loop ("evidence" repeating one word a dozen times). Blocking repeats over the whole answer
would fight the grammar (keys and punctuation repeat by design), so only the tokens of the string being written
count. A token is banned where writing it would copy an earlier run of the string's tokens that, with it, spans
at least ``min_chars`` characters: measured in characters rather than tokens, so a byte-level tokenizer (three
tokens a Chinese character) is held to the same text as one with whole-word tokens. The ban runs after the
grammar's mask and is dropped for a row where it would leave no token, so the answer still closes and parses; it
depends on that row's own tokens only, so a grade does not change with the batch it is in.
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor

from services.worker.engine.grammar import JsonCursor

LONGEST_RUN = 64  # tokens compared backwards at most, so a step costs O(string length × this) at worst

_char_counts: dict[int, list[int]] = {}  # id(pieces) → characters each token starts (its non-continuation bytes)


def _chars(pieces: tuple[bytes, ...]) -> list[int]:
    counts = _char_counts.get(id(pieces))
    if counts is None:
        counts = [sum(1 for byte in piece if byte & 0xC0 != 0x80) for piece in pieces]
        _char_counts[id(pieces)] = counts
    return counts


class StringRepeatBlocker(LogitsProcessor):
    """Bans, in each row, the tokens that would repeat a run of ``min_chars`` characters of the current string."""

    def __init__(self, pieces: tuple[bytes, ...], min_chars: int, rows: int) -> None:
        if min_chars < 2:
            raise ValueError("a repeat to block spans at least 2 characters")
        self.pieces, self.min_chars, self.chars = pieces, min_chars, _chars(pieces)
        self.cursors = [JsonCursor() for _ in range(rows)]
        self.strings: list[list[int]] = [[] for _ in range(rows)]  # tokens of the string each row is inside
        self.step = 0
        self.bans = 0  # steps where a row's preferred token was banned

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.step > 0:
            for row, token in enumerate(input_ids[:, -1].tolist()):
                self._feed(row, token)
        self.step += 1
        for row, tokens in enumerate(self.strings):
            banned = self.repeats(tokens)
            if not banned:
                continue
            ids = torch.tensor(sorted(banned), dtype=torch.long, device=scores.device)
            kept = scores[row].index_fill(0, ids, float("-inf"))
            if torch.isfinite(kept).any():
                self.bans += int(kept.argmax() != scores[row].argmax())
                scores[row] = kept
        return scores

    def _feed(self, row: int, token: int) -> None:
        cursor = self.cursors[row]
        was_inside = cursor.in_string
        cursor.feed(self.pieces[token] if token < len(self.pieces) else b"")
        if cursor.in_string and was_inside:
            self.strings[row].append(token)
        else:  # left a string, or opened one (that token's own characters are not counted)
            self.strings[row] = []

    def repeats(self, tokens: list[int]) -> set[int]:
        """The tokens that, written next, would copy an earlier run of ``tokens`` of at least ``min_chars``."""
        if not tokens:
            return set()
        end, last, banned = len(tokens) - 1, tokens[-1], set()
        for follow in range(1, len(tokens)):
            candidate = tokens[follow]
            if tokens[follow - 1] != last or candidate in banned:
                continue
            chars, matched = self.chars[candidate] + self.chars[last], 1
            while (chars < self.min_chars and matched < LONGEST_RUN and follow - 1 - matched >= 0
                   and tokens[follow - 1 - matched] == tokens[end - matched]):
                chars += self.chars[tokens[follow - 1 - matched]]
                matched += 1
            if chars >= self.min_chars:
                banned.add(candidate)
        return banned
