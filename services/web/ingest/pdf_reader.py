"""The text of a PDF class material (a 讲义 or 范文 exported to PDF), read with pypdf inside the parse sandbox.

Caps are checked as pages are read: at most ``MAX_PDF_PAGES`` pages and ``limits.max_document_chars`` characters,
so a file of many empty pages or one enormous page is refused after reading at most the cap. Encrypted and
unreadable files, and files with no extractable text (a scan), are refused with the file named and the reason.
"""

from __future__ import annotations

import io
import logging

from services.web.ingest.errors import UnreadableFile
from services.web.ingest.limits import UploadLimits

MAX_PDF_PAGES = 300

logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings about malformed files would carry no file name


def read_pdf_text(data: bytes, name: str, limits: UploadLimits) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise UnreadableFile(name, "PDF 已加密，请去掉密码后再上传")
        pages = len(reader.pages)
        if pages > MAX_PDF_PAGES:
            raise UnreadableFile(name, f"PDF 有 {pages} 页，超过 {MAX_PDF_PAGES} 页的上限，请拆分后上传")
        parts: list[str] = []
        chars = 0
        for page in reader.pages:
            text = page.extract_text() or ""
            chars += len(text)
            if chars > limits.max_document_chars:
                raise UnreadableFile(name, f"PDF 中的文字超过 {limits.max_document_chars} 字的上限，请拆分后上传")
            parts.append(text.strip())
    except UnreadableFile:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise UnreadableFile(name, "无法读取这个 PDF（文件已损坏或格式异常），请另存为 .docx 或 .txt 后上传") from exc
    text = "\n".join(part for part in parts if part)
    if not text.strip():
        raise UnreadableFile(name, "PDF 中没有可提取的文字（可能是扫描件），请上传 .docx 或 .txt")
    return text
