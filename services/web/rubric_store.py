"""Which rubrics an assignment may use: the shipped ones plus a school's own YAML files under data_dir/rubrics.

A school's rubric is stored as ``data_dir/rubrics/<school_id>/<id>@<version>.yaml`` and an assignment that
uses it keeps that file's path in ``Assignment.rubric_id`` (the worker loads paths and ids alike).
Files are never overwritten: grades refer to a rubric version.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from shared.models import Assignment
from shared.prompts.rubric import Rubric, RubricError, list_rubrics, load_rubric_file, resolve_rubric
from shared.storage import school_rubric_dir

logger = logging.getLogger(__name__)

MAX_RUBRIC_BYTES = 256 * 1024


@dataclass(frozen=True)
class RubricChoice:
    """One option of the rubric picker: ``key`` is what a form sends, the rest is what an assignment stores."""

    key: str
    label: str
    rubric_id: str
    rubric_version: str
    required_length: int
    own: bool


def _shipped_choices() -> list[RubricChoice]:
    choices = []
    for info in list_rubrics():
        rubric = load_rubric_file(info.path)
        choices.append(
            RubricChoice(
                key=f"{info.id}@{info.version}", label=f"{info.name}（{info.id} {info.version}）",
                rubric_id=info.id, rubric_version=info.version, required_length=rubric.required_length, own=False,
            )
        )
    return choices


def school_rubric_choices(data_dir: Path, school_id: int) -> list[RubricChoice]:
    """The school's own rubric files; an unreadable file is logged and left out rather than breaking the page."""
    directory = school_rubric_dir(data_dir, school_id)
    if not directory.is_dir():
        return []
    choices = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            rubric = load_rubric_file(path)
        except RubricError as exc:
            logger.warning("school rubric %s is invalid: %s", path, exc)
            continue
        choices.append(
            RubricChoice(
                key=f"school:{path.stem}", label=f"本校：{rubric.name}（{rubric.id} {rubric.version}）",
                rubric_id=str(path.resolve()), rubric_version=rubric.version,
                required_length=rubric.required_length, own=True,
            )
        )
    return choices


def rubric_choices(data_dir: Path, school_id: int | None) -> list[RubricChoice]:
    shipped = _shipped_choices()
    return shipped + (school_rubric_choices(data_dir, school_id) if school_id is not None else [])


def find_choice(choices: list[RubricChoice], key: str) -> RubricChoice | None:
    return next((choice for choice in choices if choice.key == key), None)


def save_school_rubric(data_dir: Path, school_id: int, filename: str, data: bytes) -> Rubric:
    """Validate an uploaded rubric and store it; RubricError (in Chinese, naming the upload) when it is not valid."""
    if len(data) > MAX_RUBRIC_BYTES:
        raise RubricError(f"评分标准文件 {filename} 太大（上限 {MAX_RUBRIC_BYTES // 1024} KB）")
    if not filename.lower().endswith((".yaml", ".yml")):
        raise RubricError(f"评分标准文件 {filename} 必须是 .yaml 或 .yml 文件")
    directory = school_rubric_dir(data_dir, school_id)
    directory.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(suffix=".yaml", dir=directory, prefix=".upload-")
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        try:
            rubric = load_rubric_file(temp)
        except RubricError as exc:
            raise RubricError(str(exc).replace(str(temp), filename)) from exc
        target = directory / f"{rubric.id}@{rubric.version}.yaml"
        if target.exists():
            raise RubricError(
                f"本校已有评分标准 {rubric.id} 的 {rubric.version} 版本；已有作业在使用它，不能覆盖。"
                "请修改文件中的 version 后重新上传。"
            )
        temp.replace(target)
        logger.info("stored school %s rubric %s at %s", school_id, rubric.ref, target)
        return rubric
    finally:
        temp.unlink(missing_ok=True)


def assignment_rubric(assignment: Assignment) -> Rubric:
    """The rubric an assignment is graded with (RubricError when it cannot be loaded any more)."""
    return resolve_rubric(assignment.rubric_id, assignment.rubric_version)
