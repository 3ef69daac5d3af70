"""The 素材 library (``shared/prompts/materials/*.yaml``): cases, quotations and poems with theme tags, a summary in
our own words, where each comes from and a source a teacher can check. Validated on load; a school's own entries
(``SchoolMaterial`` rows) join it as ``school-<id>``.

The model never writes an entry: it chooses ids from a schema enum built from retrieved entries (issue 20).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

logger = logging.getLogger(__name__)

LIBRARY_DIR = Path(__file__).resolve().parent / "materials"
# The common 高考 themes; every entry carries at least one, and 立意 angles name one of them.
THEMES = ("家国情怀", "青春成长", "科技与人文", "传统文化", "奋斗与担当", "人与自然", "诚信与法治", "读书与思考")
KINDS = {"case": "事例", "quotation": "名言", "poem": "诗词"}
SCHOOL_PREFIX = "school-"
_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class LibraryError(ValueError):
    """The library is invalid; the message names the file, the entry and the problem."""


class Material(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=80)
    kind: Literal["case", "quotation", "poem"]
    title: str = Field(min_length=1, max_length=200)
    text: str = ""  # the quotation or lines themselves; empty for a case
    themes: tuple[str, ...] = Field(min_length=1)
    summary: str = Field(min_length=1, max_length=300)
    origin: str = Field(min_length=1, max_length=300)
    source: str = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _check(self) -> Material:
        if not (_ID.match(self.id) or self.id.startswith(SCHOOL_PREFIX)):
            raise ValueError(f"id {self.id!r}: lowercase letters, digits and hyphens only")
        unknown = [theme for theme in self.themes if theme not in THEMES]
        if unknown:
            raise ValueError(f"unknown theme {'、'.join(unknown)} (known: {'、'.join(THEMES)})")
        if self.kind != "case" and not self.text.strip():
            raise ValueError(f"a {self.kind} needs its text")
        return self

    @property
    def kind_name(self) -> str:
        return KINDS[self.kind]

    def searchable(self) -> str:
        return " ".join((self.title, self.text, self.summary, self.origin, " ".join(self.themes)))


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    theme: str
    entries: list[dict[str, object]]


class Library(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: str  # digest of the files: a pick cached under another library version is not reused
    entries: tuple[Material, ...]

    def get(self, material_id: str) -> Material | None:
        return _index(self).get(material_id)

    def with_school(self, extra: Iterable[Material]) -> list[Material]:
        return [*self.entries, *extra]


_INDEXES: dict[str, dict[str, Material]] = {}


def _index(library: Library) -> dict[str, Material]:
    index = _INDEXES.get(library.version)
    if index is None:
        index = _INDEXES[library.version] = {entry.id: entry for entry in library.entries}
    return index


def _normalised(text: str) -> str:
    return re.sub(r"[\s，。、；：！？,.;:!?“”\"'‘’《》…—·]+", "", text)


def check_duplicates(entries: Iterable[tuple[str, Material]]) -> list[str]:
    """Problems with (place, entry) pairs: an id, a title or a text that appears twice (punctuation ignored)."""
    problems: list[str] = []
    seen: dict[tuple[str, str], str] = {}
    for place, entry in entries:
        keys = [("id", entry.id), ("标题", _normalised(entry.title))]
        if entry.text:
            keys.append(("原文", _normalised(entry.text)))
        for what, key in keys:
            first = seen.setdefault((what, key), place)
            if first != place:
                problems.append(f"{place}：{what}与 {first} 重复（{entry.id}）")
    return problems


def load_library(directory: Path = LIBRARY_DIR) -> Library:
    return _load(directory)


@lru_cache(maxsize=4)
def _load(directory: Path) -> Library:
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise LibraryError(f"素材库 {directory} 中没有 .yaml 文件")
    digest = hashlib.sha256()
    placed: list[tuple[str, Material]] = []
    for path in files:
        raw = path.read_bytes()
        digest.update(path.name.encode() + b"\0" + raw)
        try:
            data = _File.model_validate(yaml.safe_load(raw.decode("utf-8")))
        except (UnicodeDecodeError, yaml.YAMLError, ValidationError) as exc:
            raise LibraryError(f"素材库文件 {path.name} 无效：{exc}") from exc
        for number, item in enumerate(data.entries, start=1):
            try:
                placed.append((f"{path.name} 第 {number} 条", Material.model_validate(item)))
            except ValidationError as exc:
                raise LibraryError(f"素材库文件 {path.name} 第 {number} 条（{item.get('id')}）无效：{exc}") from exc
    problems = check_duplicates(placed)
    if problems:
        raise LibraryError("素材库有重复条目：" + "；".join(problems))
    library = Library(version=digest.hexdigest()[:16], entries=tuple(entry for _, entry in placed))
    logger.debug("loaded %s 素材 entries (library %s)", len(library.entries), library.version)
    return library
