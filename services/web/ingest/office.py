"""Vet .docx/.xlsx packages (zips of XML parts) before any reader touches them."""

from __future__ import annotations

from collections.abc import Callable, Collection

from services.web.ingest.archive import open_archive
from services.web.ingest.errors import UploadRejected
from services.web.ingest.limits import ReadBudget, UploadLimits, format_size
from services.web.ingest.xmlguard import assert_safe_xml, scan_xml_chunks, should_check

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
    return the parts named by ``keep`` (a set of names or a predicate). The other parts (images, custom XML)
    are checked as they stream past and never held whole.
    """
    wanted = keep if callable(keep) else keep.__contains__
    kept: dict[str, bytes] = {}
    kept_bytes = 0
    with open_archive(data, where, limits, budget, max_entries=MAX_OFFICE_PARTS) as archive:
        for entry in archive.entries:
            part_where = f"{where} 内部的 {entry.name}"
            if not wanted(entry.name):
                scan_xml_chunks(entry.name, archive.iter_chunks(entry), part_where)  # never held whole
                continue
            # the parts a reader parses are held in memory: an essay's document.xml or a class's sheet is a few MB
            kept_bytes += entry.info.file_size
            if entry.info.file_size > limits.max_xml_part_bytes or kept_bytes > 2 * limits.max_xml_part_bytes:
                raise UploadRejected(
                    f"{part_where}：解压后 {format_size(entry.info.file_size)}，超过文档内容 "
                    f"{format_size(limits.max_xml_part_bytes)} 的上限，已拒绝处理"
                )
            content = archive.read(entry)
            if should_check(entry.name, content):
                assert_safe_xml(entry.name, content, part_where)
            kept[entry.name] = content
    return kept


def check_office_package(data: bytes, where: str, limits: UploadLimits, budget: ReadBudget) -> None:
    """Vet the package without keeping any part."""
    read_office_parts(data, where, limits, budget, keep=())
