"""Error detection for ``yuejuan eval --task spelling|sentences``: labelled sentences graded inside short essays.

The sentences of a set (SIGHAN-15's wrong sentences, FCGEC's) are packed in order into short essays — a neutral
title line, then one sentence a line — and graded through the production pipeline in the production batches.
Each located error is given back to the sentence whose line contains its start, by offset into
``outcome.text`` (the normalised essay): every sentence's span there is found by normalising its line the way
the pipeline does, and a position in that normalised line is carried back to the sentence as given by aligning
the two (normalisation turns full-width digits half-width, drops indentation and invisible characters).

What counts:

- spelling: only findings of type 错别字. The quote and its suggestion are aligned character by character when
  they are equally long, and each character that differs is a SIGHAN edit (position → the suggested character);
  a quote whose suggestion repeats it flags every quoted character with no correction. When the lengths differ
  (not a substitution), the common beginning and end are set aside and each remaining quoted character is
  flagged with no correction (detected, never corrected); a pure insertion flags nothing. The first finding
  at a position stands.
- sentences: a sentence is flagged as 病句 when a finding of type 病句, 用词不当 or 关联词 falls in it (the
  rubric's grammatical types: FCGEC's 搭配不当 and misused connectives are what the model files there); 错别字
  and 标点 findings never flag it. The 病句-only figure is reported beside it.

A packed essay that failed (or that the rubric scored without the model) predicts nothing for its sentences;
they stay in the figures and are counted as failed.
"""

from __future__ import annotations

import difflib
import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from services.worker.engine import Engine
from services.worker.evaluation.metrics import edits_between
from services.worker.evaluation.sets import EvalSetError
from services.worker.jobs import EssayJob, EssayOutcome, LocatedError
from shared.textnorm import clean_essay_text

logger = logging.getLogger(__name__)

Task = Literal["spelling", "sentences"]
TASKS: tuple[Task, ...] = ("spelling", "sentences")

PACK_TITLE = "句子练习"
PACK_PROMPT = "句子练习：下面每行是一个独立的句子。"
PACK_GENRE = "不限"
DEFAULT_PER_ESSAY = 10

SPELLING_TYPE = "错别字"
SENTENCE_TYPES = ("病句", "用词不当", "关联词")
STRICT_SENTENCE_TYPE = "病句"
NO_CORRECTION = ""  # an edit whose position is flagged without a usable replacement character

SIGHAN_FILES = ("test15_error.txt", "test15_correct.txt")
FCGEC_FILE = "FCGEC_valid.json"
FCGEC_TYPES = {"IWO": "语序不当", "IWC": "搭配不当", "CM": "成分残缺", "CR": "成分赘余", "SC": "结构混乱",
               "ILL": "不合逻辑", "AM": "表意不明"}
_LINE_BREAKS = str.maketrans(dict.fromkeys("\r\n\u2028\u2029\x0b\x0c\x1c\x1d\x1e\x85", " "))


@dataclass(frozen=True)
class LabelledSentence:
    """One sentence of a detection set with its gold labels: SIGHAN edits (position → correct character) or
    FCGEC's 病句 flag and error types."""

    key: str
    text: str
    edits: dict[int, str] = field(default_factory=dict)
    error: bool = False
    types: tuple[str, ...] = ()

    def gold(self, task: Task) -> dict[str, Any]:
        if task == "spelling":
            return {"edits": [[position, char] for position, char in sorted(self.edits.items())]}
        return {"error": self.error, "types": list(self.types)}


# --- the sets -------------------------------------------------------------------------------------


