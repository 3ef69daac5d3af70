"""Clean-up of file names and person names so that matching ignores spacing and look-alike characters."""

from __future__ import annotations

import re
import unicodedata

from shared.textnorm import strip_invisible

_MIDDLE_DOTS = str.maketrans(dict.fromkeys("\u2022\u30fb\u2027\uff65\u22c5\u2219", "\u00b7"))
_SPACE_RUN_RE = re.compile(r"\s+")
# A space next to a non-ASCII character is alignment padding ("王　五"), not part of the name.
_CJK_PADDING_RE = re.compile(r" (?=[^\x00-\x7f])|(?<=[^\x00-\x7f]) ")
_KEY_DROP_RE = re.compile(r"[\s_\-\u2014.\u00b7]+")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def display_filename(filename: str) -> str:
    """The base name of an uploaded file as the teacher knows it (browsers may send a full path)."""
    base = re.split(r"[\\/]", filename or "")[-1]
    base = _CONTROL_RE.sub("", strip_invisible(base)).strip()
    return base or "上传的文件"


def clean_person_name(raw: str) -> str:
    """A name as stored: NFKC, no invisible characters, one middle dot, no padding spaces between hanzi."""
    text = unicodedata.normalize("NFKC", strip_invisible(raw)).translate(_MIDDLE_DOTS)
    text = _SPACE_RUN_RE.sub(" ", text).strip()
    return _CJK_PADDING_RE.sub("", text)


def name_key(raw: str) -> str:
    """The form used to compare names and to find them inside file names (case, spaces and dots ignored)."""
    return _KEY_DROP_RE.sub("", clean_person_name(raw)).casefold()


def clean_student_number(raw: str) -> str | None:
    """A student number as stored, or None when blank; numbers typed into Excel lose only their spaces."""
    text = unicodedata.normalize("NFKC", strip_invisible(raw))
    text = _SPACE_RUN_RE.sub("", text)
    return text or None


def number_key(number: str) -> str:
    return number.casefold()
