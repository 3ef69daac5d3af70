"""Extract the plain text of a .docx essay: every body paragraph in document order, one line each.

The text is read from the XML rather than through python-docx's paragraph API so that content controls,
tables, text boxes and tracked insertions are included, deletions are not, and text boxes are not doubled
by their compatibility fallback copy.
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import docx

from services.web.ingest.errors import UnreadableFile
from services.web.ingest.limits import ReadBudget, UploadLimits
from services.web.ingest.office import check_office_package

logger = logging.getLogger(__name__)

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
_PARAGRAPH = f"{_W}p"
_TEXT = f"{_W}t"
_CHARACTERS = {f"{_W}tab": "\t", f"{_W}br": "\n", f"{_W}cr": "\n"}
# deleted or moved-away text, the fallback copy of a text box, and property blocks (tab stop definitions)
_SKIPPED = frozenset({f"{_W}del", f"{_W}moveFrom", _MC_FALLBACK, f"{_W}pPr", f"{_W}rPr"})


def read_docx_text(data: bytes, where: str, limits: UploadLimits, budget: ReadBudget) -> str:
    """The text of a .docx, one line per paragraph; the package is vetted before python-docx opens it."""
    check_office_package(data, where, limits, budget)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            document = docx.Document(io.BytesIO(data))
            return "\n".join(_lines(document.element.body))
    except Exception as exc:  # python-docx raises many kinds of errors on malformed packages
        logger.info("python-docx cannot read %s: %r", where, exc)
        raise UnreadableFile(
            where, "无法读取 Word 文档的内容，文件可能已损坏，请用 Word 重新保存为 .docx 后上传"
        ) from exc


def _lines(body: Any) -> Iterator[str]:
    for paragraph in body.iter(_PARAGRAPH):
        if not _skipped(paragraph, None):
            yield "".join(_pieces(paragraph))


def _pieces(paragraph: Any) -> Iterator[str]:
    for element in paragraph.iter(_TEXT, *_CHARACTERS):
        if _skipped(element, paragraph):
            continue
        yield (element.text or "") if element.tag == _TEXT else _CHARACTERS[element.tag]


def _skipped(element: Any, paragraph: Any | None) -> bool:
    """Whether ``element`` is hidden text, or (inside ``paragraph``) belongs to a nested text-box paragraph."""
    for ancestor in element.iterancestors():
        if ancestor is paragraph:
            return False
        if ancestor.tag in _SKIPPED or (paragraph is not None and ancestor.tag == _PARAGRAPH):
            return True
    return False
