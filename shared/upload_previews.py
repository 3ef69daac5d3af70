"""Upload previews on disk, kept between "preview" and "confirm": one JSON file per upload in ``data_dir/uploads``.

A preview (``<token>.json``, mode 0600) holds the parsed essays — students' names and texts — for
``PREVIEW_TTL_S``; after that it can no longer be confirmed and is deleted by the next upload or by the nightly
retention purge, whichever comes first. A confirm first claims its preview with ``<token>.confirmed.json``
(created exclusively; user and assignment ids only), which then stays as the record that the upload was
imported until it expires the same way. A token is random and is checked against a strict pattern before it
touches the disk; a write that fails (a full disk) leaves no file behind. The web turns the records into its
typed previews (``services.web.upload_store``); this module only knows the file format.
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
from pathlib import Path
from typing import Any

from shared.storage import uploads_dir

logger = logging.getLogger(__name__)

PREVIEW_TTL_S = 2 * 60 * 60
# A claim this old whose preview is still there belongs to a confirm that died (a confirm takes seconds).
STALE_CLAIM_S = 5 * 60
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,64}$")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def expired(created_at: float, now: float | None = None) -> bool:
    """Whether a preview made at ``created_at`` (epoch seconds) is past its time."""
    return (time.time() if now is None else now) > created_at + PREVIEW_TTL_S


def _path(data_dir: Path, token: str) -> Path | None:
    return uploads_dir(data_dir) / f"{token}.json" if _TOKEN.match(token) else None


def _claim_path(data_dir: Path, token: str) -> Path | None:
    return uploads_dir(data_dir) / f"{token}.confirmed.json" if _TOKEN.match(token) else None


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


def write_preview(data_dir: Path, token: str, record: dict[str, Any]) -> None:
    """Store a preview record under ``token`` (all or nothing); expired previews are swept at the same time."""
    path = _path(data_dir, token)
    if path is None:
        raise ValueError("not a preview token")
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_previews(data_dir)
    temp = _write_temporary(path.parent, json.dumps(record, ensure_ascii=False).encode("utf-8"))
    try:
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _read(path: Path | None) -> dict[str, Any] | None:
    if path is None or not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        logger.warning("unreadable upload preview file %s", path.name)
        return None
    return raw if isinstance(raw, dict) else None


def read_preview(data_dir: Path, token: str) -> dict[str, Any] | None:
    """The record stored under ``token``, if there is a readable one (expired or not: the caller decides)."""
    return _read(_path(data_dir, token))


def discard_preview(data_dir: Path, token: str) -> None:
    path = _path(data_dir, token)
    if path is not None:
        path.unlink(missing_ok=True)


def claim_preview(data_dir: Path, token: str, *, user_id: int, assignment_id: int) -> bool:
    """Claim the preview for one confirm; False when another confirm of it has claimed it (a double click).

    A claim older than ``STALE_CLAIM_S`` while the preview is still there is taken over: the confirm that made
    it died before finishing (the database's unique (assignment, student) still guards the rows).
    """
    path = _claim_path(data_dir, token)
    if path is None:
        return False
    record = json.dumps({"user_id": user_id, "assignment_id": assignment_id}).encode("utf-8")
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # exactly one confirm creates it
    except FileExistsError:
        try:
            stale = path.stat().st_mtime < time.time() - STALE_CLAIM_S
        except FileNotFoundError:  # released meanwhile
            stale = True
        if not stale:
            return False
        logger.warning("taking over a stale confirm of upload preview %s", token[:8])
        os.replace(_write_temporary(path.parent, record), path)
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
    raw = _read(_claim_path(data_dir, token))
    if raw is None:
        return None
    assignment_id = raw.get("assignment_id")
    return assignment_id if raw.get("user_id") == user_id and isinstance(assignment_id, int) else None


def sweep_previews(data_dir: Path, *, now: float | None = None) -> int:
    """Delete previews, claims and half-written files older than ``PREVIEW_TTL_S``; returns how many.

    Run at every upload and by the nightly retention purge: a preview past its time can no longer be confirmed,
    so its essays and names have no reason to stay on disk.
    """
    cutoff = (time.time() if now is None else now) - PREVIEW_TTL_S
    removed = 0
    for path in uploads_dir(data_dir).glob("*.json"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
        except OSError:
            continue
    return removed


def discard_previews_about(data_dir: Path, *, assignment_ids: Iterable[int], student_ids: Iterable[int]) -> int:
    """Delete previews (and claims) for these assignments or with an essay of these students (an erasure).

    A preview names every roster member who has no essay yet, so any preview of the class's assignments may
    mention an erased student; an unreadable file is deleted too rather than kept unexamined.
    """
    assignments, students = set(assignment_ids), set(student_ids)
    removed = 0
    for path in uploads_dir(data_dir).glob("*.json"):
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
