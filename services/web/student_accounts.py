"""Student accounts: a teacher makes a one-time code for a roster student; the student redeems it for a sign-in.

Only the code's hash is stored. A new code for the same student revokes the unused ones; redeeming a code when
the student already has an account sets that account's username and password again (a forgotten password).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.web.actor import Actor
from shared.accounts import AccountError, check_password, clean_username, end_sessions
from shared.models import Classroom, Role, Student, StudentAccess, StudentCode, User
from shared.models.base import utcnow
from shared.models.org import username_key

# No 0/O, 1/I/L: read aloud or copied from paper without mistakes. 10 characters of 31: about 50 bits.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 10


def hash_code(code: str) -> str:
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()


def normalise_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def student_access(session: Session, classroom_id: int) -> StudentAccess:
    """The class's settings (both closed until the teacher opens them)."""
    access = session.get(StudentAccess, classroom_id)
    return access or StudentAccess(classroom_id=classroom_id, grades_open=False, chat_open=False)


def set_student_access(session: Session, who: Actor, classroom: Classroom, *, grades_open: bool,
                       chat_open: bool) -> None:
    access = session.get(StudentAccess, classroom.id)
    if access is None:
        access = StudentAccess(classroom_id=classroom.id)
        session.add(access)
    access.grades_open, access.chat_open, access.updated_at = grades_open, chat_open, utcnow()
    who.record(session, "student.access_set", object_type="classroom", object_id=classroom.id,
               grades_open=grades_open, chat_open=chat_open)


def issue_code(session: Session, who: Actor, student: Student, days: int) -> str:
    """A new one-time code for ``student`` (shown once); earlier unused codes stop working."""
    revoke_codes(session, who, student, audit=False)
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    session.add(StudentCode(student_id=student.id, code_hash=hash_code(code),
                            expires_at=utcnow() + timedelta(days=days), created_by_id=who.user_id))
    who.record(session, "student.code_issued", object_type="student", object_id=student.id, days=days)
    return f"{code[:5]}-{code[5:]}"


def revoke_codes(session: Session, who: Actor, student: Student, *, audit: bool = True) -> int:
    result = session.execute(
        update(StudentCode).where(StudentCode.student_id == student.id, StudentCode.used_at.is_(None),
                                  StudentCode.revoked_at.is_(None)).values(revoked_at=utcnow())
    )
    if audit:
        who.record(session, "student.code_revoked", object_type="student", object_id=student.id,
                   codes=result.rowcount or 0)
    return result.rowcount or 0


def live_code_students(session: Session, student_ids: list[int]) -> set[int]:
    """Which of these students hold a code that can still be redeemed."""
    if not student_ids:
        return set()
    return set(session.scalars(select(StudentCode.student_id).where(
        StudentCode.student_id.in_(student_ids), StudentCode.used_at.is_(None), StudentCode.revoked_at.is_(None),
        StudentCode.expires_at > utcnow(),
    )))


def redeem_code(session: Session, who: Actor, code: str, username: str, password: str) -> User:
    """The student account the code opens, with this username and password; AccountError saying what is wrong."""
    found = session.scalar(select(StudentCode).where(StudentCode.code_hash == hash_code(code)).with_for_update())
    if found is None or found.used_at or found.revoked_at or found.expires_at <= utcnow():
        raise AccountError("登录码无效、已使用、已作废或已过期，请向老师索取新的登录码。")
    student = session.get(Student, found.student_id)
    assert student is not None  # the code's row is deleted with its student
    name = clean_username(username)
    account = session.scalar(select(User).where(User.student_id == student.id))
    taken = session.scalar(select(User).where(User.username_key == username_key(name)))
    if taken is not None and taken is not account:
        raise AccountError("这个用户名已被使用，请换一个。")
    password_hash = check_password(password, name)
    if account is None:
        account = User(username=name, display_name=student.name, role=Role.student, password_hash=password_hash,
                       student_id=student.id, school_id=student.classroom.school_id, is_active=True)
        session.add(account)
    else:
        account.username, account.password_hash, account.is_active = name, password_hash, True
        end_sessions(account)
    found.used_at = utcnow()
    session.flush()
    who.record(session, "student.code_redeemed", object_type="student", object_id=student.id, user_id=account.id)
    return account


def set_account_active(session: Session, who: Actor, student: Student, active: bool) -> User | None:
    """Stop (or allow again) the student's sign-in; stopping ends every session at once. None: no account yet."""
    account = session.scalar(select(User).where(User.student_id == student.id))
    if account is None:
        return None
    if account.is_active != active:
        account.is_active = active
        end_sessions(account)
        who.record(session, "student.account_enabled" if active else "student.account_disabled",
                   object_type="student", object_id=student.id, user_id=account.id)
    return account
