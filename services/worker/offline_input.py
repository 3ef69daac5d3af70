"""Read essays for offline grading: a .txt file, a folder of .txt files, JSON lines, or a .csv/.xlsx table.

JSON lines and tables share one set of fields (a table's header row names them; unknown ones are an error):

=================  ==========================================================================================
``id``             the essay's key: unique; the output's ``source``; what a resumed run skips by (default: the
                   file name and line/row number)
``student``        passed through to the output
``title``          the title, when it is not the text's first line
``text``           the essay (JSON lines may give the essays-acea ``para`` instead)
``prompt``         this essay's assignment prompt (题干); default ``--assignment-prompt``
``genre``          文体 (default ``--genre``)
``required_length``  required characters, a positive integer (default ``--required-length``)
``label_<key>``    a teacher's score for a rubric dimension (``label_content``) or the total (``label_total``);
                   JSON lines may give them as one object ``labels: {"content": 16, "total": 48}``
=================  ==========================================================================================

Every error names the file and the line or row it is about.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FIELDS = ("id", "student", "title", "text", "prompt", "genre", "required_length")
LABEL_PREFIX = "label_"
_JSON_ONLY = ("para", "labels")


@dataclass(frozen=True)
class OfflineEssay:
    """One essay to grade offline; ``None`` fields fall back to the command's options."""

    source: str
    text: str
    where: str = ""
    student: str | None = None
    prompt: str | None = None
    genre: str | None = None
    required_length: int | None = None
    labels: dict[str, float] = field(default_factory=dict)


def read_essays(path: Path, label_maxima: Mapping[str, float] | None = None) -> list[OfflineEssay]:
    """Read every essay of ``path``; ``label_maxima`` (label key → highest score) checks labels when given."""
    if path.is_dir():
        files = sorted(path.glob("*.txt"))
        if not files:
            raise ValueError(f"{path}: 文件夹里没有 .txt 作文")
        return [OfflineEssay(f.name, _read_text(f), f.name) for f in files]
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return [OfflineEssay(path.name, _read_text(path), path.name)]
    if suffix in {".jsonl", ".json"}:
        rows: Iterable[tuple[str, str, dict[str, Any]]] = (
            (f"{path.name}:{number}", f"{path} 第 {number} 行", _json_record(path, number, line))
            for number, line in _lines(path)
        )
    elif suffix == ".csv":
        rows = _table_rows(path, _csv_rows(path))
    elif suffix == ".xlsx":
        rows = _table_rows(path, _xlsx_rows(path))
    else:
        raise ValueError(f"{path}: 不支持的文件类型（支持 .txt、.jsonl、.csv、.xlsx 或一个装有 .txt 的文件夹）")
    essays: list[OfflineEssay] = []
    seen: dict[str, str] = {}
    for default_id, where, record in rows:
        essay = _essay(default_id, where, record, label_maxima)
        if essay.source in seen:
            raise ValueError(f"{where}: id “{essay.source}”与{seen[essay.source]}重复（续评按 id 跳过已评的作文）")
        seen[essay.source] = where
        essays.append(essay)
    if not essays:
        raise ValueError(f"{path}: 没有作文")
    return essays


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValueError(f"{path}: 无法识别的文本编码（请保存为 UTF-8）")


def _lines(path: Path) -> list[tuple[int, str]]:
    return [(n, line) for n, line in enumerate(_read_text(path).splitlines(), start=1) if line.strip()]


def _json_record(path: Path, number: int, line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} 第 {number} 行: 不是合法的 JSON ({exc.msg})") from exc
    if not isinstance(record, dict):
        raise ValueError(f"{path} 第 {number} 行: 应为 JSON 对象")
    return record


def _csv_rows(path: Path) -> list[list[Any]]:
    return list(csv.reader(io.StringIO(_read_text(path), newline="")))


def _xlsx_rows(path: Path) -> list[list[Any]]:
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        return [list(row) for row in workbook.worksheets[0].iter_rows(values_only=True)]
    finally:
        workbook.close()


