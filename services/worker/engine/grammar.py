"""Constrained decoding with xgrammar: the schema's grammar masks each row, and near the end of the token budget
the closing guard steers unfinished rows to close their JSON, so every answer completes within ``max_new_tokens``.

What the grammar admits is what the parser accepts, byte for byte: string contents exclude control characters
(``json.loads`` rejects them) and UTF-16 surrogates (not UTF-8: they decode to three U+FFFD each); the tokenizer's
special tokens are no text to the grammar; and an answer's text is the very bytes the grammar matched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import xgrammar as xgr
from transformers import GenerationConfig, LogitsProcessor

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

_STRING_CLOSER = re.compile(rb'"[\]}]*')
_CONTAINER_CLOSER = re.compile(rb"[\]}]+")
_STRUCTURAL = re.compile(rb'["\\\[\]{}]')

_NO_COMMA, _SHALLOW_COMMA, _DEEP_COMMA = 0, 1, 2


def _comma_kind(raw: bytes, in_string: bool) -> int:
    """Whether a token, read from inside or outside a string, writes a comma outside strings.

    Shallow: only at the current nesting level (a new property, or a new item if that level is a list);
    deep: after opening or closing a bracket within the token.
    """
    kind, moved, escaped = _NO_COMMA, False, False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in b"[]{}":
            moved = True
        elif byte == 0x2C:
            if moved:
                return _DEEP_COMMA
            kind = _SHALLOW_COMMA
    return kind


# xgrammar (0.2.9) writes a length-bounded string's characters as [^"\\\r\n]: control characters and the three
# bytes of a UTF-16 surrogate (ED A0..BF xx, one "character" to the grammar) pass, and fail or miscount afterwards.
_NOT_IN_STRINGS = r"\0-\x1f\uD800-\uDFFF"


def _class_end(ebnf: str, start: int, closing: str) -> int:
    """The index just past the ``closing`` character that ends the literal or class opened at ``start``."""
    index = start + 1
    while ebnf[index] != closing:
        index += 2 if ebnf[index] == "\\" else 1
    return index + 1


def strict_json_strings(ebnf: str) -> str:
    """The grammar with every negated character class (a JSON string's characters: xgrammar's JSON grammars have no
    other) also excluding control characters and surrogates; quoted literals, and regexes inside them, are kept."""
    parts: list[str] = []
    index = 0
    while index < len(ebnf):
        char = ebnf[index]
        if char in '"[':
            end = _class_end(ebnf, index, '"' if char == '"' else "]")
            piece = ebnf[index:end]
            parts.append("[^" + _NOT_IN_STRINGS + piece[2:] if piece.startswith("[^") else piece)
            index = end
        else:
            parts.append(char)
            index += 1
    return "".join(parts)


def json_schema_grammar(schema_json: str) -> str:
    """The schema's grammar as EBNF: whitespace fixed (compact separators), strings JSON that ``json.loads`` takes."""
    grammar = xgr.Grammar.from_json_schema(schema_json, any_whitespace=False, strict_mode=True)
    return strict_json_strings(str(grammar))


def tokenizer_info(tokenizer: PreTrainedTokenizerBase, vocab_size: int, stop_ids: list[int]) -> xgr.TokenizerInfo:
    """xgrammar's view of the vocabulary (the bytes it reads each token as), with the tokenizer's special tokens
    other than the stops made empty.

    xgrammar reads ``<|im_start|>``, ``<s>`` and the like as their spelling, so the grammar would let them stand for
    text inside a string, text that decoding with ``skip_special_tokens`` drops; empty tokens it never allows.
    """
    detected = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size, stop_token_ids=stop_ids)
    special = (set(tokenizer.all_special_ids) | {
        token_id for token_id, added in tokenizer.added_tokens_decoder.items() if added.special
    }) - set(stop_ids)
    pieces = [b"" if token_id in special else raw for token_id, raw in enumerate(detected.decoded_vocab)]
    return xgr.TokenizerInfo(
        pieces, xgr.VocabType.RAW, vocab_size=vocab_size, stop_token_ids=stop_ids,
        add_prefix_space=detected.add_prefix_space,
    )


