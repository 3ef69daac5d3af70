"""The teacher's side of the student chat: class materials (parsed in the sandbox, cut into passages, tokenised
for BM25), the school's blocked words, and what the class asks (analytics)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from services.web.actor import Actor
from services.web.ingest import UploadLimits
from services.web.ingest.material import MaterialText
from services.web.ingest.names import display_filename
from services.web.ingest.sandbox import parse_bounded
from shared.chat.retrieval import chunk_text, tokenize
from shared.chat.wordfilter import WordFilter
from shared.models import BlockedWord, ChatChunk, ChatMaterial, ChatTurn, Classroom, Student, TurnStatus

MAX_WORD_CHARS = 50


def read_material(filename: str, data: bytes, limits: UploadLimits) -> MaterialText:
    return parse_bounded("services.web.ingest.material:parse_material", (filename, data, limits), limits,
                         upload_name=display_filename(filename))


def add_material(session: Session, who: Actor, classroom: Classroom, material: MaterialText) -> ChatMaterial:
    row = ChatMaterial(classroom_id=classroom.id, title=material.title, uploaded_by_id=who.user_id)
    session.add(row)
    session.flush()
    chunks = chunk_text(material.text)
    for ordinal, text in enumerate(chunks, start=1):
        session.add(ChatChunk(material_id=row.id, ordinal=ordinal, text=text, tokens=" ".join(tokenize(text))))
    who.record(session, "chat.material_added", object_type="chat_material", object_id=row.id,
               classroom_id=classroom.id, chunks=len(chunks), chars=len(material.text))
    return row


def class_materials(session: Session, classroom_id: int) -> list[tuple[ChatMaterial, int]]:
    return [(m, n) for m, n in session.execute(
        select(ChatMaterial, func.count(ChatChunk.id)).outerjoin(ChatChunk, ChatChunk.material_id == ChatMaterial.id)
        .where(ChatMaterial.classroom_id == classroom_id).group_by(ChatMaterial.id).order_by(ChatMaterial.id)
    )]


def remove_material(session: Session, who: Actor, classroom: Classroom, material_id: int) -> bool:
    material = session.scalar(select(ChatMaterial).where(ChatMaterial.id == material_id,
                                                         ChatMaterial.classroom_id == classroom.id))
    if material is None:
        return False
    session.execute(delete(ChatChunk).where(ChatChunk.material_id == material.id))
    session.delete(material)
    who.record(session, "chat.material_removed", object_type="chat_material", object_id=material_id,
               classroom_id=classroom.id)
    return True


def add_blocked_word(session: Session, who: Actor, school_id: int, raw: str) -> str:
    """Add a word to the school's list; ValueError with the reason in Chinese."""
    word = raw.strip()
    if not word:
        raise ValueError("请填写要屏蔽的词语。")
    if len(word) > MAX_WORD_CHARS:
        raise ValueError(f"屏蔽词不能超过 {MAX_WORD_CHARS} 个字。")
    if not WordFilter([word]).words:
        raise ValueError("屏蔽词不能只有标点或空白。")
    exists = session.scalar(select(BlockedWord.id).where(BlockedWord.school_id == school_id, BlockedWord.word == word))
    if exists is None:
        session.add(BlockedWord(school_id=school_id, word=word))
        who.record(session, "chat.word_added", object_type="school", object_id=school_id)
    return word


def school_words(session: Session, school_id: int) -> list[str]:
    return list(session.scalars(select(BlockedWord.word).where(BlockedWord.school_id == school_id)
                                .order_by(BlockedWord.word)))


@dataclass
class ChatAnalytics:
    per_student: list[tuple[Student, int]]  # every roster student with their question count, most first
    per_topic: list[tuple[str, int]]
    per_day: list[tuple[str, int]]
    most_asked: list[tuple[str, int]]
    never_asked: list[Student]
    blocked: list[ChatTurn] = field(default_factory=list)  # blocked, refused and failed turns, newest first
    total: int = 0
    names: dict[int, str] = field(default_factory=dict)  # student id → name


def class_analytics(session: Session, classroom: Classroom, *, top: int = 10) -> ChatAnalytics:
    students = list(session.scalars(select(Student).where(Student.classroom_id == classroom.id)
                                    .order_by(Student.student_number, Student.name)))
    turns = list(session.scalars(select(ChatTurn).where(ChatTurn.classroom_id == classroom.id)
                                 .order_by(ChatTurn.created_at.desc(), ChatTurn.id.desc())))
    counts = Counter(turn.student_id for turn in turns)
    per_student = sorted(((s, counts[s.id]) for s in students), key=lambda pair: -pair[1])
    questions = Counter(" ".join(turn.question.split()) for turn in turns)
    days = Counter(turn.created_at.date().isoformat() for turn in turns)
    return ChatAnalytics(
        per_student=per_student,
        per_topic=Counter(turn.topic for turn in turns).most_common(),
        per_day=sorted(days.items()),
        most_asked=questions.most_common(top),
        never_asked=[s for s in students if not counts[s.id]],
        blocked=[t for t in turns if t.status in (TurnStatus.blocked, TurnStatus.refused, TurnStatus.failed)],
        total=len(turns),
        names={s.id: s.name for s in students},
    )
