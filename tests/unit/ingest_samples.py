"""In-memory builders for upload tests: workbooks, Word documents, CSV/text files and (malicious) zips."""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Iterable, Sequence

import docx
from openpyxl import Workbook

from services.web.ingest import RosterEntry, UploadLimits

ROSTER = (
    RosterEntry(1, "张三", "2023001"),
    RosterEntry(2, "李四", "2023002"),
    RosterEntry(3, "王五", "2023003"),
    RosterEntry(4, "欧阳娜娜", "2023004"),
)
LIMITS = UploadLimits(max_bytes=5 * 1024 * 1024, max_files=50, max_uncompressed_bytes=50 * 1024 * 1024)
ESSAY = "我的青春\n青春是一场没有彩排的远行。\n有人说，奋斗是青春最亮丽的底色。"


def xlsx_bytes(rows: Iterable[Sequence[object]], *, sheets: dict[str, list[Sequence[object]]] | None = None) -> bytes:
    """A workbook whose first sheet holds ``rows``; ``sheets`` adds further named sheets."""
    workbook = Workbook()
    sheet = workbook.worksheets[0]
    for row in rows:
        sheet.append(list(row))
    for title, extra_rows in (sheets or {}).items():
        extra = workbook.create_sheet(title)
        for row in extra_rows:
            extra.append(list(row))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def docx_bytes(text: str) -> bytes:
    document = docx.Document()
    for line in text.split("\n"):
        document.add_paragraph(line)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def csv_bytes(lines: Sequence[str], encoding: str = "utf-8-sig") -> bytes:
    return "\r\n".join(lines).encode(encoding)


def zip_bytes(members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def replace_member(package: bytes, name: str, content: bytes) -> bytes:
    """A copy of a zip (e.g. a .docx) with one member's content replaced."""
    members: dict[str, bytes] = {}
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        for info in archive.infolist():
            members[info.filename] = archive.read(info)
    members[name] = content
    return zip_bytes(members)


def zip_with_raw_names(members: Sequence[tuple[bytes, bytes]]) -> bytes:
    """A zip whose names are the given raw bytes (e.g. GBK) without the UTF-8 flag, as old Windows tools write.

    zipfile always writes non-ASCII names as UTF-8, so placeholders of the same length are written first and
    then overwritten in both the local headers and the central directory.
    """
    placeholders = [f"{index:0{len(raw)}d}"[-len(raw) :] for index, (raw, _) in enumerate(members)]
    data = bytearray(zip_bytes({p: content for p, (_, content) in zip(placeholders, members, strict=True)}))
    raw_by_placeholder = {p.encode(): raw for p, (raw, _) in zip(placeholders, members, strict=True)}
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        for info in archive.infolist():
            raw = raw_by_placeholder[info.filename.encode()]
            data[info.header_offset + 30 : info.header_offset + 30 + len(raw)] = raw
    for offset in _central_entries(bytes(data)):
        (length,) = struct.unpack_from("<H", data, offset + 28)
        placeholder = bytes(data[offset + 46 : offset + 46 + length])
        data[offset + 46 : offset + 46 + length] = raw_by_placeholder[placeholder]
    return bytes(data)


def with_declared_size(package: bytes, name: str, declared: int) -> bytes:
    """A copy of a zip whose headers claim ``declared`` uncompressed bytes for member ``name`` (a lie)."""
    data = bytearray(package)
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        info = archive.getinfo(name)
        struct.pack_into("<I", data, info.header_offset + 22, declared)
    for offset in _central_entries(bytes(data)):
        (length,) = struct.unpack_from("<H", data, offset + 28)
        if bytes(data[offset + 46 : offset + 46 + length]) == name.encode():
            struct.pack_into("<I", data, offset + 24, declared)
    return bytes(data)


def with_flag(package: bytes, flag: int) -> bytes:
    """A copy of a zip with ``flag`` set in every header's general-purpose bits (e.g. 0x1: encrypted)."""
    data = bytearray(package)
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        for info in archive.infolist():
            (bits,) = struct.unpack_from("<H", data, info.header_offset + 6)
            struct.pack_into("<H", data, info.header_offset + 6, bits | flag)
    for offset in _central_entries(bytes(data)):
        (bits,) = struct.unpack_from("<H", data, offset + 8)
        struct.pack_into("<H", data, offset + 8, bits | flag)
    return bytes(data)


def _central_entries(data: bytes) -> list[int]:
    eocd = data.rfind(b"PK\x05\x06")
    count, _size, offset = struct.unpack_from("<HII", data, eocd + 10)
    offsets = []
    for _ in range(count):
        offsets.append(offset)
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, offset + 28)
        offset += 46 + name_len + extra_len + comment_len
    return offsets