@dataclass
class JsonCursor:
    """Where a row's JSON stands: inside a string or not, and the open brackets."""

    in_string: bool = False
    escaped: bool = False
    brackets: str = ""

    def feed(self, raw: bytes) -> None:
        for byte in raw:
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif byte == 0x5C:
                    self.escaped = True
                elif byte == 0x22:
                    self.in_string = False
            elif byte == 0x22:
                self.in_string = True
            elif byte in b"[{":
                self.brackets += chr(byte)
            elif byte in b"]}":
                self.brackets = self.brackets[:-1]


@dataclass(frozen=True)
class Vocabulary:
    """Token facts the closing guard needs, computed once per engine, on the device the logits are on."""

    info: xgr.TokenizerInfo
    pieces: tuple[bytes, ...]  # the bytes the grammar reads for each id; b"" for special and stop tokens
    string_closers: torch.Tensor  # ids: `"` followed only by `]`/`}`, ends a string and opens nothing
    container_closers: torch.Tensor  # ids: only `]`/`}`
    structural: dict[int, bytes]  # tokens with `"`, `\`, brackets: they move a JsonCursor
    adds_item: tuple[torch.Tensor, torch.Tensor]  # masks by in_string: a comma at the current level
    deep_comma: tuple[torch.Tensor, torch.Tensor]  # masks by in_string: a comma past a bracket

    @classmethod
    def build(cls, info: xgr.TokenizerInfo, device: torch.device) -> Vocabulary:
        special = set(info.special_token_ids) | set(info.stop_token_ids)
        pieces = tuple(b"" if token_id in special else raw for token_id, raw in enumerate(info.decoded_vocab))
        string_closers, container_closers, structural = [], [], {}
        size = info.vocab_size
        adds_item = (torch.zeros(size, dtype=torch.bool), torch.zeros(size, dtype=torch.bool))
        deep = (torch.zeros(size, dtype=torch.bool), torch.zeros(size, dtype=torch.bool))
        for token_id, raw in enumerate(pieces):
            if not raw:
                continue
            if _STRING_CLOSER.fullmatch(raw):
                string_closers.append(token_id)
            elif _CONTAINER_CLOSER.fullmatch(raw):
                container_closers.append(token_id)
            if _STRUCTURAL.search(raw):
                structural[token_id] = raw
            if b"," in raw:
                for in_string in (False, True):
                    kind = _comma_kind(raw, in_string)
                    adds_item[in_string][token_id] = kind != _NO_COMMA
                    deep[in_string][token_id] = kind == _DEEP_COMMA
        ids = lambda values: torch.tensor(values, dtype=torch.long, device=device)  # noqa: E731
        masks = lambda pair: (pair[0].to(device), pair[1].to(device))  # noqa: E731
        return cls(
            info, pieces, ids(string_closers), ids(container_closers), structural, masks(adds_item), masks(deep)
        )

    def decode(self, token_ids: list[int]) -> str:
        """The text of generated tokens as the grammar read them; only an answer cut short (no stop token) can end
        inside a character, which becomes U+FFFD."""
        return b"".join(self.pieces[token_id] for token_id in token_ids).decode("utf-8", errors="replace")

    def check(self, tokenizer: PreTrainedTokenizerBase) -> None:
        """Raise ``ValueError`` where the grammar's reading of the vocabulary is not the tokenizer's decoding."""
        ids = tokenizer.encode(_PROBE, add_special_tokens=False)
        ours = self.decode(ids)
        theirs = tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        if theirs not in (ours, ours.removeprefix(" ")):  # a SentencePiece decoder drops the first token's space
            raise ValueError(
                f"xgrammar reads this tokenizer's vocabulary as {ours!r}, the tokenizer decodes {theirs!r}: "
                "constrained answers would not be the text the model wrote"
            )


_PROBE = '{"comment": "读书使人明智，青春 is 1 step; 𠀀é!", "errors": []}'


@dataclass(frozen=True)
class Plan:
    """How one ``generate_json`` call decodes: grammar (None: unconstrained), token budget, guard start."""

    grammar: xgr.CompiledGrammar | None
    max_new_tokens: int
    reserve: int | None
    generation_config: GenerationConfig


