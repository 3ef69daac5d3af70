"""Turn what was read from an upload into the preview: normalised text, counts, matches, problems."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from services.web.ingest.limits import UploadLimits
from services.web.ingest.matching import Match
from services.web.ingest.records import EssayPreview, PreviewItem, RosterEntry, UploadProblem
from shared.textnorm import CharCountRule, clean_essay_text, count_chars, split_title

CHAR_COUNT_RULE: CharCountRule = "hanzi_alnum_punct"
MAX_TITLE_CHARS = 100


@dataclass(frozen=True)
class Submission:
    """One essay as found in the upload, before normalisation; ``written_name`` is shown if unmatched."""

    source: str
    raw_text: str
    match: Match
    written_name: str
    title: str | None = None  # from a 标题 column; documents carry their title in the text
    removed: tuple[str, ...] = ()  # invisible text dropped from a document, shown to the teacher


def build_preview(
    upload_name: str,
    submissions: Sequence[Submission],
    file_problems: Sequence[UploadProblem],
    roster: Sequence[RosterEntry],
    limits: UploadLimits,
) -> EssayPreview:
    items = [_item(submission, limits) for submission in submissions]
    _flag_duplicates(items)
    problems = list(file_problems)
    problems += [UploadProblem(item.source, message) for item in items for message in item.problems]
    if not items and not problems:
        problems.append(UploadProblem(upload_name, "没有找到任何作文"))
    matched = {item.student_id for item in items}
    missing = [entry for entry in roster if entry.student_id not in matched]
    return EssayPreview(items=items, problems=problems, missing=missing)


def with_title(title: str | None, body: str) -> str:
    """The essay text with a separately given title as its first line, written so that ``split_title``
    finds it again (the grader reads the title from the text)."""
    title = clean_essay_text(title or "").replace("\n", " ")
    if not title:
        return body
    first_line = body.split("\n", 1)[0].strip()
    if first_line.strip("《》") == title.strip("《》") or split_title(body)[0] == title.strip("《》"):
        return body  # the teacher pasted the title into the essay cell as well
    composed = f"{title}\n{body}"
    return composed if split_title(composed)[0] in (title, title.strip("《》")) else f"题目：{title}\n{body}"


def _item(submission: Submission, limits: UploadLimits) -> PreviewItem:
    body = clean_essay_text(submission.raw_text)
    problems: list[str] = []
    if submission.match.problem:
        problems.append(submission.match.problem)
    text = with_title(submission.title, body) if body else ""
    title, essay_body = split_title(text)
    char_count = count_chars(essay_body, CHAR_COUNT_RULE) if text else 0
    if not body.strip():
        problems.append("作文为空")
    elif char_count > limits.max_essay_chars or len(text) > 2 * limits.max_essay_chars:
        problems.append(
            f"作文过长（{char_count} 字，上限 {limits.max_essay_chars} 字），请检查是否把几篇作文放在了一起"
        )
    if title and len(title) > MAX_TITLE_CHARS:
        problems.append(f"标题过长（{len(title)} 字，上限 {MAX_TITLE_CHARS} 字），请检查标题列是否填错")
    student = submission.match.student
    return PreviewItem(
        source=submission.source,
        student_id=student.student_id if student else None,
        student_name=student.name if student else submission.written_name,
        title=title,
        text=text,
        char_count=char_count,
        problems=problems,
        removed=list(submission.removed),
    )


def _flag_duplicates(items: list[PreviewItem]) -> None:
    """Two essays for one student: flag every copy so that none is imported until the teacher picks one."""
    by_student: dict[int, list[PreviewItem]] = defaultdict(list)
    for item in items:
        if item.student_id is not None:
            by_student[item.student_id].append(item)
    for group in by_student.values():
        if len(group) < 2:
            continue
        sources = "、".join(item.source for item in group)
        for item in group:
            item.problems.append(f"学生“{item.student_name}”有 {len(group)} 份作文（{sources}），请只保留一份")
