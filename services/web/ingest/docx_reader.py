"""Extract the plain text of a .docx essay: body paragraphs and table cells in reading order."""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Iterator

import docx
from docx.blkcntnr import BlockItemContainer
from docx.document import Document
from docx.text.paragraph import Paragraph

from services.web.ingest.errors import UnreadableFile
from services.web.ingest.limits import ReadBudget, UploadLimits
from services.web.ingest.office import check_office_package

logger = logging.getLogger(__name__)


def read_docx_text(data: bytes, where: str, limits: UploadLimits, budget: ReadBudget) -> str:
    """The text of a .docx, one line per paragraph; the package is vetted before python-docx opens it."""
    check_office_package(data, where, limits, budget)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            document = docx.Document(io.BytesIO(data))
            return "\n".join(_lines(document))
    except Exception as exc:  # python-docx raises many kinds of errors on malformed packages
        logger.info("python-docx cannot read %s: %r", where, exc)
        raise UnreadableFile(
            where, "无法读取 Word 文档的内容，文件可能已损坏，请用 Word 重新保存为 .docx 后上传"
        ) from exc


def _lines(container: Document | BlockItemContainer) -> Iterator[str]:
    for block in container.iter_inner_content():
        if isinstance(block, Paragraph):
            yield block.text
            continue
        seen: set[object] = set()  # holding the elements keeps lxml's proxies (and their hashes) stable
        for row in block.rows:
            for cell in row.cells:
                if cell._tc in seen:  # a merged cell is repeated once per grid column it spans
                    continue
                seen.add(cell._tc)
                yield from _lines(cell)