class GrammarProcessor(LogitsProcessor):
    """Masks each row to its grammar; near the end of the budget, steers unfinished rows to close.

    Like ``xgrammar.contrib.hf.LogitsProcessor`` (stateful: one per ``generate`` call, masks filled by
    xgrammar's thread pool), plus the closing guard: once no more than ``reserve`` tokens are left, a row
    that may end its string or close a list or object is made to, and a row that may not is kept from
    starting another list item, so every answer completes within ``max_new_tokens``.
    """

    def __init__(
        self, plan: Plan, vocabulary: Vocabulary, batch: xgr.BatchGrammarMatcher, batch_size: int
    ) -> None:
        assert plan.grammar is not None
        self.matchers = [xgr.GrammarMatcher(plan.grammar) for _ in range(batch_size)]
        self.bitmask = xgr.allocate_token_bitmask(batch_size, vocabulary.info.vocab_size)
        self.batch = batch
        self.vocabulary = vocabulary
        self.guard_from = plan.max_new_tokens - plan.reserve if plan.reserve is not None else None
        self.step = 0
        self.live = list(range(batch_size))
        self.cursors = [JsonCursor() for _ in range(batch_size)]
        self.forced = [False] * batch_size
        self.chosen: list[list[float]] = [[] for _ in range(batch_size)]  # per row: p(the greedy token) each step

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.step > 0:
            last = input_ids[:, -1].tolist()
            for i in self.live:
                if not self.matchers[i].accept_token(last[i]):
                    raise RuntimeError(f"grammar rejected token {last[i]} in row {i}")
                raw = self.vocabulary.structural.get(last[i])
                if raw is not None:
                    self.cursors[i].feed(raw)
                else:
                    self.cursors[i].escaped = False
            self.live = [i for i in self.live if not self.matchers[i].is_terminated()]
        self.batch.batch_fill_next_token_bitmask(
            [self.matchers[i] for i in self.live], self.bitmask, self.live
        )
        xgr.apply_token_bitmask_inplace(scores, self.bitmask.to(scores.device))
        if self.guard_from is not None and self.step >= self.guard_from:
            for i in self.live:
                self._steer_to_close(i, scores)
        if self.live:  # the greedy token's probability under the mask (and the guard): the grade's confidence
            chosen = torch.softmax(scores[self.live].float(), dim=-1).max(dim=-1).values.tolist()
            for i, probability in zip(self.live, chosen, strict=True):
                self.chosen[i].append(probability)
        self.step += 1
        return scores

    def _steer_to_close(self, row: int, scores: torch.Tensor) -> None:
        vocab, cursor = self.vocabulary, self.cursors[row]
        inside = cursor.in_string
        closers = vocab.string_closers if inside else vocab.container_closers
        choice = scores[row].argmax()
        allowed = scores[row, closers]
        if torch.isfinite(allowed).any():
            steered = torch.full_like(scores[row], float("-inf"))
            steered[closers] = allowed
        else:
            banned = vocab.adds_item[inside] if cursor.brackets.endswith("[") else vocab.deep_comma[inside]
            steered = scores[row].masked_fill(banned, float("-inf"))
            if not torch.isfinite(steered).any():
                return
        self.forced[row] = self.forced[row] or bool(steered.argmax() != choice)
        scores[row] = steered



_REPEAT = re.compile(r"\{(\d+), ?(-?\d+)\}")


def gbnf_from_ebnf(ebnf: str) -> str:
    """xgrammar's EBNF as llama.cpp's GBNF, the same language: rule names with ``-`` for ``_``, ``{m,}`` for
    ``{m, -1}``, ``\\x00`` for ``\\0``; lookahead assertions ``(= ...)`` (hints for xgrammar's matcher, no part of
    the language) are dropped."""
    parts: list[str] = []
    index = 0
    while index < len(ebnf):
        char = ebnf[index]
        if char in '"[':
            end = _class_end(ebnf, index, '"' if char == '"' else "]")
            parts.append(ebnf[index:end].replace("\\0-", "\\x00-"))
            index = end
        elif ebnf.startswith("(=", index):
            depth, index = 1, index + 2
            while depth:
                if ebnf[index] in '"[':
                    index = _class_end(ebnf, index, '"' if ebnf[index] == '"' else "]")
                    continue
                depth += {"(": 1, ")": -1}.get(ebnf[index], 0)
                index += 1
        elif char == "{":
            repeat = _REPEAT.match(ebnf, index)
            if repeat is None:
                raise ValueError(f"unexpected {{ in the grammar at {index}: {ebnf[index:index + 20]!r}")
            low, high = repeat.groups()
            parts.append(f"{{{low},}}" if high == "-1" else f"{{{low},{high}}}")
            index = repeat.end()
        else:
            parts.append("-" if char == "_" else char)
            index += 1
    return "".join(parts)
