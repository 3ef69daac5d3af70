"""Stream an XML part through expat with callbacks, so that reading it costs memory only for what is kept.

Office parts are read this way instead of as element trees: a tree of millions of tiny elements (empty
paragraphs, far-right cells) costs gigabytes, while the callbacks let each reader count what it sees and stop
at its cap. Declarations are refused here too (``xmlguard`` has already checked every part).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn, Protocol
from xml.parsers import expat

from services.web.ingest.errors import UnreadableFile, UploadRejected

_CHUNK = 64 * 1024
MAX_XML_DEPTH = 256  # Word nests tables in text boxes in tables, but never this deep


def qualified(namespace: str, local: str) -> str:
    """A name as expat reports it with ``namespace_separator="}"``."""
    return f"{namespace}}}{local}"


class XmlHandler(Protocol):
    def start(self, tag: str, attrs: dict[str, str]) -> None: ...

    def end(self, tag: str) -> None: ...

    def text(self, data: str) -> None: ...


def stream_xml(data: bytes, where: str, handler: XmlHandler) -> None:
    """Feed ``data`` to ``handler`` chunk by chunk; a handler stops the read by raising ``UploadRejected``."""
    parser = expat.ParserCreate(namespace_separator="}")
    parser.buffer_text = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    depth = 0

    def forbid(*_args: object) -> NoReturn:
        raise UploadRejected(f"{where}：含有 DOCTYPE/ENTITY 声明（XML 实体攻击的特征），出于安全考虑拒绝处理")

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth > MAX_XML_DEPTH:
            raise UploadRejected(f"{where}：XML 嵌套超过 {MAX_XML_DEPTH} 层，结构异常，已拒绝处理")
        handler.start(tag, attrs)

    def end(tag: str) -> None:
        nonlocal depth
        depth -= 1
        handler.end(tag)

    parser.StartDoctypeDeclHandler = forbid
    parser.EntityDeclHandler = forbid
    parser.UnparsedEntityDeclHandler = forbid
    parser.ExternalEntityRefHandler = forbid
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = handler.text
    feed: Callable[[bytes, bool], object] = parser.Parse
    try:
        for offset in range(0, len(data), _CHUNK):
            feed(data[offset : offset + _CHUNK], False)
        feed(b"", True)
    except (expat.ExpatError, ValueError) as exc:
        raise UnreadableFile(where, "内部 XML 已损坏，请用 Office 重新保存后上传") from exc
