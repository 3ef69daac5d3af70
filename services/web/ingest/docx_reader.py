"""Extract the plain text of a .docx essay: every body paragraph in document order, one line each.

``word/document.xml`` is streamed (never built into a tree) and the read stops at the document caps
(paragraphs, runs, characters), so a document of millions of empty paragraphs costs a bounded amount of
memory and time. Content controls, tables, text boxes and tracked insertions are included, deletions are
not, and text boxes are not doubled by their compatibility fallback copy.

Text a reader of the printed page cannot see is dropped and reported: runs marked hidden (``w:vanish``),
fonts of 2 pt or less, and font colours (nearly) equal to what is behind them (the run's shading or
highlight, the paragraph's or table cell's shading, the page colour).
Run formatting comes from the document defaults, the paragraph style, the character style and the run itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from services.web.ingest.errors import UnreadableFile, UploadRejected
from services.web.ingest.limits import ReadBudget, UploadLimits
from services.web.ingest.office import read_office_parts
from services.web.ingest.xmlstream import qualified, stream_xml

logger = logging.getLogger(__name__)

_W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_MC_NS = "http://schemas.openxmlformats.org/markup-compatibility/2006"
DOCUMENT_PART = "word/document.xml"
STYLES_PART = "word/styles.xml"
CONTENT_TYPES_PART = "[Content_Types].xml"
_MAIN_DOCUMENT_TYPES = (b".document.main+xml", b".template.main+xml", b".document.macroEnabled.main+xml")


def _w(local: str) -> str:
    return qualified(_W_NS, local)


_P, _R, _T, _PPR, _RPR = _w("p"), _w("r"), _w("t"), _w("pPr"), _w("rPr")
_TC, _TCPR = _w("tc"), _w("tcPr")
_VAL, _FILL, _COLOR = _w("val"), _w("fill"), _w("color")
_CHARACTERS = {_w("tab"): "\t", _w("br"): "\n", _w("cr"): "\n"}
# deleted or moved-away text and the fallback copy of a text box are not part of the essay
_SKIPPED = frozenset({_w("del"), _w("moveFrom"), qualified(_MC_NS, "Fallback")})
_TINY_HALF_POINTS = 4  # w:sz is in half-points: 2 pt
_NEAR_COLOUR = 24  # largest per-channel difference (of 255) still read as the background's colour
_MAX_STYLES = 5000
_MAX_STYLE_CHAIN = 20
_MAX_REMOVED_LISTED = 20
_MAX_REMOVED_SHOWN_CHARS = 80
_HIGHLIGHTS = {
    "black": "000000", "blue": "0000FF", "cyan": "00FFFF", "green": "00FF00", "magenta": "FF00FF", "red": "FF0000",
    "yellow": "FFFF00", "white": "FFFFFF", "darkBlue": "000080", "darkCyan": "008080", "darkGreen": "008000",
    "darkMagenta": "800080", "darkRed": "800000", "darkYellow": "808000", "darkGray": "808080",
    "lightGray": "C0C0C0",
}
HIDDEN = "隐藏文字"
TINY = "极小字号（2 磅及以下）的文字"
INVISIBLE_COLOUR = "与背景同色的文字"


@dataclass(frozen=True)
class RunLook:
    """The formatting that decides whether a run can be seen; None means 'not set here'."""

    vanish: bool | None = None
    half_points: int | None = None
    colour: str | None = None  # RRGGBB or "auto"
    fill: str | None = None  # shading or highlight behind the run, RRGGBB

    def over(self, base: RunLook) -> RunLook:
        """This look applied on top of ``base``."""
        return RunLook(
            vanish=base.vanish if self.vanish is None else self.vanish,
            half_points=base.half_points if self.half_points is None else self.half_points,
            colour=base.colour if self.colour is None else self.colour,
            fill=base.fill if self.fill is None else self.fill,
        )


@dataclass(frozen=True)
class DocxText:
    """The visible text, and what was dropped as invisible (``"reason：“text”"``, for the preview)."""

    text: str
    removed: list[str]


def read_docx_text(data: bytes, where: str, limits: UploadLimits, budget: ReadBudget) -> DocxText:
    """The text of a .docx, one line per paragraph; the package is vetted and read under the caps."""
    parts = read_office_parts(data, where, limits, budget, keep={DOCUMENT_PART, STYLES_PART, CONTENT_TYPES_PART})
    document = parts.pop(DOCUMENT_PART, None)
    declared = parts.pop(CONTENT_TYPES_PART, b"")
    if document is None or not any(main in declared for main in _MAIN_DOCUMENT_TYPES):
        # Word itself refuses a package whose content types do not declare the main document
        raise UnreadableFile(where, "无法读取 Word 文档的内容，文件可能已损坏，请用 Word 重新保存为 .docx 后上传")
    styles = _StyleSheet()
    if STYLES_PART in parts:
        stream_xml(parts.pop(STYLES_PART), f"{where} 内部的 {STYLES_PART}", _StyleReader(styles, where))
    reader = _DocumentReader(where, limits, styles)
    stream_xml(document, f"{where} 内部的 {DOCUMENT_PART}", reader)
    if reader.removed:
        logger.info("dropped %d invisible passages from a .docx", len(reader.removed))
    return DocxText("\n".join(line or "" for line in reader.lines), reader.removed_summary())


def _on(attrs: dict[str, str]) -> bool:
    return attrs.get(_VAL, "true").lower() not in ("0", "false", "off")


def _hex(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if value.lower() == "auto":
        return "auto"
    return value.upper() if len(value) == 6 and all(c in "0123456789abcdefABCDEF" for c in value) else None


def look_property(tag: str, attrs: dict[str, str], look: RunLook) -> RunLook:
    """``look`` with the run property element ``tag`` applied (unknown elements change nothing)."""
    if tag in (_w("vanish"), _w("specVanish")):
        return replace(look, vanish=_on(attrs))
    if tag == _w("sz"):
        try:
            return replace(look, half_points=int(attrs.get(_VAL, "")))
        except ValueError:
            return look
    if tag == _w("color"):
        colour = _hex(attrs.get(_VAL))
        return replace(look, colour=colour) if colour else look
    if tag == _w("shd"):
        fill = _hex(attrs.get(_FILL))
        return replace(look, fill=fill) if fill and fill != "auto" else look
    if tag == _w("highlight"):
        fill = _HIGHLIGHTS.get(attrs.get(_VAL, ""))
        return replace(look, fill=fill) if fill else look
    return look


def invisible_reason(look: RunLook, background: str) -> str | None:
    """Why text of ``look`` on ``background`` (RRGGBB) cannot be seen, or None when it can."""
    if look.vanish:
        return HIDDEN
    if look.half_points is not None and look.half_points <= _TINY_HALF_POINTS:
        return TINY
    if look.colour and look.colour != "auto":
        behind = look.fill or background
        if all(abs(int(look.colour[i : i + 2], 16) - int(behind[i : i + 2], 16)) <= _NEAR_COLOUR for i in (0, 2, 4)):
            return INVISIBLE_COLOUR
    return None


@dataclass
class _Style:
    kind: str
    based_on: str | None = None
    look: RunLook = field(default_factory=RunLook)


class _StyleSheet:
    """Paragraph and character styles with their run formatting, resolved along ``basedOn`` chains."""

    def __init__(self) -> None:
        self.styles: dict[str, _Style] = {}
        self.defaults = RunLook()
        self.default_paragraph: str | None = None
        self._resolved: dict[str, RunLook] = {}

    def look(self, style_id: str | None) -> RunLook:
        if not style_id:
            return RunLook()
        if style_id not in self._resolved:
            chain: list[RunLook] = []
            current: str | None = style_id
            while current and current in self.styles and len(chain) < _MAX_STYLE_CHAIN:
                chain.append(self.styles[current].look)
                current = self.styles[current].based_on
            look = RunLook()
            for own in reversed(chain):
                look = own.over(look)
            self._resolved[style_id] = look
        return self._resolved[style_id]

    def run_look(self, paragraph_style: str | None, character_style: str | None, direct: RunLook) -> RunLook:
        paragraph = self.look(paragraph_style or self.default_paragraph)
        return direct.over(self.look(character_style).over(paragraph.over(self.defaults)))


class _StyleReader:
    """Fills a ``_StyleSheet`` from ``word/styles.xml``."""

    def __init__(self, sheet: _StyleSheet, where: str) -> None:
        self.sheet = sheet
        self.where = where
        self.stack: list[str] = []
        self.style: _Style | None = None

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        self.stack.append(tag)
        parent = self.stack[-2] if len(self.stack) > 1 else ""
        grandparent = self.stack[-3] if len(self.stack) > 2 else ""
        if tag == _w("style"):
            if len(self.sheet.styles) >= _MAX_STYLES:
                raise UploadRejected(f"{self.where}：样式超过 {_MAX_STYLES} 个，结构异常，已拒绝处理")
            style_id = attrs.get(_w("styleId"), "")
            self.style = self.sheet.styles[style_id] = _Style(kind=attrs.get(_w("type"), "paragraph"))
            if self.style.kind == "paragraph" and _on({_VAL: attrs.get(_w("default"), "0")}):
                self.sheet.default_paragraph = style_id
        elif tag == _w("basedOn") and self.style is not None and parent == _w("style"):
            self.style.based_on = attrs.get(_VAL)
        elif parent == _RPR and grandparent == _w("style") and self.style is not None:
            self.style.look = look_property(tag, attrs, self.style.look)
        elif parent == _RPR and grandparent == _w("rPrDefault"):
            self.sheet.defaults = look_property(tag, attrs, self.sheet.defaults)

    def end(self, tag: str) -> None:
        self.stack.pop()
        if tag == _w("style"):
            self.style = None

    def text(self, data: str) -> None:
        pass


@dataclass
class _Paragraph:
    slot: int
    style: str | None = None
    fill: str | None = None
    pieces: list[str] = field(default_factory=list)


@dataclass
class _Run:
    paragraph: _Paragraph
    style: str | None = None
    direct: RunLook = field(default_factory=RunLook)
    pieces: list[str] = field(default_factory=list)


class _DocumentReader:
    """Collects paragraph lines (in the order paragraphs start) while counting against the caps."""

    def __init__(self, where: str, limits: UploadLimits, styles: _StyleSheet) -> None:
        self.where = where
        self.limits = limits
        self.styles = styles
        self.lines: list[str | None] = []
        self.removed: list[tuple[str, str]] = []
        self.page = "FFFFFF"
        self.run_count = 0
        self.chars = 0
        self._stack: list[str] = []
        self._skip_at: int | None = None  # depth of the deleted/fallback element being skipped
        self._props_at: int | None = None  # depth of the pPr/rPr being read (no text inside)
        self._paragraphs: list[_Paragraph] = []
        self._cell_fills: list[str | None] = []  # shading of the table cells we are in, innermost last
        self._runs: list[_Run] = []
        self._in_text = False
        self._last_removed_paragraph = -1

    def _target(self) -> list[str] | None:
        if not self._paragraphs:
            return None
        paragraph = self._paragraphs[-1]
        if self._runs and self._runs[-1].paragraph is paragraph:
            return self._runs[-1].pieces
        return paragraph.pieces

    def _count_chars(self, count: int) -> None:
        self.chars += count
        if self.chars > self.limits.max_document_chars:
            raise UploadRejected(
                f"{self.where}：文档中的文字（含隐藏文字）超过 {self.limits.max_document_chars} 个字符的上限，"
                "一篇作文不会这么长，请检查文件"
            )

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        self._stack.append(tag)
        depth = len(self._stack)
        if self._skip_at is not None:
            return
        if tag in _SKIPPED:
            self._skip_at = depth
            return
        parent = self._stack[-2] if depth > 1 else ""
        if self._props_at is not None:
            self._property(tag, attrs, parent, depth)
            return
        if tag == _P:
            if len(self.lines) >= self.limits.max_paragraphs:
                raise UploadRejected(
                    f"{self.where}：文档中的段落超过 {self.limits.max_paragraphs} 个的上限（可能含有大量空段落），"
                    "一篇作文不会有这么多段，请检查文件"
                )
            self.lines.append(None)
            self._paragraphs.append(_Paragraph(slot=len(self.lines) - 1))
        elif tag == _R:
            self.run_count += 1
            if self.run_count > self.limits.max_runs:
                raise UploadRejected(
                    f"{self.where}：文档中的文字片段（run）超过 {self.limits.max_runs} 个的上限，结构异常，请检查文件"
                )
            if self._paragraphs:
                self._runs.append(_Run(self._paragraphs[-1]))
        elif tag in (_PPR, _RPR, _TCPR):
            self._props_at = depth
        elif tag == _TC:
            self._cell_fills.append(None)
        elif tag == _T:
            self._in_text = True
        elif tag in _CHARACTERS:
            target = self._target()
            if target is not None:
                self._count_chars(1)
                target.append(_CHARACTERS[tag])
        elif tag == _w("background") and parent == _w("document"):
            colour = _hex(attrs.get(_COLOR))
            if colour and colour != "auto":
                self.page = colour

    def _property(self, tag: str, attrs: dict[str, str], parent: str, depth: int) -> None:
        """A child of the paragraph's or run's property block (deeper elements, like revisions, are ignored)."""
        if depth != (self._props_at or 0) + 1:
            return
        owner = self._stack[-3] if depth > 2 else ""
        if parent == _PPR and owner == _P and self._paragraphs:
            paragraph = self._paragraphs[-1]
            if tag == _w("pStyle"):
                paragraph.style = attrs.get(_VAL)
            elif tag == _w("shd"):
                fill = _hex(attrs.get(_FILL))
                paragraph.fill = fill if fill != "auto" else None
        elif parent == _TCPR and owner == _TC and tag == _w("shd") and self._cell_fills:
            fill = _hex(attrs.get(_FILL))
            self._cell_fills[-1] = fill if fill != "auto" else None
        elif parent == _RPR and owner == _R and self._runs:
            run = self._runs[-1]
            if tag == _w("rStyle"):
                run.style = attrs.get(_VAL)
            else:
                run.direct = look_property(tag, attrs, run.direct)

    def end(self, tag: str) -> None:
        depth = len(self._stack)
        self._stack.pop()
        if self._skip_at is not None:
            if depth == self._skip_at:
                self._skip_at = None
            return
        if self._props_at is not None:
            if depth == self._props_at:
                self._props_at = None
            return
        if tag == _T:
            self._in_text = False
        elif tag == _R and self._runs and (not self._paragraphs or self._runs[-1].paragraph is self._paragraphs[-1]):
            self._finish_run(self._runs.pop())
        elif tag == _TC and self._cell_fills:
            self._cell_fills.pop()
        elif tag == _P and self._paragraphs:
            paragraph = self._paragraphs.pop()
            while self._runs and self._runs[-1].paragraph is paragraph:  # a run left open by broken markup
                self._finish_run(self._runs.pop())
            self.lines[paragraph.slot] = "".join(paragraph.pieces)

    def _finish_run(self, run: _Run) -> None:
        paragraph = run.paragraph
        look = self.styles.run_look(paragraph.style, run.style, run.direct)
        cell = next((fill for fill in reversed(self._cell_fills) if fill), None)
        reason = invisible_reason(look, paragraph.fill or cell or self.page)
        if reason is None:
            paragraph.pieces.extend(run.pieces)
            return
        text = "".join(run.pieces).strip()
        if not text:
            return
        if self.removed and self.removed[-1][0] == reason and self._last_removed_paragraph == paragraph.slot:
            self.removed[-1] = (reason, self.removed[-1][1] + text)
        else:
            self.removed.append((reason, text))
        self._last_removed_paragraph = paragraph.slot

    def text(self, data: str) -> None:
        if not self._in_text or self._skip_at is not None or self._props_at is not None:
            return
        target = self._target()
        if target is not None:
            self._count_chars(len(data))
            target.append(data)

    def removed_summary(self) -> list[str]:
        shown = []
        for reason, text in self.removed[:_MAX_REMOVED_LISTED]:
            clipped = text if len(text) <= _MAX_REMOVED_SHOWN_CHARS else text[:_MAX_REMOVED_SHOWN_CHARS] + "…"
            shown.append(f"{reason}（{len(text)} 字）：“{clipped}”")
        if len(self.removed) > _MAX_REMOVED_LISTED:
            shown.append(f"另有 {len(self.removed) - _MAX_REMOVED_LISTED} 处")
        return shown
