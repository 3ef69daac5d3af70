"""Size limits for one upload, and the running budget of decompressed bytes that enforces them."""

from __future__ import annotations

from dataclasses import dataclass

from services.web.ingest.errors import UploadRejected

# Below this size a high compression ratio is harmless (a page of spaces compresses 200:1).
RATIO_FLOOR_BYTES = 1024 * 1024


@dataclass(frozen=True)
class UploadLimits:
    """What one upload may contain.

    ``max_bytes``: size of the uploaded file itself. ``max_files``: essays (files in a zip, or rows of a
    table) and roster rows. ``max_uncompressed_bytes``: all bytes decompressed while reading the upload,
    including the parts inside .docx/.xlsx files. ``max_ratio``: the largest compression ratio accepted for
    an archive member (or a whole archive) larger than ``RATIO_FLOOR_BYTES``. ``max_essay_chars``: counted
    characters of one essay's body.

    The structure caps are checked while the XML is streamed, so a document that passes the size and ratio
    checks but holds millions of tiny elements is refused after reading at most the cap:
    ``max_paragraphs``/``max_runs``/``max_document_chars`` per Word document (hidden text included),
    ``max_columns`` (the column of any cell that holds a value), ``max_sheet_rows`` (row elements per sheet,
    blank ones included) and ``max_cells`` per sheet, ``max_table_chars`` of text per workbook.
    ``max_xml_part_bytes``: one XML part a reader holds in memory to parse (twice that for all of a file's).
    ``parse_memory_mb``/``parse_cpu_seconds``/``parse_wall_seconds`` bound the separate process that
    parses an upload for the web (see ``sandbox``).
    """

    max_bytes: int
    max_files: int
    max_uncompressed_bytes: int
    max_ratio: float = 100.0
    max_essay_chars: int = 6000
    max_paragraphs: int = 5000
    max_runs: int = 50_000
    max_document_chars: int = 100_000
    max_columns: int = 200
    max_sheet_rows: int = 20_000
    max_cells: int = 200_000
    max_table_chars: int = 10_000_000
    max_xml_part_bytes: int = 64 * 1024 * 1024
    parse_memory_mb: int = 512
    parse_cpu_seconds: int = 30
    parse_wall_seconds: int = 60

    def __post_init__(self) -> None:
        for field_name in (
            "max_bytes", "max_files", "max_uncompressed_bytes", "max_essay_chars", "max_paragraphs", "max_runs",
            "max_document_chars", "max_columns", "max_sheet_rows", "max_cells", "max_table_chars", "max_xml_part_bytes",
            "parse_memory_mb", "parse_cpu_seconds", "parse_wall_seconds",
        ):
            if getattr(self, field_name) < 1:
                raise ValueError(f"{field_name} must be positive")
        if self.max_ratio < 1:
            raise ValueError("max_ratio must be at least 1")


def zip_entry_cap(limits: UploadLimits) -> int:
    """Entries allowed in an uploaded zip: each file may come with a folder and a macOS ``__MACOSX`` twin."""
    return max(4 * limits.max_files + 100, 2000)


def format_size(size: int) -> str:
    """A human-readable size in Chinese UI style (KB below one megabyte, MB above)."""
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB" if size >= 1024 else f"{size} 字节"
    return f"{size / (1024 * 1024):.1f} MB"


def check_upload_size(display_name: str, data: bytes, limits: UploadLimits) -> None:
    """Refuse an empty upload or one larger than ``max_bytes``."""
    if not data:
        raise UploadRejected(f"{display_name}：文件是空的（0 字节），请检查后重新上传")
    if len(data) > limits.max_bytes:
        raise UploadRejected(
            f"{display_name}：文件过大（{format_size(len(data))}，上限 {format_size(limits.max_bytes)}），请分批上传"
        )


class ReadBudget:
    """Counts decompressed bytes across one upload so that nested archives share a single limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    @property
    def remaining(self) -> int:
        return self.limit - self.used

    def consume(self, size: int, source: str) -> None:
        self.used += size
        if self.used > self.limit:
            raise UploadRejected(
                f"{source}：解压后的内容超过上限 {format_size(self.limit)}，可能是压缩炸弹，已拒绝处理"
            )
