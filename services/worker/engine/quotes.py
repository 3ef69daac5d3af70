"""Quotations that can only be quotations: inside the answer's ``evidence`` items and errors' ``original`` fields,
the model may only write text that continues a passage of the essay it was shown.

The grammar knows the answer's shape but not the essay, so this runs after the grammar's mask, per row: when a row
opens a string whose key is one of ``QUOTE_KEYS`` (an ``evidence`` list's item, an error's ``original``), every token
is banned unless the string so far followed by the token's text is a substring of one of the row's sources (the
essay's title and paragraphs as the prompt shows them, JSON-escaped as they appear inside a string), or the token
closes the string after such text. Where that would leave no token (the grammar and the essay disagree), the row is
left to the grammar alone, so every answer still closes and parses. A row's ban depends on its own essay and tokens
only, so a grade does not change with its batch.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from transformers import LogitsProcessor

from services.worker.engine.grammar import JsonCursor

QUOTE_KEYS = ("evidence", "original")
_OPENS_QUOTE = re.compile(
    rb'(?:"evidence"\s*:\s*\[(?:\s*"(?:[^"\\]|\\.)*"\s*,)*\s*|"original"\s*:\s*)\Z', re.DOTALL
)
_LOOKBACK = 1024  # bytes of the answer so far in which the key of a string being opened is sought
_BEFORE_VALUE = re.compile(rb"[\s\[,:]*")  # what may come before a string value's opening quote in one token
_LONGEST_PIECE = 48  # token texts compared against the essay up to this many bytes
_SEPARATOR = b"\x00"  # between sources: a control character, which no string of an answer may hold


@dataclass(frozen=True)
class QuoteIndex:
    """The vocabulary by text: tokens whose whole text is some bytes, and tokens that close a string after some
    bytes (their text up to its first unescaped ``"``)."""

    exact: dict[bytes, list[int]]
    closing: dict[bytes, list[int]]
    longest: int
    # Tokens that open a string and write into it at once (`["读`): by what comes before the quote, the text
    # they write (up to a second quote) and their id.
    opening: dict[bytes, list[tuple[bytes, int]]]

    @classmethod
    def build(cls, pieces: Sequence[bytes]) -> QuoteIndex:
        exact: dict[bytes, list[int]] = defaultdict(list)
        closing: dict[bytes, list[int]] = defaultdict(list)
        opening: dict[bytes, list[tuple[bytes, int]]] = defaultdict(list)
        longest = 1
        for token_id, piece in enumerate(pieces):
            if not piece:
                continue
            end = _unescaped_quote(piece)
            if end is None:
                exact[piece].append(token_id)
                longest = max(longest, min(len(piece), _LONGEST_PIECE))
            else:
                closing[piece[:end]].append(token_id)
                if _BEFORE_VALUE.fullmatch(piece[:end]):
                    rest = piece[end + 1:]
                    second = _unescaped_quote(rest)
                    written = rest if second is None else rest[:second]
                    if written:
                        opening[piece[:end]].append((written, token_id))
        return cls(dict(exact), dict(closing), longest, dict(opening))


def _unescaped_quote(piece: bytes) -> int | None:
    escaped = False
    for position, byte in enumerate(piece):
        if escaped:
            escaped = False
        elif byte == 0x5C:
            escaped = True
        elif byte == 0x22:
            return position
    return None


_indexes: dict[int, QuoteIndex] = {}  # id(pieces) → index: one per loaded vocabulary


def quote_index(pieces: Sequence[bytes]) -> QuoteIndex:
    index = _indexes.get(id(pieces))
    if index is None:
        index = _indexes[id(pieces)] = QuoteIndex.build(pieces)
    return index


def quote_sources(texts: Sequence[str]) -> bytes:
    """The row's sources as one byte string: each text's paragraphs, JSON-escaped, between separators."""
    paragraphs = [line for text in texts for line in text.split("\n") if line.strip()]
    escaped = [json.dumps(line, ensure_ascii=False)[1:-1].encode() for line in paragraphs]
    return _SEPARATOR + _SEPARATOR.join(escaped) + _SEPARATOR


@dataclass
class _Row:
    source: bytes
    cursor: JsonCursor = field(default_factory=JsonCursor)  # inside a string or not (escapes followed)
    text: bytearray = field(default_factory=bytearray)  # the answer so far
    quoting: bool = False
    quote: bytearray = field(default_factory=bytearray)  # the quotation so far (as written: JSON-escaped)

    @property
    def in_string(self) -> bool:
        return self.cursor.in_string

    def feed(self, raw: bytes) -> None:
        for byte in raw:
            was_inside = self.cursor.in_string
            self.cursor.feed(bytes((byte,)))
            if not was_inside and self.cursor.in_string:  # a string opens: is it a quotation's?
                self.quoting = _OPENS_QUOTE.search(bytes(self.text[-_LOOKBACK:])) is not None
                self.quote = bytearray()
            elif not self.cursor.in_string:
                self.quoting = False
            elif self.quoting:
                self.quote.append(byte)
            self.text.append(byte)


class QuoteConstrainer(LogitsProcessor):
    """Keeps each row's quotation strings to text of that row's sources (``quote_sources``; None: unconstrained)."""

    def __init__(self, pieces: Sequence[bytes], sources: Sequence[bytes | None]) -> None:
        self.pieces, self.index = pieces, quote_index(pieces)
        self.rows = [_Row(source) if source is not None else None for source in sources]
        self.step = 0
        self._starts: dict[bytes, set[int]] = {}  # source → the tokens that may begin a quotation of it
        self.kept = 0  # steps where a row's preferred token was not a continuation of the essay
        self.released = 0  # steps where no continuation was allowed by the grammar: the row was left to it

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.step > 0:
            for row, token in enumerate(input_ids[:, -1].tolist()):
                state = self.rows[row]
                if state is not None:
                    state.feed(self.pieces[token] if token < len(self.pieces) else b"")
        self.step += 1
        for row, state in enumerate(self.rows):
            if state is None:
                continue
            if not state.in_string:
                self._ban(row, scores, self.false_openings(state))
                continue
            if not state.quoting:
                continue
            allowed = self.continuations(state.source, bytes(state.quote))
            ids = torch.tensor(sorted(allowed), dtype=torch.long, device=scores.device)
            kept = torch.full_like(scores[row], float("-inf"))
            if len(ids):
                kept[ids] = scores[row, ids]
            if torch.isfinite(kept).any():
                self.kept += int(kept.argmax() != scores[row].argmax())
                scores[row] = kept
            else:
                self.released += 1
        return scores

    def false_openings(self, state: _Row) -> set[int]:
        """Tokens that would open a quotation string and write, in the same token, text that is not the essay's."""
        recent = bytes(state.text[-_LOOKBACK:])
        if b'"evidence"' not in recent and b'"original"' not in recent:
            return set()
        banned = set()
        for before, tokens in self.index.opening.items():
            if _OPENS_QUOTE.search(recent + before) is not None:
                banned.update(token_id for written, token_id in tokens if state.source.find(written) < 0)
        return banned

    def _ban(self, row: int, scores: torch.Tensor, banned: set[int]) -> None:
        if not banned:
            return
        ids = torch.tensor(sorted(banned), dtype=torch.long, device=scores.device)
        kept = scores[row].index_fill(0, ids, float("-inf"))
        if torch.isfinite(kept).any():
            self.kept += int(kept.argmax() != scores[row].argmax())
            scores[row] = kept
        else:
            self.released += 1

    def continuations(self, source: bytes, quote: bytes) -> set[int]:
        """Tokens that extend ``quote`` within ``source``, or close the string after such an extension."""
        if not quote and source in self._starts:
            return self._starts[source]
        index, allowed = self.index, set()
        start = source.find(quote)
        while start >= 0:
            end = start + len(quote)
            ahead = source[end:end + index.longest]
            stop = ahead.find(_SEPARATOR)
            ahead = ahead if stop < 0 else ahead[:stop]
            if quote:
                allowed.update(index.closing.get(b"", ()))
            for length in range(1, len(ahead) + 1):
                prefix = ahead[:length]
                allowed.update(index.exact.get(prefix, ()))
                allowed.update(index.closing.get(prefix, ()))
            start = source.find(quote, start + 1)
        if not quote:
            self._starts[source] = allowed
        return allowed