def read_sighan(path: Path) -> list[LabelledSentence]:
    """SIGHAN-15 as line-aligned wrong/correct files: a folder holding test15_error.txt and test15_correct.txt
    (or one ``*error*.txt`` and its ``*correct*.txt``), or the wrong file itself with the correct one beside it."""
    wrong, right = _sighan_pair(path)
    wrong_lines, right_lines = _lines(wrong), _lines(right)
    if len(wrong_lines) != len(right_lines):
        raise EvalSetError(
            f"{wrong.name} 有 {len(wrong_lines)} 行，{right.name} 有 {len(right_lines)} 行：两者应逐行对应"
        )
    sentences = []
    for number, (source, corrected) in enumerate(zip(wrong_lines, right_lines, strict=True), 1):
        if not source.strip():
            raise EvalSetError(f"{wrong.name} 第 {number} 行是空行")
        try:
            edits = edits_between(source, corrected)
        except ValueError as exc:
            raise EvalSetError(f"{wrong.name} 第 {number} 行与 {right.name} 的对应行字数不同，无法逐字对齐") from exc
        sentences.append(LabelledSentence(key=f"{wrong.stem}:{number}", text=source, edits=edits, error=bool(edits)))
    return sentences


def _sighan_pair(path: Path) -> tuple[Path, Path]:
    if path.is_file():
        right = path.with_name(path.name.replace("error", "correct"))
        if right == path or not right.is_file():
            raise EvalSetError(f"{path.name}: 找不到对应的正确句文件（把文件名中的 error 换成 correct）")
        return path, right
    wrong, right = (path / name for name in SIGHAN_FILES)
    if wrong.is_file() and right.is_file():
        return wrong, right
    found = sorted(path.glob("*error*.txt"))
    if len(found) == 1:
        return _sighan_pair(found[0])
    raise EvalSetError(f"{path}: 应含 {SIGHAN_FILES[0]} 与 {SIGHAN_FILES[1]}（逐行对应的错句与正确句）")


