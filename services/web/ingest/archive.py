"""Open zip archives (uploads, .docx, .xlsx) without trusting them: bombs, lying headers, path traversal.

Nothing is ever extracted to disk; members are read into memory in chunks against a shared budget.
"""

from __future__ import annotations

import io
import logging
import lzma
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType

from services.web.ingest.errors import UnreadableFile, UploadRejected
from services.web.ingest.limits import RATIO_FLOOR_BYTES, ReadBudget, UploadLimits, format_size

logger = logging.getLogger(__name__)

_CHUNK = 64 * 1024
_UTF8_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1
_UNICODE_PATH_EXTRA = 0x7075
_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_EOCD64 = b"PK\x06\x06"
_CENTRAL_BYTES_PER_ENTRY = 1024  # a generous upper bound for one central-directory record
_CJK_RE = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]")
_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini"})
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, NotImplementedError, OSError, ValueError)


@dataclass(frozen=True)
class ArchiveEntry:
    """One file in an archive; ``name`` is the decoded path with ``/`` separators."""

    info: zipfile.ZipInfo
    name: str


def decode_member_name(info: zipfile.ZipInfo) -> str:
    """The member's real name: zips from Chinese Windows store GBK bytes without the UTF-8 flag.

    Python then decodes them as cp437; we recover the raw bytes and prefer, in order, the Info-ZIP
    Unicode Path extra field, UTF-8, and GB18030 when that yields CJK characters.
    """
    if info.flag_bits & _UTF8_FLAG:
        return info.filename
    raw = info.orig_filename.encode("cp437")
    from_extra = _unicode_path_extra(info.extra, raw)
    if from_extra is not None:
        return from_extra
    if not raw.isascii():
        for encoding in ("utf-8", "gb18030"):
            try:
                decoded = raw.decode(encoding)
            except UnicodeDecodeError:
                continue
            if encoding == "utf-8" or _CJK_RE.search(decoded):
                return decoded
    return info.filename


def _unicode_path_extra(extra: bytes, raw_name: bytes) -> str | None:
    offset = 0
    while offset + 4 <= len(extra):
        header_id, size = struct.unpack_from("<HH", extra, offset)
        body = extra[offset + 4 : offset + 4 + size]
        offset += 4 + size
        if header_id != _UNICODE_PATH_EXTRA or len(body) < 5 or body[0] != 1:
            continue
        (name_crc,) = struct.unpack_from("<I", body, 1)
        if name_crc != zlib.crc32(raw_name):
            continue  # the name was changed by a tool that did not update the extra field
        try:
            return body[5:].decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


def _tidy_path(name: str) -> str:
    """``/`` separators and no empty or ``.`` components (some tools write ``./张三.txt``)."""
    return "/".join(part for part in name.replace("\\", "/").split("/") if part not in ("", "."))


def is_unsafe_member_name(name: str) -> bool:
    """Absolute paths, drive letters and ``..`` components could escape an extraction folder (zip slip)."""
    path = name.replace("\\", "/")
    if "\x00" in path or path.startswith("/") or _DRIVE_RE.match(path):
        return True
    return any(part == ".." for part in path.split("/"))


def is_ignored_member(name: str) -> bool:
    """Folders, macOS resource forks, hidden files, Office lock files and Windows thumbnails."""
    if name.endswith("/"):
        return True
    parts = [part for part in name.split("/") if part]
    if not parts:
        return True
    if any(part == "__MACOSX" or part.startswith(".") for part in parts):
        return True
    base = parts[-1]
    return base.startswith("~$") or base.lower() in _IGNORED_NAMES


