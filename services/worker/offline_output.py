"""The results file of offline grading: JSON lines, appended a batch at a time and durable when the batch ends,
so a stopped run loses at most the batch it was grading, and the same command resumes where it stopped."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

logger = logging.getLogger(__name__)


class ResultsFileError(ValueError):
    """The results file holds a broken line that is not the last one: not ours to repair silently."""


def recorded_results(path: Path, *, drop_failed: bool = False) -> dict[str, dict[str, Any]]:
    """The records already in ``path`` by ``source``; the file is left holding exactly those lines.

    A last line cut short (a run stopped while writing it) is removed; a broken line before the last is an
    error naming it. With ``drop_failed`` the records of essays that failed are removed so they are graded again.
    """
    if not path.exists():
        return {}
    data = path.read_bytes()
    lines = data.split(b"\n")
    records: dict[str, dict[str, Any]] = {}
    kept: list[bytes] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        last = number == len(lines) or not any(rest.strip() for rest in lines[number:])
        record = _record(line)
        if record is None:
            if last:
                logger.warning("%s: dropping a partly written last line (%d bytes)", path, len(line))
                break
            raise ResultsFileError(f"{path} 第 {number} 行不是完整的结果记录；请检查该文件，或用 --overwrite 重新评阅")
        if drop_failed and record.get("error") is not None:
            continue
        records[str(record["source"])] = record
        kept.append(line)
    rewritten = b"".join(line + b"\n" for line in kept)
    if rewritten != data:
        _replace(path, rewritten)
    return records


def _record(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) and "source" in record else None


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` to a sibling file and rename it over ``path``: a crash leaves the old file or the new one."""
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def append_batch(out: IO[str], records: Iterable[dict[str, Any]]) -> None:
    """Append one batch's records as JSON lines and make them durable before the next batch starts."""
    out.write("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records))
    out.flush()
    os.fsync(out.fileno())
