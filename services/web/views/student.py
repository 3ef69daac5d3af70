"""What a student sees: their own essays (grades when released), training plan and the Q&A chat; and the page
where a student turns a teacher's one-time code into a sign-in. Every query starts from ``g.user.student_id``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, abort, jsonify, redirect, render_template, request, stream_with_context, url_for
from sqlalchemy import select

from services.web.chat_service import QuestionRejected, ask, current_session, session_turns, sse_event
from services.web.context import db, session_factory, settings, task_sender
from services.web.guards import actor, student_required, user
from services.web.login_limit import claim_attempt, clear_attempts
from services.web.student_accounts import redeem_code
from services.web.views.auth import establish_session
from shared.accounts import AccountError
from shared.chat.student_records import chat_open, grades_released, latest_plan, own_essays
from shared.models import ChatTurn, Student
from shared.models.base import utcnow
from shared.models.chat import FINISHED

bp = Blueprint("student", __name__)

POLL_S = 0.15  # how often the stream looks at the answer the worker is appending to
KEEPALIVE_S = 15
STREAM_LIMIT_S = 300  # then the browser reconnects (EventSource does) and carries on from Last-Event-ID


def _student() -> Student:
    student = db().get(Student, user().student_id)
    if student is None:
        abort(403)
    return student


@bp.route("/student/join", methods=["GET", "POST"])
def join() -> Any:
    """Redeem a one-time code: choose a username and password; signs the student in."""
    if request.method == "GET":
        return render_template("student/join.html", values={}, error=None)
    values = {"username": request.form.get("username", "").strip()}
    session = db()
    who = actor()
    # Guessing codes costs the same throttle as guessing passwords (per address).
    if not claim_attempt(session, "student-code", who.ip):
        session.commit()
        abort(429)
    try:
        account = redeem_code(session, who, request.form.get("code", ""), values["username"],
                              request.form.get("password", ""))
    except AccountError as exc:
        session.rollback()
        who.record(session, "student.code_refused")
        session.commit()
        return render_template("student/join.html", values=values, error=str(exc)), 400
    clear_attempts(session, "student-code", who.ip)
    session.commit()
    establish_session(account)
    return redirect(url_for("student.home"))


@bp.get("/student")
@student_required
def home() -> Any:
    session = db()
    student = _student()
    return render_template(
        "student/home.html", student=student, essays=own_essays(session, student),
        grades_open=grades_released(session, student.classroom_id), plan=latest_plan(session, student),
        chat_open=chat_open(session, student.classroom_id),
    )


@bp.get("/student/essays/<int:essay_id>")
@student_required
def essay(essay_id: int) -> Any:
    session = db()
    student = _student()
    found = next((e for e in own_essays(session, student) if e.id == essay_id), None)
    if found is None:
        abort(404)
    return render_template("student/essay.html", essay=found,
                           grades_open=grades_released(session, student.classroom_id))


def _chat_student() -> Student:
    student = _student()
    if not chat_open(db(), student.classroom_id):
        abort(403)
    return student


@bp.get("/student/chat")
@student_required
def chat() -> Any:
    session = db()
    student = _student()
    if not chat_open(session, student.classroom_id):
        return render_template("student/chat_closed.html"), 403
    current = current_session(session, student.id, settings().chat_idle_minutes, create=False)
    turns = session_turns(session, current.id) if current else []
    return render_template("student/chat.html", turns=turns, finished={str(s) for s in FINISHED})


@bp.post("/student/chat/ask")
@student_required
def ask_question() -> Any:
    session = db()
    student = _chat_student()
    try:
        turn = ask(session, actor(), student, user().school_id, request.form.get("question", ""), settings(),
                   task_sender())
    except QuestionRejected as exc:
        return jsonify(error=str(exc)), 400
    session.commit()
    return jsonify(_turn_json(turn)), 201


@bp.post("/student/chat/new")
@student_required
def new_chat() -> Any:
    """Start a fresh conversation: the current one is closed (it ages out with the retention rules)."""
    session = db()
    student = _chat_student()
    current = current_session(session, student.id, settings().chat_idle_minutes, create=False)
    if current is not None:
        # Just past the idle time: closed now, and purged with the retention rules like any idle conversation.
        current.last_active_at = utcnow() - timedelta(minutes=settings().chat_idle_minutes, seconds=1)
        actor().record(session, "chat.session_closed", object_type="chat_session", object_id=current.id)
        session.commit()
    return redirect(url_for("student.chat"))


def _own_turn(turn_id: int) -> ChatTurn:
    turn = db().scalar(select(ChatTurn).where(ChatTurn.id == turn_id, ChatTurn.student_id == user().student_id))
    if turn is None:
        abort(404)
    return turn


@bp.get("/student/chat/turns/<int:turn_id>")
@student_required
def turn_state(turn_id: int) -> Any:
    _chat_student()
    return jsonify(_turn_json(_own_turn(turn_id)))


@bp.get("/student/chat/turns/<int:turn_id>/stream")
@student_required
def stream(turn_id: int) -> Any:
    """Server-Sent Events: ``token`` events with the answer's new text as the worker appends it, then ``done``.

    The worker writes the growing answer to the turn's row; this polls the row, so the same relay works with Redis
    and in the embedded (SQLite) mode, and a reloaded page picks up where the answer is (``from`` / Last-Event-ID).
    """
    _chat_student()
    turn = _own_turn(turn_id)
    offset = max(_int(request.args.get("from")), _int(request.headers.get("Last-Event-ID")))
    sessions = session_factory()
    turn_id = turn.id
    db().close()

    def events() -> Iterator[str]:
        nonlocal offset
        started = last_sent = time.monotonic()
        yield "retry: 1000\n\n"
        while True:
            with sessions() as session:
                row = session.get(ChatTurn, turn_id)
                if row is None:
                    yield sse_event("done", json.dumps({"status": "failed", "answer": "", "notice": "对话已删除"}))
                    return
                answer, status, state = row.answer, row.status, _turn_json(row)
            if len(answer) > offset:
                yield f"id: {len(answer)}\n" + sse_event(
                    "token", json.dumps({"offset": offset, "text": answer[offset:]}, ensure_ascii=False))
                offset = len(answer)
                last_sent = time.monotonic()
            elif time.monotonic() - last_sent > KEEPALIVE_S:
                yield ": waiting\n\n"  # a comment line: keeps proxies from closing a stream that waits for a batch
                last_sent = time.monotonic()
            if status in FINISHED:
                yield sse_event("done", json.dumps(state, ensure_ascii=False))
                return
            if time.monotonic() - started > STREAM_LIMIT_S:
                return
            time.sleep(POLL_S)

    return Response(stream_with_context(events()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _int(value: str | None) -> int:
    try:
        return max(0, min(int(value or 0), 10**7))
    except ValueError:
        return 0


def _turn_json(turn: ChatTurn) -> dict[str, Any]:
    return {"id": turn.id, "question": turn.question, "answer": turn.answer, "status": str(turn.status),
            "notice": turn.notice, "sources": turn.sources or [], "topic": turn.topic,
            "finished": turn.status in FINISHED}