def _table_rows(path: Path, rows: list[list[Any]]) -> Iterable[tuple[str, str, dict[str, Any]]]:
    """(default id, where, record) per non-empty data row; the header row names the fields."""
    if not rows:
        raise ValueError(f"{path}: 表格是空的（第 1 行应为列名：{', '.join(FIELDS)}, label_…）")
    header = [str(cell or "").strip() for cell in rows[0]]
    unknown = [name for name in header if name and name not in FIELDS and not name.startswith(LABEL_PREFIX)]
    if unknown or "text" not in header:
        raise ValueError(
            f"{path} 第 1 行（列名）: " + (f"未知的列 {', '.join(unknown)}；" if unknown else "缺少 text 列；")
            + f"可用的列：{', '.join(FIELDS)}, label_<维度>, label_total"
        )
    for number, row in enumerate(rows[1:], start=2):
        record = {
            name: cell.strip() if isinstance(cell, str) else cell
            for name, cell in zip(header, row, strict=False)
            if name and cell is not None and cell != ""
        }
        if record:
            yield f"{path.name}:{number}", f"{path} 第 {number} 行", record


def _essay(
    default_id: str, where: str, record: dict[str, Any], label_maxima: Mapping[str, float] | None
) -> OfflineEssay:
    unknown = [key for key in record if key not in (*FIELDS, *_JSON_ONLY) and not key.startswith(LABEL_PREFIX)]
    if unknown:
        raise ValueError(f"{where}: 未知字段 {', '.join(unknown)}（可用：{', '.join(FIELDS)}, para, labels, label_…）")
    title = _optional_str(where, record, "title") or ""
    if isinstance(record.get("text"), str):
        body = record["text"]
    elif isinstance(record.get("para"), list):
        body = "\n".join("".join(s[0] if isinstance(s, list) else str(s) for s in p) for p in record["para"])
    else:
        raise ValueError(f"{where}: 缺少 text（或 title+para）字段")
    if not body.strip():
        raise ValueError(f"{where}: 作文为空")
    required = record.get("required_length")
    if required is not None:
        required = _number(where, "required_length", required)
        if required != int(required) or required <= 0:
            raise ValueError(f"{where}: required_length 应为正整数，而不是 {record['required_length']!r}")
    source = record.get("id")
    return OfflineEssay(
        source=str(source).strip() if source not in (None, "") else default_id,
        text=f"{title}\n{body}" if title else body,
        where=where,
        student=_optional_str(where, record, "student"),
        prompt=_optional_str(where, record, "prompt"),
        genre=_optional_str(where, record, "genre"),
        required_length=int(required) if required is not None else None,
        labels=_labels(where, record, label_maxima),
    )


def _optional_str(where: str, record: dict[str, Any], key: str) -> str | None:
    value = record.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool | dict | list):
        raise ValueError(f"{where}: {key} 应为文字")
    return str(value).strip() or None


def _number(where: str, key: str, value: Any) -> float:
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise ValueError(f"{where}: {key} 应为数字，而不是 {value!r}")
    return number


def _labels(where: str, record: dict[str, Any], label_maxima: Mapping[str, float] | None) -> dict[str, float]:
    given = record.get("labels", {})
    if not isinstance(given, dict):
        raise ValueError(f"{where}: labels 应为对象，例如 {{\"content\": 16, \"total\": 48}}")
    raw = {**given, **{key.removeprefix(LABEL_PREFIX): value for key, value in record.items()
                       if key.startswith(LABEL_PREFIX)}}
    labels: dict[str, float] = {}
    for key, value in raw.items():
        if value is None or value == "":
            continue
        number = _number(where, f"{LABEL_PREFIX}{key}", value)
        if label_maxima is not None:
            if key not in label_maxima:
                raise ValueError(
                    f"{where}: 没有叫 {key} 的评分维度（可用：{', '.join(LABEL_PREFIX + k for k in label_maxima)}）"
                )
            if not 0 <= number <= label_maxima[key]:
                raise ValueError(f"{where}: {LABEL_PREFIX}{key} = {value} 不在 0–{label_maxima[key]:g} 之间")
        labels[key] = int(number) if number == int(number) else number
    return labels
