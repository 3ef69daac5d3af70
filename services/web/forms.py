"""Validation of the class and assignment forms, shared by the pages and the JSON API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from services.web.access import assignable_teachers
from services.web.numbers import MAX_ID, ascii_int
from services.web.rubric_store import RubricChoice, find_choice
from shared.models import User

GENRES = ("议论文", "记叙文", "散文", "应用文", "文体不限")
MIN_LENGTH, MAX_LENGTH = 100, 3000


@dataclass(frozen=True)
class ClassInput:
    name: str
    teacher: User


@dataclass(frozen=True)
class AssignmentInput:
    title: str
    prompt_text: str
    genre: str
    rubric: RubricChoice
    required_length: int


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    return value.strip() if isinstance(value, str) else ""


def _int(value: Any) -> int | None:
    return ascii_int(value, minimum=-MAX_ID)


def validate_class(session: Session, user: User, data: Mapping[str, Any]) -> tuple[ClassInput | None, list[str]]:
    errors: list[str] = []
    name = _text(data, "name")
    if not name:
        errors.append("请填写班级名称。")
    elif len(name) > 100:
        errors.append("班级名称不能超过 100 个字。")
    teachers = {teacher.id: teacher for teacher in session.scalars(assignable_teachers(user))}
    raw_teacher = data.get("teacher_id")
    teacher_id = _int(raw_teacher) if raw_teacher not in (None, "") else user.id
    teacher = teachers.get(teacher_id) if teacher_id is not None else None
    if teacher is None:
        errors.append("所选教师不存在，或不属于您的学校。")
    elif teacher.school_id is None:
        errors.append("所选账户不属于任何学校，不能担任班级教师。")
    if errors or teacher is None:
        return None, errors
    return ClassInput(name=name, teacher=teacher), []


def validate_assignment(
    data: Mapping[str, Any], choices: list[RubricChoice]
) -> tuple[AssignmentInput | None, list[str]]:
    errors: list[str] = []
    title = _text(data, "title")
    prompt_text = _text(data, "prompt_text")
    genre = _text(data, "genre") or GENRES[0]
    if not title:
        errors.append("请填写作业名称。")
    elif len(title) > 200:
        errors.append("作业名称不能超过 200 个字。")
    if not prompt_text:
        errors.append("请填写作文题目（题干）。")
    elif len(prompt_text) > 5000:
        errors.append("作文题目不能超过 5000 个字。")
    if len(genre) > 40:
        errors.append("文体不能超过 40 个字。")
    rubric = find_choice(choices, _text(data, "rubric"))
    if rubric is None:
        errors.append("请选择评分标准。")
    raw_length = data.get("required_length")
    length = _int(raw_length) if raw_length not in (None, "") else (rubric.required_length if rubric else None)
    if length is None or not MIN_LENGTH <= length <= MAX_LENGTH:
        errors.append(f"字数要求必须是 {MIN_LENGTH} 到 {MAX_LENGTH} 之间的整数。")
    if errors or rubric is None or length is None:
        return None, errors
    return AssignmentInput(title, prompt_text, genre, rubric, length), []
