"""Degenerate output that still parses: what a real small model produced and no schema can refuse.

Seen with a real 0.5B instruct model: evidence repeating one word a dozen times, a 评语 copying a line of the
prompt's instructions, "evidence" that is not a quotation from the essay. Each check returns a label; ``eval``
counts them.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import cache

from services.worker.jobs import EssayOutcome
from shared.prompts.render import render_system_message
from shared.prompts.rubric import resolve_rubric

REPEATED = "重复短语"
ECHOES_INSTRUCTIONS = "评语照抄提示"
NOT_A_QUOTE = "证据非原文"

_IGNORED_RE = re.compile(r"[\s，。、；：！？“”‘’（）《》,.;:!?\"'()\-—…·]+")
# A unit of up to 8 characters three times in a row ("读书读书读书"), or a 4-character phrase three times anywhere
# in one short field: a 评语 or an evidence quote.
_RUN_RE = re.compile(r"(.{1,8}?)\1{2,}")
REPEAT_GRAM = 4
REPEAT_TIMES = 3
ECHO_CHARS = 12  # a run this long shared with the instructions is copied, not written


def degenerate_output(outcome: EssayOutcome, essay_text: str, prompt: str) -> list[str]:
    """Labels of what is degenerate in a graded outcome (empty when nothing is)."""
    labels = []
    fields = [outcome.comment, *(item for items in outcome.evidence.values() for item in items)]
    if any(repeated_phrase(text) for text in fields):
        labels.append(REPEATED)
    instructions = _instructions(outcome.rubric_id, outcome.rubric_version) if outcome.rubric_id else ""
    if instructions and longest_common_run(_compact(outcome.comment), _compact(instructions)) >= ECHO_CHARS:
        labels.append(ECHOES_INSTRUCTIONS)
    essay = _compact(essay_text)
    if any(_compact(item) and _compact(item) not in essay for items in outcome.evidence.values() for item in items):
        labels.append(NOT_A_QUOTE)
    return labels


def repeated_phrase(text: str) -> str | None:
    """The phrase a field repeats degenerately, or None."""
    compact = _compact(text)
    run = _RUN_RE.search(compact)
    if run is not None and len(run.group(0)) >= REPEAT_GRAM:
        return run.group(1)
    grams = Counter(compact[i:i + REPEAT_GRAM] for i in range(len(compact) - REPEAT_GRAM + 1))
    for gram, count in grams.most_common():
        if count < REPEAT_TIMES:
            return None
        if compact.count(gram) >= REPEAT_TIMES:  # str.count does not overlap
            return gram
    return None


def longest_common_run(a: str, b: str) -> int:
    """Length of the longest common substring (dynamic programming over the shorter string)."""
    if len(a) > len(b):
        a, b = b, a
    best, previous = 0, [0] * (len(a) + 1)
    for char_b in b:
        current = [0] * (len(a) + 1)
        for i, char_a in enumerate(a, start=1):
            if char_a == char_b:
                current[i] = previous[i - 1] + 1
                best = max(best, current[i])
        previous = current
    return best


def _compact(text: str) -> str:
    return _IGNORED_RE.sub("", text)


@cache
def _instructions(rubric_id: str, rubric_version: str) -> str:
    return render_system_message(resolve_rubric(rubric_id, rubric_version or None))
