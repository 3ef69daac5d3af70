"""Where files live under the data directory, and removing stored files without leaving it.

``data_dir/uploads`` holds upload previews (``shared.upload_previews``), ``data_dir/reports`` the workbooks the
reports worker writes, ``data_dir/rubrics/<school_id>`` a school's own rubric files. Paths kept in the database
(``ReportJob.file_path``) are resolved with ``stored_path``, which refuses anything outside the data directory,
so a bad row can never make an erasure or a purge delete some other file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

logger = logging.getLogger(__name__)

UPLOADS = "uploads"
REPORTS = "reports"
RUBRICS = "rubrics"
EVALUATIONS = "evaluations"


class OutsideDataDir(ValueError):
    """A stored path that points outside the data directory."""


def uploads_dir(data_dir: Path) -> Path:
    return data_dir / UPLOADS


def reports_dir(data_dir: Path) -> Path:
    return data_dir / REPORTS


def evaluations_dir(data_dir: Path) -> Path:
    return data_dir / EVALUATIONS


def rubrics_dir(data_dir: Path) -> Path:
    return data_dir / RUBRICS


def school_rubric_dir(data_dir: Path, school_id: int) -> Path:
    return rubrics_dir(data_dir) / str(school_id)


def _roots(data_dir: Path) -> list[Path]:
    # The areas are resolved one by one too: one may be a link to another disk (reports on a bigger volume).
    return [data_dir.resolve(), *((data_dir / area).resolve() for area in (UPLOADS, REPORTS, RUBRICS, EVALUATIONS))]


def stored_path(data_dir: Path, stored: str | Path) -> Path:
    """The file a stored path names (a relative one is relative to ``data_dir``), resolved; raises
    ``OutsideDataDir`` when it lies outside the data directory (``..`` and links included)."""
    path = Path(stored)
    resolved = (path if path.is_absolute() else data_dir / path).resolve()
    if not any(resolved.is_relative_to(root) for root in _roots(data_dir)):
        raise OutsideDataDir(f"{stored} is outside the data directory {data_dir}")
    return resolved


def remove_stored_files(data_dir: Path, paths: Iterable[str]) -> int:
    """Delete stored files under ``data_dir``; returns how many were there. A path outside it is logged, kept."""
    removed = 0
    for stored in paths:
        try:
            path = stored_path(data_dir, stored)
            if path.is_file():
                path.unlink()
                removed += 1
        except OutsideDataDir:
            logger.warning("not deleting %s: it is outside the data directory", stored)
        except OSError:
            logger.exception("could not delete stored file %s", stored)
    return removed
