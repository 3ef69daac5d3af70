"""Parse a class material for the student chat (.docx, .txt or .pdf) into its text, through the same checks as essays:
size, content sniffing against the extension, the vetted .docx reader; run in the parse sandbox by the caller."""

from __future__ import annotations

from dataclasses import dataclass

from services.web.ingest.docx_reader import read_docx_text
from services.web.ingest.errors import UnreadableFile
from services.web.ingest.limits import ReadBudget, UploadLimits, check_upload_size, zip_entry_cap
from services.web.ingest.names import display_filename
from services.web.ingest.pdf_reader import read_pdf_text
from services.web.ingest.sniff import content_kind, extension_of, require_kind, unsupported_type_reason
from services.web.ingest.textfile import decode_text

MATERIAL_EXTENSIONS = (".docx", ".txt", ".pdf")


@dataclass(frozen=True)
class MaterialText:
    title: str
    text: str


def parse_material(filename: str, data: bytes, limits: UploadLimits) -> MaterialText:
    """The material's visible text and a title (the file name without extension); UploadRejected naming the file."""
    name = display_filename(filename)
    check_upload_size(name, data, limits)
    ext = extension_of(name)
    if ext not in MATERIAL_EXTENSIONS:
        raise UnreadableFile(name, unsupported_type_reason(ext, MATERIAL_EXTENSIONS))
    budget = ReadBudget(limits.max_uncompressed_bytes)
    require_kind(name, ext, content_kind(data, name, limits, budget, max_entries=zip_entry_cap(limits)))
    if ext == ".docx":
        text = read_docx_text(data, name, limits, budget).text
    elif ext == ".pdf":
        text = read_pdf_text(data, name, limits)
    else:
        text = decode_text(data, name)
    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise UnreadableFile(name, "文件中没有文字内容")
    return MaterialText(title=name.rsplit(".", 1)[0][:200], text=text)
