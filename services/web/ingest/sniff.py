"""Tell file types apart by content, and explain in Chinese when the content and the extension disagree."""

from __future__ import annotations

from typing import Literal

from services.web.ingest.archive import open_archive
from services.web.ingest.errors import UnreadableFile
from services.web.ingest.limits import ReadBudget, UploadLimits
from services.web.ingest.textfile import try_decode_text

Kind = Literal[
    "docx", "xlsx", "pptx", "odf", "zip", "text", "ole", "pdf", "exe", "image", "rar", "7z", "gzip", "binary"
]

ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_MAGICS: tuple[tuple[bytes, Kind], ...] = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole"),
    (b"%PDF", "pdf"),
    (b"\x7fELF", "exe"),
    (b"\xcf\xfa\xed\xfe", "exe"),
    (b"\x89PNG", "image"),
    (b"\xff\xd8\xff", "image"),
    (b"GIF8", "image"),
    (b"Rar!", "rar"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"\x1f\x8b", "gzip"),
)
_LABELS: dict[Kind, str] = {
    "docx": "Word 文档（.docx）",
    "xlsx": "Excel 工作簿（.xlsx）",
    "pptx": "PowerPoint 演示文稿",
    "odf": "OpenDocument 文档",
    "zip": "zip 压缩包",
    "text": "纯文本",
    "ole": "旧版 Office/WPS 文件（.doc/.xls/.wps）",
    "pdf": "PDF 文件",
    "exe": "可执行程序",
    "image": "图片",
    "rar": "RAR 压缩包",
    "7z": "7z 压缩包",
    "gzip": "gzip 压缩包",
    "binary": "无法识别的二进制数据",
}
EXPECTED_KIND: dict[str, Kind] = {
    ".docx": "docx", ".xlsx": "xlsx", ".csv": "text", ".txt": "text", ".zip": "zip", ".pdf": "pdf",
}
_EXTENSION_ADVICE: dict[str, str] = {
    ".doc": "是旧版 Word 格式，请用 Word 或 WPS 打开后“另存为” .docx 再上传",
    ".wps": "是 WPS 文字格式，请在 WPS 中“另存为” .docx 再上传",
    ".xls": "是旧版 Excel 格式，请用 Excel 或 WPS 打开后“另存为” .xlsx 再上传",
    ".et": "是 WPS 表格格式，请在 WPS 中“另存为” .xlsx 再上传",
    ".pdf": "是 PDF，无法可靠地提取文字，请上传 .docx 或 .txt",
    ".rar": "是 RAR 压缩包，目前只支持 zip，请重新打包为 .zip",
    ".7z": "是 7z 压缩包，目前只支持 zip，请重新打包为 .zip",
    ".jpg": "是图片，无法识别手写文字，请上传 .docx 或 .txt",
    ".jpeg": "是图片，无法识别手写文字，请上传 .docx 或 .txt",
    ".png": "是图片，无法识别手写文字，请上传 .docx 或 .txt",
}


def describe(kind: Kind) -> str:
    return _LABELS[kind]


def sniff(data: bytes) -> Kind:
    """The kind of ``data`` from its first bytes; zips are only ``zip`` here (see ``package_kind``)."""
    if data.startswith(ZIP_MAGICS):
        return "zip"
    for magic, kind in _MAGICS:
        if data.startswith(magic):
            return kind
    if try_decode_text(data) is not None:
        return "text"
    return "exe" if data.startswith(b"MZ") else "binary"


def content_kind(data: bytes, where: str, limits: UploadLimits, budget: ReadBudget, *, max_entries: int) -> Kind:
    """The kind of ``data``, opening zips (after the archive safety checks) to tell .docx and .xlsx apart."""
    kind = sniff(data)
    if kind != "zip":
        return kind
    with open_archive(data, where, limits, budget, max_entries=max_entries) as archive:
        return package_kind(archive.names())


def package_kind(names: set[str]) -> Kind:
    """Which zip-based format an archive is, from its member names."""
    if "word/document.xml" in names:
        return "docx"
    if "xl/workbook.xml" in names:
        return "xlsx"
    if "ppt/presentation.xml" in names:
        return "pptx"
    if "mimetype" in names and "content.xml" in names:
        return "odf"
    return "zip"


def extension_of(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    dot = base.rfind(".")
    return base[dot:].lower() if dot > 0 else ""


def unsupported_type_reason(ext: str, accepted: tuple[str, ...]) -> str:
    """Why a file with extension ``ext`` is refused, with advice on how to convert it."""
    accepted_text = "、".join(accepted)
    if ext in _EXTENSION_ADVICE:
        return f"这个文件{_EXTENSION_ADVICE[ext]}（支持的类型：{accepted_text}）"
    shown = ext or "（无扩展名）"
    return f"不支持的文件类型 {shown}，请上传 {accepted_text} 文件"


def require_kind(where: str, ext: str, actual: Kind) -> None:
    """Raise ``UnreadableFile`` when the content is not what the extension promises."""
    expected = EXPECTED_KIND[ext]
    if actual == expected:
        return
    advice = ""
    if actual == "text" and ext == ".xlsx":
        advice = "；如果这是从 Excel 导出的 CSV 表格，请把扩展名改为 .csv"
    elif actual == "text" and ext == ".docx":
        advice = "；如果这是纯文本作文，请把扩展名改为 .txt"
    elif actual in ("docx", "xlsx", "zip"):
        advice = f"；请把扩展名改为 .{actual} 后再上传"
    elif actual == "ole":
        advice = "；请用 Office 或 WPS 打开后“另存为” .docx/.xlsx 再上传"
    label = describe(actual)
    spacer = " " if label[0].isascii() else ""
    raise UnreadableFile(where, f"扩展名是 {ext}，但文件内容是{spacer}{label}，与扩展名不符{advice}")
