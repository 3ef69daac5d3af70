"""Vet .docx/.xlsx packages (zips of XML parts) before any reader touches them."""

from __future__ import annotations

from collections.abc import Callable, Collection

from services.web.ingest.archive import open_archive
from services.web.ingest.limits import ReadBudget, UploadLimits
from services.web.ingest.xmlguard import assert_safe_xml, should_check

MAX_OFFICE_PARTS = 2000  # a long document with many images has a few hundred parts


def read_office_parts(
    data: bytes,
    where: str,
    limits: UploadLimits,
    budget: ReadBudget,
    *,
    keep: Collection[str] | Callable[[str], bool],
) -> dict[str, bytes]:
    """Open ``data`` as an untrusted zip, read every part under the budget, refuse entity declarations, and
    return the parts named by ``keep`` (a set of names or a predicate); the others are dropped once checked.
    """
    wanted = keep if callable(keep) else keep.__contains__
    kept: dict[str, bytes] = {}
    with open_archive(data, where, limits, budget, max_entries=MAX_OFFICE_PARTS) as archive:
        for entry in archive.entries:
            content = archive.read(entry)
            if should_check(entry.name, content):
                assert_safe_xml(entry.name, content, f"{where} 内部的 {entry.name}")
            if wanted(entry.name):
                kept[entry.name] = content
    return kept


def check_office_package(data: bytes, where: str, limits: UploadLimits, budget: ReadBudget) -> None:
    """Vet the package without keeping any part."""
    read_office_parts(data, where, limits, budget, keep=())
