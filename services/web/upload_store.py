"""The web's typed upload previews: what an upload parsed into, kept server-side until it is confirmed.

The files themselves (where they live, tokens, expiry, the confirm claim, sweeping) are ``shared.upload_previews``,
so the nightly purge and erasure remove them without the web; here a stored record becomes a ``StoredPreview``
of the ingest's ``PreviewItem``s again, and only for the user who uploaded it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from services.web.ingest import EssayPreview, PreviewItem
from shared.upload_previews import (
    claim_preview,
    confirmed_assignment,
    discard_preview,
    expired,
    new_token,
    read_preview,
    release_confirmation,
    write_preview,
)

logger = logging.getLogger(__name__)

__all__ = [
    "StoredPreview", "claim_confirmation", "confirmed_assignment", "discard_preview", "load_preview",
    "release_confirmation", "save_preview",
]


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
        return expired(self.created_at)


def save_preview(
    data_dir: Path, preview: EssayPreview, *, user_id: int, assignment_id: int, filenames: list[str]
) -> StoredPreview:
    """Write the preview and return it with its new token (OSError when it cannot be stored, nothing left)."""
    stored = StoredPreview(
        token=new_token(), user_id=user_id, assignment_id=assignment_id, filenames=filenames,
        created_at=time.time(),
        items=[replace(item, problems=list(item.problems)) for item in preview.items],
        problems=[str(problem) for problem in preview.problems],
        missing=[f"{m.name}（{m.student_number}）" if m.student_number else m.name for m in preview.missing],
        ok=preview.ok,
    )
    write_preview(data_dir, stored.token, asdict(stored))
    return stored


def load_preview(data_dir: Path, token: str, *, user_id: int) -> StoredPreview | None:
    """The preview behind ``token`` if it exists, has not expired and belongs to ``user_id``."""
    raw = read_preview(data_dir, token)
    if raw is None:
        return None
    try:
        stored = StoredPreview(**{**raw, "items": [PreviewItem(**item) for item in raw["items"]]})
    except (ValueError, TypeError, KeyError):
        logger.warning("unreadable upload preview %s", token[:8])
        return None
    if stored.user_id != user_id:
        return None
    if stored.expired:
        discard_preview(data_dir, token)
        return None
    return stored


def claim_confirmation(data_dir: Path, stored: StoredPreview) -> bool:
    """Claim the preview for one confirm; False when another confirm of it holds it (see ``claim_preview``)."""
    return claim_preview(data_dir, stored.token, user_id=stored.user_id, assignment_id=stored.assignment_id)
