"""Retrieval over the 素材 library: jieba segmentation and Okapi BM25, narrowed by theme.

A small BM25 of our own rather than rank-bm25 (the one the chat's retrieval uses, ``shared.chat.retrieval``): the
corpus is a few hundred short entries, the scoring is a dozen lines, and it needs no numpy in the web process.
jieba's search mode also yields the sub-words of long words (科学家 → 科学, 学家), so a prompt's 科学 finds an entry
about a 科学家.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from shared.chat.retrieval import bm25_scores
from shared.prompts.material_library import Material

_WORD = re.compile(r"[\u4e00-\u9fffA-Za-z0-9]")
# Words that say nothing about a topic; the prompt's boilerplate (要求、写一篇文章) must not steer retrieval.
_STOPWORD_TEXT = (
    "的 了 和 与 及 或 在 是 为 以 之 而 其 也 我 你 他 她 它 们 这 那 有 就 都 并 对 把 被 从 让 向 "
    "一 一篇 文章 作文 材料 阅读 下面 要求 写 请 自选 角度 确定 立意 明确 文体 不要 套作 抄袭 泄露 个人 信息 "
    "不少 不得 少于 字 800 题目 自拟 结合 综合 联想 感悟 体会 认识 谈谈 看法 根据 于 以下 下列 所给"
)
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def _jieba():  # type: ignore[no-untyped-def]
    import jieba

    jieba.setLogLevel(logging.WARNING)
    return jieba


def tokens(text: str) -> list[str]:
    """Search-mode words of ``text`` without punctuation and stopwords."""
    return [word for word in _jieba().lcut_for_search(text)
            if _WORD.search(word) and word not in STOPWORDS and word.strip()]


@lru_cache(maxsize=2048)
def _entry_tokens(text: str) -> tuple[str, ...]:
    return tuple(tokens(text))


@dataclass(frozen=True)
class Hit:
    entry: Material
    score: float


def search(entries: Sequence[Material], query: str, *, themes: Sequence[str] = (), limit: int = 12,
           kinds: Sequence[str] = ()) -> list[Hit]:
    """Entries for the query's words, best first, among those tagged with any of ``themes`` (all entries when no
    entry has them) and of ``kinds``; with no matching word, the theme's entries in library order (score 0)."""
    pool = [e for e in entries if not kinds or e.kind in kinds]
    if themes:
        themed = [e for e in pool if set(e.themes) & set(themes)]
        pool = themed or pool
    query_tokens = tokens(query) if query.strip() else []
    scores = bm25_scores(query_tokens, [_entry_tokens(e.searchable()) for e in pool]) if query_tokens else []
    ranked = sorted(range(len(pool)), key=lambda i: (-(scores[i] if scores else 0.0), i))
    return [Hit(pool[i], round(scores[i], 4) if scores else 0.0) for i in ranked[:limit]]
