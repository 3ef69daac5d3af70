"""Refuse XML with a DOCTYPE or entity declarations (billion laughs, external entities) before any library
parses it. Office files never need a DTD, so any declaration is treated as an attack.
"""

from __future__ import annotations

import codecs
import itertools
import re
from collections.abc import Iterable
from typing import Literal, NoReturn
from xml.parsers import expat

from services.web.ingest.errors import UnreadableFile, UploadRejected

_STRICT_SUFFIXES = (".xml", ".rels")
_TAIL = 64  # bytes of the previous chunk searched again with the next
_XML_STARTS = (b"<", codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, b"\x00<")
_DECLARATION_RES = (
    re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE),
    re.compile(rb"<\x00!\x00(?:D\x00O\x00C\x00T\x00Y\x00P\x00E|E\x00N\x00T\x00I\x00T\x00Y)", re.IGNORECASE),
    re.compile(rb"\x00<\x00!\x00(?:D\x00O\x00C\x00T\x00Y\x00P\x00E|E\x00N\x00T\x00I\x00T\x00Y)", re.IGNORECASE),
)


class _DeclarationFound(Exception):
    pass


def should_check(name: str, data: bytes) -> bool:
    """Whether a package part is checked: XML by name, or content that a parser could read as XML."""
    lowered = name.lower()
    if lowered.endswith(_STRICT_SUFFIXES):
        return True
    if lowered.endswith(".svg") and "/media/" in f"/{lowered}":
        return False  # images are never parsed by python-docx or openpyxl
    return data.lstrip(b" \t\r\n").startswith(_XML_STARTS)


def assert_safe_xml(name: str, data: bytes, where: str) -> None:
    """Refuse ``data`` if it declares a DOCTYPE or an entity; ``where`` names the part in messages.

    expat does the check; when expat cannot parse the part (an encoding it does not know, broken markup)
    the raw bytes are searched instead, and a broken ``.xml``/``.rels`` part is reported as corrupt.
    """
    verdict = _inspect(data)
    if verdict == "declaration":
        _refuse(where)
    if verdict == "broken" and name.lower().endswith(_STRICT_SUFFIXES):
        raise UnreadableFile(where, "内部 XML 已损坏，请用 Office 重新保存后上传")


def scan_xml_chunks(name: str, chunks: Iterable[bytes], where: str) -> None:
    """``assert_safe_xml`` for a part read chunk by chunk and never held whole (parts no reader keeps).

    Once expat fails, the rest is searched byte-wise, with the tail of the previous chunk so that a declaration
    split across two chunks is found.
    """
    iterator = iter(chunks)
    first = next(iterator, b"")
    if not should_check(name, first):
        for _chunk in iterator:  # read to the end: the archive's size and budget checks run as it is read
            pass
        return
    parser = _guarded_parser()
    broken = False
    tail = b""
    for chunk in itertools.chain([first], iterator):
        if not broken:
            try:
                parser.Parse(chunk, False)
            except _DeclarationFound:
                _refuse(where)
            except (expat.ExpatError, ValueError):
                broken = True
        if broken and any(pattern.search(tail + chunk) for pattern in _DECLARATION_RES):
            _refuse(where)
        tail = chunk[-_TAIL:]
    if not broken:
        try:
            parser.Parse(b"", True)
        except _DeclarationFound:
            _refuse(where)
        except (expat.ExpatError, ValueError):
            broken = True
    if broken and name.lower().endswith(_STRICT_SUFFIXES):
        raise UnreadableFile(where, "内部 XML 已损坏，请用 Office 重新保存后上传")


def _refuse(where: str) -> NoReturn:
    raise UploadRejected(
        f"{where}：含有 DOCTYPE/ENTITY 声明（XML 实体攻击的特征），正常的 Office 文件不会有，出于安全考虑拒绝处理"
    )


def _guarded_parser() -> expat.XMLParserType:
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)

    def forbid(*_args: object) -> NoReturn:
        raise _DeclarationFound

    parser.StartDoctypeDeclHandler = forbid
    parser.EntityDeclHandler = forbid
    parser.UnparsedEntityDeclHandler = forbid
    parser.ExternalEntityRefHandler = forbid
    return parser


def _inspect(data: bytes) -> Literal["clean", "declaration", "broken"]:
    parser = _guarded_parser()
    try:
        parser.Parse(data, True)
    except _DeclarationFound:
        return "declaration"
    except (expat.ExpatError, ValueError):  # ValueError: an encoding pyexpat cannot handle
        return "declaration" if any(pattern.search(data) for pattern in _DECLARATION_RES) else "broken"
    return "clean"
