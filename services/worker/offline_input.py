"""Read essays for offline grading: a .txt file, a folder of .txt files, or JSON lines."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class OfflineEssay:
    source: str
    text: str


def read_essays(path: Path) -> list[OfflineEssay]:
    """JSON lines may hold {"text": ...} (optionally "title") or the essays-acea shape {"title", "para"}."""
    if path.is_dir():
        files = sorted(path.glob("*.txt"))
        if not files:
            raise ValueError(f"{path}: 文件夹里没有 .txt 作文")
        return [OfflineEssay(f.name, _read_text(f)) for f in files]
    if path.suffix.lower() == ".txt":
        return [OfflineEssay(path.name, _read_text(path))]
    if path.suffix.lower() in {".jsonl", ".json"}:
        return [_from_json_line(path, number, line) for number, line in _lines(path)]
    raise ValueError(f"{path}: 不支持的文件类型（支持 .txt、.jsonl 或一个装有 .txt 的文件夹）")


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


def _from_json_line(path: Path, number: int, line: str) -> OfflineEssay:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} 第 {number} 行: 不是合法的 JSON ({exc.msg})") from exc
    if not isinstance(record, dict):
        raise ValueError(f"{path} 第 {number} 行: 应为 JSON 对象")
    title = record.get("title") or ""
    if isinstance(record.get("text"), str):
        body = record["text"]
    elif isinstance(record.get("para"), list):
        body = "\n".join("".join(s[0] if isinstance(s, list) else str(s) for s in p) for p in record["para"])
    else:
        raise ValueError(f"{path} 第 {number} 行: 缺少 text（或 title+para）字段")
    if not body.strip():
        raise ValueError(f"{path} 第 {number} 行: 作文为空")
    source = str(record.get("id", f"{path.name}:{number}"))
    return OfflineEssay(source, f"{title}\n{body}" if title else body)
