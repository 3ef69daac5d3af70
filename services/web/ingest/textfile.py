"""Decode plain-text uploads (.txt essays and .csv tables) whatever encoding the teacher's computer used."""

from __future__ import annotations

import codecs
import logging
import re

from services.web.ingest.errors import UnreadableFile

logger = logging.getLogger(__name__)

# C0/C1 control characters except \t \n \v \f \r and \x1a (the end-of-file mark of old DOS editors)
_CONTROL_RE = re.compile("[\x00-\x08\x0e-\x19\x1b-\x1f\x7f-\x9f]")
_MAX_CONTROL_SHARE = 0.01


def try_decode_text(data: bytes) -> str | None:
    """Decode ``data`` as UTF-8 (with or without BOM), UTF-16 with a BOM, or GB18030; None if none fits.

    Data with NUL bytes and no UTF-16 BOM, or with many control characters, is binary and gives None.
    """
    text = _decode(data)
    if text is None or _looks_binary(text):
        return None
    return text


def decode_text(data: bytes, source: str) -> str:
    """Like ``try_decode_text`` but raise ``UnreadableFile`` naming ``source`` when the bytes are not text."""
    text = try_decode_text(data)
    if text is None:
        raise UnreadableFile(source, "无法识别文件编码，或者它不是文本文件。请用记事本打开后“另存为”UTF-8 编码再上传")
    return text


def _decode(data: bytes) -> str | None:
    if data.startswith(codecs.BOM_UTF8):
        return _strict(data[len(codecs.BOM_UTF8) :], "utf-8")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _strict(data, "utf-16")  # the codec reads the BOM to pick the byte order
    if b"\x00" in data:
        return None
    text = _strict(data, "utf-8")
    if text is None:
        text = _strict(data, "gb18030")
        if text is not None:
            logger.debug("decoded %d bytes as gb18030", len(data))
    return text


def _strict(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def _looks_binary(text: str) -> bool:
    if "\x00" in text:
        return True
    controls = len(_CONTROL_RE.findall(text))
    return controls > 4 and controls > _MAX_CONTROL_SHARE * len(text)
