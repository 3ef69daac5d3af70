"""The teacher's side of the student chat: class materials (parsed in the sandbox, cut into passages, tokenised
for BM25), the school's blocked words, and what the class asks (analytics)."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from services.web.actor import Actor
from services.web.ingest import UploadLimits
from services.web.ingest.material import MaterialText
from services.web.ingest.names import display_filename
from services.web.ingest.sandbox import parse_bounded
from shared.chat.retrieval import chunk_text, tokenize
from shared.chat.wordfilter import WordFilter
from shared.models import BlockedWord, ChatChunk, ChatMaterial, Classroom

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
