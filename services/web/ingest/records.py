"""Plain records passed between the upload parser and the web app."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RosterEntry:
    """A student already on the class roster, as the web app passes it in for matching."""

    student_id: int
    name: str
    student_number: str | None = None


@dataclass(frozen=True)
class RosterRow:
    """One student read from a roster file (not yet in the database)."""

    name: str
    student_number: str | None = None


@dataclass(frozen=True)
class UploadProblem:
    """Something the teacher must fix before the upload can be imported; ``source`` names file and row."""

    source: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}：{self.message}"


@dataclass
class PreviewItem:
    """One essay as it would be imported; ``problems`` holds what is wrong with this essay only, ``removed``
    the invisible text (hidden, tiny or background-coloured) that was dropped from its document."""

    source: str
    student_id: int | None
    student_name: str
    title: str | None
    text: str
    char_count: int
    problems: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


@dataclass
class EssayPreview:
    """Everything read from one upload.

    ``problems`` is the complete list (every item problem is repeated there with its source, plus problems
    that belong to no item, such as unreadable files); ``missing`` are roster students without an essay.
    """

    items: list[PreviewItem] = field(default_factory=list)
    problems: list[UploadProblem] = field(default_factory=list)
    missing: list[RosterEntry] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True only when every essay belongs to exactly one roster student and nothing needs fixing."""
        return (
            bool(self.items)
            and not self.problems
            and all(item.student_id is not None and not item.problems for item in self.items)
        )
