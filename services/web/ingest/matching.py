"""Find the roster student an essay belongs to: from a table row's 学号/姓名, or from a file name."""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from services.web.ingest.names import clean_person_name, clean_student_number, name_key, number_key
from services.web.ingest.records import RosterEntry

_NUMBER_TOKEN_RE = re.compile(r"[A-Za-z0-9]+")


@dataclass(frozen=True)
class Match:
    """The matched student, or None with the reason in Chinese."""

    student: RosterEntry | None
    problem: str | None = None


class RosterIndex:
    """The roster looked up by student number and by normalised name."""

    def __init__(self, roster: Sequence[RosterEntry]) -> None:
        self.entries = list(roster)
        self._by_number: dict[str, list[RosterEntry]] = defaultdict(list)
        self._by_name: dict[str, list[RosterEntry]] = defaultdict(list)
        for entry in self.entries:
            number = clean_student_number(entry.student_number or "")
            if number:
                self._by_number[number_key(number)].append(entry)
            key = name_key(entry.name)
            if key:
                self._by_name[key].append(entry)

    def match_row(self, name: str, number: str | None) -> Match:
        """Match by student number when the row has one that is on the roster, else by exact name."""
        name = clean_person_name(name)
        number = clean_student_number(number or "")
        if number:
            hits = self._by_number.get(number_key(number), [])
            if len(hits) > 1:
                return Match(None, f"名单中有 {len(hits)} 位学生的学号都是 {number}，请先修正班级名单")
            if hits:
                student = hits[0]
                if name and name_key(name) != name_key(student.name):
                    return Match(None, f"学号 {number} 在名单中是“{student.name}”，但这一行的姓名是“{name}”")
                return Match(student)
            if not name:
                return Match(None, f"名单中没有学号为 {number} 的学生")
        if not name:
            return Match(None, "缺少学生姓名")
        hits = self._by_name.get(name_key(name), [])
        if not hits:
            return Match(None, f"名单中没有学生“{name}”")
        if len(hits) > 1:
            return Match(None, f"名单中有 {len(hits)} 位学生叫“{name}”，请填写学号以区分")
        student = hits[0]
        if number and student.student_number:
            return Match(None, f"学号 {number} 与名单不符（名单中“{student.name}”的学号是 {student.student_number}）")
        return Match(student)

    def match_path(self, path: str) -> Match:
        """Match a file by the student number or roster name in its name (``2023001-张三_期中.docx``).

        Folder names are tried, innermost first, only when the file name itself names nobody.
        """
        parts = [part for part in path.split("/") if part]
        if not parts:
            return Match(None, "文件名中找不到名单里的学生姓名或学号")
        stem = parts[-1].rsplit(".", 1)[0] if "." in parts[-1][1:] else parts[-1]
        for candidate in [stem, *reversed(parts[:-1])]:
            match = self._match_stem(candidate)
            if match is not None:
                return match
        return Match(None, f"文件名“{stem}”中找不到名单里的学生姓名或学号，请把文件命名为“姓名.docx”或“学号-姓名.docx”")

    def _match_stem(self, stem: str) -> Match | None:
        """The match for one file or folder name, or None when it mentions no student at all."""
        folded = unicodedata.normalize("NFKC", stem)
        tokens = {number_key(token) for token in _NUMBER_TOKEN_RE.findall(folded)}
        by_number = [entry for token in tokens for entry in self._by_number.get(token, [])]
        by_name = self._names_in(name_key(stem))
        if len(by_number) > 1:
            listed = "、".join(f"{e.student_number}（{e.name}）" for e in by_number)
            return Match(None, f"文件名中出现了多个学号：{listed}，无法确定是哪位学生")
        if by_number:
            student = by_number[0]
            if by_name and all(entry.student_id != student.student_id for entry in by_name):
                written = "、".join(sorted({entry.name for entry in by_name}))
                return Match(
                    None, f"文件名中的学号 {student.student_number} 属于“{student.name}”，但文件名中的姓名是“{written}”"
                )
            return Match(student)
        if not by_name:
            return None
        if len(by_name) == 1:
            return Match(by_name[0])
        names = sorted({entry.name for entry in by_name})
        if len(names) == 1:
            return Match(None, f"名单中有 {len(by_name)} 位学生叫“{names[0]}”，请在文件名中加上学号")
        return Match(None, f"文件名中同时出现了 {'、'.join(names)}，无法确定是哪位学生")

    def _names_in(self, key: str) -> list[RosterEntry]:
        """Roster students whose name occurs in ``key``; a name inside a longer matched name does not count."""
        found = [name for name in self._by_name if name in key]
        longest = [name for name in found if not any(name != other and name in other for other in found)]
        return [entry for name in longest for entry in self._by_name[name]]
