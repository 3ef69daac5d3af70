"""Files under the data directory hold students' essays and names: only the service's own user may read them.

Every process of the service runs with umask 077 (files 0600, directories 0700); the data directory and the
SQLite database are also given those modes explicitly when created, so a file made before the umask was set (or
by an older version) is tightened too.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sqlalchemy.engine import make_url

logger = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def restrict_umask() -> None:
    """Files this process (and its children) creates from now on are private to the service's user."""
    os.umask(PRIVATE_UMASK)


def make_private_dir(path: Path) -> Path:
    """``path`` (and missing parents) as a directory only its owner can enter."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    _tighten(path, PRIVATE_DIR_MODE)
    return path


def private_sqlite_file(url: str) -> None:
    """Create the SQLite database file of ``url`` as 0600 before SQLite opens it (its -wal and -shm files take
    the database file's mode); an existing file is tightened."""
    parsed = make_url(url)
    database = parsed.database
    if not parsed.drivername.startswith("sqlite") or not database or database == ":memory:" or \
            database.startswith("file:"):
        return
    path = Path(database)
    if not path.parent.is_dir():
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE_MODE))
    except OSError as exc:
        logger.warning("cannot create %s: %s", path, exc)
        return
    _tighten(path, PRIVATE_FILE_MODE)


def _tighten(path: Path, mode: int) -> None:
    try:
        if path.stat().st_mode & 0o777 != mode:
            path.chmod(mode)
    except OSError as exc:  # not ours (a mounted volume, another user's file): leave it, say so
        logger.warning("cannot set mode %o on %s: %s", mode, path, exc)
