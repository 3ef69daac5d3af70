"""The chat rules kept as data (shared/prompts/chat): the built-in blocked words and policy.yaml, read once."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

CHAT_PROMPTS = Path(__file__).resolve().parents[1] / "prompts" / "chat"
OTHER_TOPIC = "其他"


@dataclass(frozen=True)
class ChatPolicy:
    version: str
    system: str
    refusals: dict[str, str]
    study_words: tuple[str, ...]
    off_topic: tuple[re.Pattern[str], ...]
    topics: dict[str, tuple[str, ...]]

    def is_off_topic(self, question: str) -> bool:
        """A non-study request: no study word, and one of the off-topic patterns."""
        if any(word in question for word in self.study_words):
            return False
        return any(pattern.search(question) for pattern in self.off_topic)

    def topic_of(self, question: str) -> str:
        """The topic whose words the question uses most (the first listed on a tie); 其他 when none."""
        best, best_hits = OTHER_TOPIC, 0
        for topic, words in self.topics.items():
            hits = sum(question.count(word) for word in words)
            if hits > best_hits:
                best, best_hits = topic, hits
        return best


@functools.cache
def chat_policy() -> ChatPolicy:
    data = yaml.safe_load((CHAT_PROMPTS / "policy.yaml").read_text(encoding="utf-8"))
    return ChatPolicy(
        version=str(data["version"]), system=data["system"].strip(), refusals=dict(data["refusals"]),
        study_words=tuple(data["study_words"]),
        off_topic=tuple(re.compile(pattern) for pattern in data["off_topic_patterns"]),
        topics={name: tuple(words) for name, words in data["topics"].items()},
    )


@functools.cache
def builtin_blocked_words() -> tuple[str, ...]:
    lines = (CHAT_PROMPTS / "blocked_words.txt").read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))
