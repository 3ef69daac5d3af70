"""The one place that decides who may see which object: query scopes and get-or-404 helpers.

A teacher sees the classes they teach; a school admin every class of their school; a sysadmin all.
Anything outside the user's scope is answered with 404, as if it did not exist.
"""

from __future__ import annotations

from flask import abort
from sqlalchemy import ColumnElement, Select, false, select, true
from sqlalchemy.orm import Session

from shared.models import Assignment, Classroom, Essay, ReportJob, Role, School, Student, User


def is_admin(user: User) -> bool:
    return user.role in (Role.school_admin, Role.sysadmin)


def classroom_scope(user: User) -> ColumnElement[bool]:
    """A WHERE clause on Classroom limiting it to what ``user`` may see."""
    if user.role == Role.sysadmin:
        return true()
    if user.role == Role.school_admin:
        return Classroom.school_id == user.school_id if user.school_id is not None else false()
    if user.role == Role.student:
        return false()  # a student reaches their own records through services/web/views/student.py only
    return Classroom.teacher_id == user.id


def school_scope(user: User) -> ColumnElement[bool]:
    """A WHERE clause on School: a school admin's own school, every school for a sysadmin."""
    if user.role == Role.sysadmin:
        return true()
    if user.role == Role.school_admin and user.school_id is not None:
        return School.id == user.school_id
    return false()


def visible_classrooms(user: User) -> Select[tuple[Classroom]]:
    return select(Classroom).where(classroom_scope(user)).order_by(Classroom.name)


def visible_schools(user: User) -> Select[tuple[School]]:
    return select(School).where(school_scope(user)).order_by(School.name)


def assignable_teachers(user: User) -> Select[tuple[User]]:
    """Who may be made the teacher of a new class by ``user``: themself, or for admins their school's staff."""
    query = select(User).where(User.is_active.is_(True), User.role != Role.sysadmin).order_by(User.display_name)
    if user.role == Role.sysadmin:
        return query
    if user.role == Role.school_admin and user.school_id is not None:
        return query.where(User.school_id == user.school_id)
    return query.where(User.id == user.id)


def get_classroom_or_404(session: Session, user: User, classroom_id: int) -> Classroom:
    classroom = session.scalar(select(Classroom).where(Classroom.id == classroom_id, classroom_scope(user)))
    if classroom is None:
        abort(404)
    return classroom


def get_student_or_404(session: Session, user: User, classroom: Classroom, student_id: int) -> Student:
    """A student of a class the caller has already been allowed to see."""
    get_classroom_or_404(session, user, classroom.id)
    student = session.scalar(select(Student).where(Student.id == student_id, Student.classroom_id == classroom.id))
    if student is None:
        abort(404)
    return student


def get_assignment_or_404(session: Session, user: User, assignment_id: int) -> Assignment:
    assignment = session.scalar(
        select(Assignment)
        .join(Classroom, Assignment.classroom_id == Classroom.id)
        .where(Assignment.id == assignment_id, classroom_scope(user))
    )
    if assignment is None:
        abort(404)
    return assignment


def get_essay_or_404(session: Session, user: User, essay_id: int) -> Essay:
    essay = session.scalar(
        select(Essay)
        .join(Assignment, Essay.assignment_id == Assignment.id)
        .join(Classroom, Assignment.classroom_id == Classroom.id)
        .where(Essay.id == essay_id, classroom_scope(user))
    )
    if essay is None:
        abort(404)
    return essay


def get_school_or_404(session: Session, user: User, school_id: int) -> School:
    school = session.scalar(select(School).where(School.id == school_id, school_scope(user)))
    if school is None:
        abort(404)
    return school


def get_report_job_or_404(session: Session, user: User, job_id: int) -> ReportJob:
    """A class report follows its class's scope; a school report needs the school's admin (or a sysadmin)."""
    job = session.get(ReportJob, job_id)
    if job is None:
        abort(404)
    if job.assignment_id is not None:
        get_assignment_or_404(session, user, job.assignment_id)
    elif job.classroom_id is not None:
        get_classroom_or_404(session, user, job.classroom_id)
    elif job.school_id is None or not is_admin(user):
        abort(404)
    else:
        get_school_or_404(session, user, job.school_id)
    return job


def get_any_student_or_404(session: Session, user: User, student_id: int) -> Student:
    """A student of any class the caller may see (for admin actions reached by the student's id alone)."""
    student = session.scalar(
        select(Student).join(Classroom, Student.classroom_id == Classroom.id)
        .where(Student.id == student_id, classroom_scope(user))
    )
    if student is None:
        abort(404)
    return student
