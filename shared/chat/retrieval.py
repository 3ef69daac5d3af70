"""Retrieval for the chat: materials are cut into passages, tokenised with jieba, and ranked with BM25.

Pure functions: the web tokenises a material's passages when it is uploaded (stored with them), the worker ranks
a class's passages and the student's own essays against each question.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

CHUNK_CHARS = 300
K1 = 1.5
B = 0.75
# Function words that carry nothing for ranking.
_STOPWORDS = "的 了 是 在 和 与 也 就 都 而 及 或 一个 我 你 他 她 它 我们 这 那 吗 呢 吧 啊 怎么 什么 如何 为什么"
STOPWORDS = frozenset(_STOPWORDS.split(" "))
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;])")


def tokenize(text: str) -> list[str]:
    """jieba's words of ``text``, case-folded, without whitespace, punctuation and stopwords."""
    import jieba  # loads its dictionary on first use

    words = []
    for word in jieba.lcut(unicodedata.normalize("NFKC", text).casefold()):
        word = word.strip()
        if not word or word in STOPWORDS or all(unicodedata.category(c)[0] in "PSZC" for c in word):
            continue
        words.append(word)
    return words


def chunk_text(text: str, size: int = CHUNK_CHARS) -> list[str]:
    """Passages of about ``size`` characters: whole paragraphs joined, a long paragraph cut at sentence ends."""
    pieces: list[str] = []
    for paragraph in (p.strip() for p in text.splitlines()):
        if not paragraph:
            continue
        if len(paragraph) <= size:
            pieces.append(paragraph)
            continue
        sentence_run = ""
        for sentence in filter(None, _SENTENCE_END.split(paragraph)):
            if sentence_run and len(sentence_run) + len(sentence) > size:
                pieces.append(sentence_run)
                sentence_run = ""
            while len(sentence) > size:  # one sentence longer than a passage
                pieces.append(sentence[:size])
                sentence = sentence[size:]
            sentence_run += sentence
        if sentence_run:
            pieces.append(sentence_run)
    chunks: list[str] = []
    for piece in pieces:
        if chunks and len(chunks[-1]) + len(piece) + 1 <= size:
            chunks[-1] = f"{chunks[-1]}\n{piece}"
        else:
            chunks.append(piece)
    return chunks


def bm25_scores(query: Sequence[str], documents: Sequence[Sequence[str]]) -> list[float]:
    """Okapi BM25 of each tokenised document for the tokenised query (idf with the +1 that keeps it positive)."""
    if not documents:
        return []
    count = len(documents)
    average = sum(len(doc) for doc in documents) / count or 1.0
    frequencies = [Counter(doc) for doc in documents]
    containing = Counter(term for freq in frequencies for term in freq)
    scores = []
    for doc, freq in zip(documents, frequencies, strict=True):
        score = 0.0
        for term in set(query):
            tf = freq.get(term, 0)
            if not tf:
                continue
            idf = math.log(1 + (count - containing[term] + 0.5) / (containing[term] + 0.5))
            score += idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * len(doc) / average))
        scores.append(score)
    return scores


def top_matches(query: Sequence[str], documents: Sequence[Sequence[str]], k: int) -> list[int]:
    """Indexes of the ``k`` best documents with a positive score, best first (earlier first on a tie)."""
    scores = bm25_scores(query, documents)
    ranked = sorted((i for i, s in enumerate(scores) if s > 0), key=lambda i: (-scores[i], i))
    return ranked[:k]
