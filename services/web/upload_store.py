"""Upload previews kept server-side between "preview" and "confirm": one JSON file per upload.

Files live in ``data_dir/uploads/<token>.json`` (mode 0600), belong to the user who uploaded and expire
after two hours; a token is random and is checked against a strict pattern before it touches the disk.
A confirm first claims its preview with ``<token>.confirmed.json`` (created exclusively), which then stays
as the record that the upload was imported: a second click on 确认导入 finds it and imports nothing.
A write that fails (a full disk) leaves no file behind.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from services.web.ingest import EssayPreview, PreviewItem

logger = logging.getLogger(__name__)

TTL_SECONDS = 2 * 60 * 60
# A claim this old whose preview is still there belongs to a confirm that died (a confirm takes seconds).
STALE_CLAIM_SECONDS = 5 * 60
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,64}$")


@dataclass
class StoredPreview:
    token: str
    user_id: int
    assignment_id: int
    filenames: list[str]
    created_at: float
    items: list[PreviewItem]
    problems: list[str]
    missing: list[str]
    ok: bool

    @property
    def expired(self) -> bool:
        return time.time() > self.created_at + TTL_SECONDS


def _directory(data_dir: Path) -> Path:
    return data_dir / "uploads"


def _path(data_dir: Path, token: str) -> Path | None:
    return _directory(data_dir) / f"{token}.json" if _TOKEN.match(token) else None


def _claim_path(data_dir: Path, token: str) -> Path | None:
    return _directory(data_dir) / f"{token}.confirmed.json" if _TOKEN.match(token) else None


def _write_all(handle: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(handle, view):]


def _write_temporary(directory: Path, data: bytes) -> Path:
    """A new file in ``directory`` holding ``data``; on any failure (ENOSPC …) nothing is left behind."""
    handle, temp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
    try:
        try:
            _write_all(handle, data)
        finally:
            os.close(handle)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return Path(temp)


def save_preview(
    data_dir: Path, preview: EssayPreview, *, user_id: int, assignment_id: int, filenames: list[str]
) -> StoredPreview:
    """Write the preview and return it with its new token; expired previews are swept at the same time."""
    directory = _directory(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    purge_expired(data_dir)
    stored = StoredPreview(
        token=secrets.token_urlsafe(32), user_id=user_id, assignment_id=assignment_id, filenames=filenames,
        created_at=time.time(),
        items=[replace(item, problems=list(item.problems)) for item in preview.items],
        problems=[str(problem) for problem in preview.problems],
        missing=[f"{m.name}（{m.student_number}）" if m.student_number else m.name for m in preview.missing],
        ok=preview.ok,
    )
    temp = _write_temporary(directory, json.dumps(asdict(stored), ensure_ascii=False).encode("utf-8"))
    try:
        os.replace(temp, directory / f"{stored.token}.json")
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return stored


def load_preview(data_dir: Path, token: str, *, user_id: int) -> StoredPreview | None:
    """The preview behind ``token`` if it exists, has not expired and belongs to ``user_id``."""
    path = _path(data_dir, token)
    if path is None or not path.is_file():
        return None
    try:
        raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        stored = StoredPreview(**{**raw, "items": [PreviewItem(**item) for item in raw["items"]]})
    except (OSError, ValueError, TypeError, KeyError):
        logger.warning("unreadable upload preview %s", path)
        return None
    if stored.user_id != user_id:
        return None
    if stored.expired:
        discard_preview(data_dir, token)
        return None
    return stored


def discard_preview(data_dir: Path, token: str) -> None:
    path = _path(data_dir, token)
    if path is not None:
        path.unlink(missing_ok=True)


def claim_confirmation(data_dir: Path, stored: StoredPreview) -> bool:
    """Claim the preview for one confirm; False when another confirm of it has claimed it (a double click).

    A claim older than ``STALE_CLAIM_SECONDS`` while the preview is still there is taken over: the confirm
    that made it died before finishing (the database's unique (assignment, student) still guards the rows).
    """
    path = _claim_path(data_dir, stored.token)
    if path is None:
        return False
    record = json.dumps({"user_id": stored.user_id, "assignment_id": stored.assignment_id}).encode("utf-8")
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # exactly one confirm creates it
    except FileExistsError:
        try:
            stale = path.stat().st_mtime < time.time() - STALE_CLAIM_SECONDS
        except FileNotFoundError:  # released meanwhile
            stale = True
        if not stale:
            return False
        logger.warning("taking over a stale confirm of upload preview %s", stored.token[:8])
        os.replace(_write_temporary(_directory(data_dir), record), path)
        return True
    try:
        try:
            _write_all(handle, record)
        finally:
            os.close(handle)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return True


def release_confirmation(data_dir: Path, token: str) -> None:
    """Give up a claim (the import was refused or failed), so the preview can be confirmed again."""
    path = _claim_path(data_dir, token)
    if path is not None:
        path.unlink(missing_ok=True)


def confirmed_assignment(data_dir: Path, token: str, *, user_id: int) -> int | None:
    """The assignment a confirm of ``token`` by ``user_id`` has claimed or finished, if any."""
    path = _claim_path(data_dir, token)
    if path is None:
        return None
    try:
        raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        owner, assignment_id = raw["user_id"], raw["assignment_id"]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return int(assignment_id) if owner == user_id and isinstance(assignment_id, int) else None


def purge_expired(data_dir: Path) -> int:
    removed = 0
    cutoff = time.time() - TTL_SECONDS
    for path in _directory(data_dir).glob("*.json"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
        except OSError:
            continue
    return removed


def discard_previews_about(data_dir: Path, *, assignment_ids: Iterable[int], student_ids: Iterable[int]) -> int:
    """Delete pending previews for these assignments or listing these students (used when erasing them).

    A preview names every roster member who has no essay yet, so any preview of the class's assignments
    may mention an erased student; an unreadable file is deleted too rather than kept unexamined.
    """
    assignments, students = set(assignment_ids), set(student_ids)
    removed = 0
    for path in _directory(data_dir).glob("*.json"):
        try:
            raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            mentions = raw.get("assignment_id") in assignments or any(
                item.get("student_id") in students for item in raw.get("items", [])
            )
        except (OSError, ValueError, AttributeError, TypeError):
            mentions = True
        if mentions:
            path.unlink(missing_ok=True)
            removed += 1
    return removed
