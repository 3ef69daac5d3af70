"""Vet .docx/.xlsx packages (zips of XML parts) before python-docx or openpyxl touches them."""

from __future__ import annotations

from services.web.ingest.archive import open_archive
from services.web.ingest.limits import ReadBudget, UploadLimits
from services.web.ingest.xmlguard import assert_safe_xml, should_check

MAX_OFFICE_PARTS = 2000  # a long document with many images has a few hundred parts


def check_office_package(data: bytes, where: str, limits: UploadLimits, budget: ReadBudget) -> None:
    """Open ``data`` as an untrusted zip, read every part under the budget, and refuse entity declarations.

    After this the library may read the same bytes: every part's real size is known to fit the limits.
    """
    with open_archive(data, where, limits, budget, max_entries=MAX_OFFICE_PARTS) as archive:
        for entry in archive.entries:
            content = archive.read(entry)
            if should_check(entry.name, content):
                assert_safe_xml(entry.name, content, f"{where} 内部的 {entry.name}")