def _lines(path: Path) -> list[str]:
    text = path.read_text("utf-8-sig").replace("\r\n", "\n")
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def read_fcgec(path: Path) -> list[LabelledSentence]:
    """FCGEC (e.g. FCGEC_valid.json, or its folder): an object of id → {sentence, error_flag, error_type, …}; the
    types of a sentence with several are joined by ";" ("*" for a correct sentence)."""
    if path.is_dir():
        path = path / FCGEC_FILE
    try:
        data = json.loads(path.read_text("utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise EvalSetError(f"{path.name}: 不是可读的 JSON（{exc}）") from exc
    if not isinstance(data, dict):
        raise EvalSetError(f"{path.name}: 应为“编号 → 句子记录”的 JSON 对象")
    sentences = []
    for key, item in data.items():
        sentence = item.get("sentence") if isinstance(item, dict) else None
        flag = item.get("error_flag") if isinstance(item, dict) else None
        if not isinstance(sentence, str) or not sentence.strip() or flag not in (0, 1) or isinstance(flag, bool):
            raise EvalSetError(f"{path.name} 记录 {key}: 应有非空的 sentence 和取 0 或 1 的 error_flag")
        types = str(item.get("error_type") or "*")
        names = tuple(sorted({name.strip() for name in types.split(";") if name.strip() not in ("", "*")}))
        sentences.append(LabelledSentence(key=str(key), text=sentence, error=bool(flag), types=names))
    return sentences


def read_detection_set(task: Task, path: Path) -> list[LabelledSentence]:
    sentences = read_sighan(path) if task == "spelling" else read_fcgec(path)
    if not sentences:
        raise EvalSetError(f"{path.name}: 没有句子")
    return sentences


# --- packing sentences into essays and mapping findings back ---------------------------------------


@dataclass(frozen=True)
class PackedEssay:
    """Consecutive sentences as one essay: the title line, then ``lines[i]`` (sentence ``first + i`` with any line
    break turned into a space, so positions stay those of the sentence)."""

    first: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join((PACK_TITLE, *self.lines))


def pack_sentences(sentences: Sequence[str], per_essay: int = DEFAULT_PER_ESSAY) -> list[PackedEssay]:
    """Consecutive sentences in essays of at most ``per_essay``, as even as can be (22 by 10: 8, 7, 7), so no
    essay is left with one or two sentences, which the rubric would score without the model."""
    if per_essay < 1:
        raise ValueError(f"per_essay {per_essay} must be at least 1")
    count = math.ceil(len(sentences) / per_essay)
    essays, start = [], 0
    for index in range(count):
        size = len(sentences) // count + (index < len(sentences) % count)
        lines = tuple(sentence.translate(_LINE_BREAKS) for sentence in sentences[start:start + size])
        essays.append(PackedEssay(first=start, lines=lines))
        start += size
    return essays


@dataclass(frozen=True)
class SentenceFinding:
    """A finding inside one sentence: its offsets in the sentence as given (``text[start:end]``), the quote as the
    model saw it (normalised) and, for each of its characters, the position in the sentence it came from."""

    type: str
    start: int
    end: int
    original: str
    positions: tuple[int, ...]
    suggestion: str
    origin: str


def sentence_spans(essay: PackedEssay, text: str) -> list[tuple[int, int, str] | None]:
    """Where each line of ``essay`` lies in the graded ``text`` (the normalised essay): (start, end, the line as
    normalised) in order after the title line; None for a line that cannot be found there."""
    spans: list[tuple[int, int, str] | None] = []
    cursor = text.find("\n") if "\n" in text else len(text)
    for line in essay.lines:
        normalised = clean_essay_text(line)
        found = text.find(normalised, cursor) if normalised else -1
        if found < 0:
            logger.warning("sentence not found in the graded text: %r", line)
            spans.append(None)
            continue
        spans.append((found, found + len(normalised), normalised))
        cursor = found + len(normalised)
    return spans


def position_map(original: str, normalised: str) -> list[int]:
    """For each character of ``normalised`` (``clean_essay_text`` of ``original``), its index in ``original``:
    equal runs and equally long replacements (full-width → half-width) map one to one; other changes map to the
    first character they replaced."""
    mapping: list[int] = []
    matcher = difflib.SequenceMatcher(None, original, normalised, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "delete":
            continue
        if i2 - i1 == j2 - j1:
            mapping.extend(range(i1, i2))
        else:
            last = max(i1, i2 - 1)
            mapping.extend(min(i1 + k, last) for k in range(j2 - j1))
    return [min(index, max(len(original) - 1, 0)) for index in mapping]


def attribute_findings(essay: PackedEssay, outcome: EssayOutcome) -> list[list[SentenceFinding]]:
    """The findings of ``outcome`` given to the sentences of ``essay`` (one list a line, in order): a finding
    belongs to the line that contains its start and is cut at that line's end; findings in the title or
    outside every line are left out."""
    spans = sentence_spans(essay, outcome.text)
    per_line: list[list[SentenceFinding]] = [[] for _ in essay.lines]
    for error in outcome.errors:
        line = next((i for i, span in enumerate(spans) if span and span[0] <= error.start < span[1]), None)
        if line is None:
            logger.debug("finding outside the sentences: %s %r", error.type, error.original)
            continue
        span = spans[line]
        assert span is not None
        per_line[line].append(_in_sentence(error, essay.lines[line], *span))
    return per_line


def _in_sentence(error: LocatedError, line: str, start: int, end: int, normalised: str) -> SentenceFinding:
    first, last = error.start - start, min(error.end, end) - start
    positions = tuple(position_map(line, normalised)[first:last])
    begin = positions[0] if positions else 0
    return SentenceFinding(type=error.type, start=begin, end=positions[-1] + 1 if positions else begin,
                           original=normalised[first:last], positions=positions, suggestion=error.suggestion,
                           origin=error.origin)


def spelling_edits(findings: Sequence[SentenceFinding]) -> dict[int, str]:
    """SIGHAN edits (position → corrected character, ``NO_CORRECTION`` when none) from one sentence's findings:
    see the module docstring for the rules."""
    edits: dict[int, str] = {}
    for finding in sorted(findings, key=lambda f: (f.start, f.end)):
        if finding.type != SPELLING_TYPE:
            continue
        for position, char in _quote_edits(finding.original, finding.suggestion, finding.positions):
            edits.setdefault(position, char)
    return edits


def _quote_edits(original: str, suggestion: str, positions: Sequence[int]) -> list[tuple[int, str]]:
    if suggestion == original:
        return [(position, NO_CORRECTION) for position in dict.fromkeys(positions)]
    if len(suggestion) == len(original):
        return [(positions[k], new) for k, (old, new) in enumerate(zip(original, suggestion, strict=True))
                if old != new]
    head = 0
    while head < min(len(original), len(suggestion)) and original[head] == suggestion[head]:
        head += 1
    tail = 0
    while (tail < min(len(original), len(suggestion)) - head
           and original[len(original) - 1 - tail] == suggestion[len(suggestion) - 1 - tail]):
        tail += 1
    return [(position, NO_CORRECTION) for position in dict.fromkeys(positions[head:len(original) - tail])]


def sentence_flagged(findings: Sequence[SentenceFinding], types: Sequence[str] = SENTENCE_TYPES) -> bool:
    return any(finding.type in types for finding in findings)


# --- grading ----------------------------------------------------------------------------------------


@dataclass
class DetectionRow:
    """One sentence: the gold labels, what the model predicted, the findings behind it (offsets in the
    sentence), which packed essay it was graded in and why that essay failed, if it did."""

    key: str
    essay: int
    sentence: str
    gold: dict[str, Any]
    predicted: dict[str, Any]
    findings: list[dict[str, Any]]
    failure: str | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def essay_jobs(essays: Sequence[PackedEssay], rubric_id: str, rubric_version: str | None,
               required_length: int) -> list[EssayJob]:
    return [EssayJob(essay_id=index, text=essay.text, assignment_prompt=PACK_PROMPT, genre=PACK_GENRE,
                     required_length=required_length, rubric_id=rubric_id, rubric_version=rubric_version)
            for index, essay in enumerate(essays)]


def detection_rows(task: Task, sentences: Sequence[LabelledSentence], essays: Sequence[PackedEssay],
                   outcomes: Sequence[EssayOutcome]) -> list[DetectionRow]:
    """A row per sentence, in order, from the packed essays' outcomes (``outcomes[i]`` grades ``essays[i]``)."""
    rows = []
    for index, (essay, outcome) in enumerate(zip(essays, outcomes, strict=True)):
        failure = outcome.error or (None if outcome.prompt_version else "未送模型评阅（按规则直接给分）")
        per_line = attribute_findings(essay, outcome) if failure is None else [[] for _ in essay.lines]
        for offset, findings in enumerate(per_line):
            sentence = sentences[essay.first + offset]
            if task == "spelling":
                predicted: dict[str, Any] = {"edits": [list(edit) for edit in sorted(spelling_edits(findings).items())]}
            else:
                predicted = {"error": sentence_flagged(findings),
                             "types": sorted({f.type for f in findings if f.type in SENTENCE_TYPES})}
            rows.append(DetectionRow(key=sentence.key, essay=index, sentence=sentence.text, gold=sentence.gold(task),
                                     predicted=predicted, findings=[asdict(f) for f in findings], failure=failure))
    return rows


def grade_sentences(engine: Engine, task: Task, sentences: Sequence[LabelledSentence], *, rubric_id: str,
                    rubric_version: str | None, required_length: int, token_budget: int,
                    per_essay: int = DEFAULT_PER_ESSAY, progress: Callable[[int, int], None] | None = None,
                    ) -> list[DetectionRow]:
    """Pack ``sentences`` into essays, grade them in the production batches and map the findings back."""
    from services.worker.evaluation.runner import _in_batches
    from services.worker.pipeline import grade_jobs

    essays = pack_sentences([s.text for s in sentences], per_essay)
    jobs = essay_jobs(essays, rubric_id, rubric_version, required_length)
    done = 0

    def tick(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done, len(jobs))

    outcomes = _in_batches(grade_jobs, engine, jobs, token_budget, tick)
    return detection_rows(task, sentences, essays, [outcomes[i] for i in range(len(jobs))])