class SafeArchive:
    """A zip that passed the entry-count, size, ratio and path checks; reads members under the budget."""

    def __init__(self, zf: zipfile.ZipFile, entries: list[ArchiveEntry], source: str, budget: ReadBudget) -> None:
        self._zf = zf
        self.entries = entries
        self.source = source
        self._budget = budget

    def names(self) -> set[str]:
        return {entry.name for entry in self.entries}

    def read(self, entry: ArchiveEntry) -> bytes:
        """Read one member in chunks, stopping as soon as it exceeds its declared size or the budget."""
        return b"".join(self.iter_chunks(entry))

    def iter_chunks(self, entry: ArchiveEntry) -> Iterator[bytes]:
        """The member's bytes chunk by chunk, under the same checks as ``read``, for callers that need not
        hold all of it."""
        where = f"{self.source}/{entry.name}"
        if entry.info.flag_bits & _ENCRYPTED_FLAG:
            raise UnreadableFile(where, "文件设置了密码，请去掉密码后重新打包上传")
        total = 0
        try:
            with self._zf.open(entry.info) as handle:
                while chunk := handle.read(_CHUNK):
                    total += len(chunk)
                    if total > entry.info.file_size:
                        raise UploadRejected(
                            f"{where}：实际解压出的内容比压缩包声明的大小更大（头信息被篡改，可能是压缩炸弹），已拒绝处理"
                        )
                    self._budget.consume(len(chunk), where)
                    yield chunk
        except _READ_ERRORS as exc:
            logger.info("cannot read a zip member: %s", type(exc).__name__)  # no name: it is often a student's
            raise UnreadableFile(
                where, f"无法解压，压缩包已损坏或头信息与内容不符（{type(exc).__name__}），请重新打包上传"
            ) from exc

    def close(self) -> None:
        self._zf.close()

    def __enter__(self) -> SafeArchive:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_archive(
    data: bytes, source: str, limits: UploadLimits, budget: ReadBudget, *, max_entries: int
) -> SafeArchive:
    """Open ``data`` as a zip after checking, before any member is read, the number of entries, the
    declared uncompressed size against the remaining budget, the compression ratios and every member name.
    """
    _check_central_directory(data, source, max_entries)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError, ValueError) as exc:
        logger.info("cannot open an upload as zip: %s", type(exc).__name__)  # no file name: often a student's
        raise UnreadableFile(source, "文件已损坏（压缩结构不完整或被截断），请重新保存后上传") from exc
    try:
        entries = _checked_entries(data, infos, source, limits, budget, max_entries)
    except BaseException:
        zf.close()
        raise
    return SafeArchive(zf, entries, source, budget)


def _checked_entries(
    data: bytes,
    infos: list[zipfile.ZipInfo],
    source: str,
    limits: UploadLimits,
    budget: ReadBudget,
    max_entries: int,
) -> list[ArchiveEntry]:
    if len(infos) > max_entries:
        raise UploadRejected(f"{source}：压缩包中的条目过多（{len(infos)} 个，上限 {max_entries} 个），已拒绝处理")
    entries: list[ArchiveEntry] = []
    for info in infos:
        name = decode_member_name(info)
        if is_unsafe_member_name(name) or is_unsafe_member_name(info.orig_filename.replace("\\", "")):
            raise UploadRejected(
                f"{source}：压缩包中的文件名“{name}”含有“..”、绝对路径或盘符，试图指向压缩包以外的位置"
                "（路径穿越攻击）。本系统从不把文件解压到磁盘，但出于安全考虑拒绝处理这个压缩包"
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_FLOOR_BYTES and ratio > limits.max_ratio:
            raise UploadRejected(
                f"{source}：压缩包中“{name}”的压缩比异常（{ratio:.0f}:1，上限 {limits.max_ratio:.0f}:1），"
                "可能是压缩炸弹，已拒绝处理"
            )
        if not info.is_dir():
            entries.append(ArchiveEntry(info, _tidy_path(name)))
    declared = sum(info.file_size for info in infos)
    if declared > budget.remaining:
        raise UploadRejected(
            f"{source}：解压后共 {format_size(declared)}，超过上限 {format_size(budget.limit)}，"
            "可能是压缩炸弹，已拒绝处理"
        )
    if declared > RATIO_FLOOR_BYTES and declared > limits.max_ratio * len(data):
        raise UploadRejected(
            f"{source}：压缩比异常（{declared / len(data):.0f}:1，上限 {limits.max_ratio:.0f}:1），"
            "可能是压缩炸弹，已拒绝处理"
        )
    return entries


def _check_central_directory(data: bytes, source: str, max_entries: int) -> None:
    """Refuse a huge central directory before ``zipfile`` builds one object per entry."""
    position = data.rfind(_EOCD, max(0, len(data) - 22 - 65535))
    if position < 0 or position + 22 > len(data):
        return  # not a readable zip: ZipFile reports it as corrupt
    entry_count, directory_size = struct.unpack_from("<HI", data, position + 10)
    locator = position - 20
    if (entry_count == 0xFFFF or directory_size == 0xFFFFFFFF) and data[locator : locator + 4] == _EOCD64_LOCATOR:
        record = locator - 56
        if record >= 0 and data[record : record + 4] == _EOCD64:
            entry_count, directory_size = struct.unpack_from("<QQ", data, record + 32)
    if entry_count > max_entries or directory_size > max_entries * _CENTRAL_BYTES_PER_ENTRY:
        raise UploadRejected(
            f"{source}：压缩包中的条目过多（声明 {entry_count} 个，上限 {max_entries} 个），已拒绝处理"
        )
