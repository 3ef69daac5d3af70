"""Student accounts and the chat on the web side: codes, what a student may reach, the checks on a question, the
relay of an answer (SSE), class materials through the upload sandbox, blocked words, and the analytics page."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from shared.models import (
    AuditLog,
    ChatChunk,
    ChatMaterial,
    ChatTurn,
    StudentAccess,
    TurnStatus,
    User,
    transaction,
)
from shared.tasks import CHAT_TASK
from tests.factories.world import World
from tests.web.conftest import TaskRecorder, client_as, form

STUDENT_PASSWORD = "moon-river-2024"


@dataclass
class Students:
    zhang: int  # user id of 张三 (world.students[0], owner of world.essay)
    li: int  # user id of 李四 (world.students[1])


def _issue_code(app: Flask, world: World, student_id: int) -> str:
    page = client_as(app, world.users["owner"]).post(
        f"/classes/{world.classroom}/students/{student_id}/code", data=form())
    assert page.status_code == 200
    match = re.search(r'id="new-code".*?<strong class="code">([A-Z0-9-]+)</strong>', page.get_data(as_text=True), re.S)
    assert match, "the new code is shown once on the page"
    return match.group(1)


def _join(app: Flask, code: str, username: str) -> int:
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["csrf"] = "test-csrf-token-0123456789"
    response = client.post("/student/join", data=form(code=code, username=username, password=STUDENT_PASSWORD))
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"].endswith("/student")
    return response.status_code


@pytest.fixture()
def students(app: Flask, world: World, sessions: sessionmaker[Session]) -> Iterator[Students]:
    for index, username in ((0, f"zhang-{world.tag}"), (1, f"li-{world.tag}")):
        _join(app, _issue_code(app, world, world.students[index]), username)
    with sessions() as session:
        ids = {u.student_id: u.id for u in session.scalars(select(User).where(User.student_id.in_(world.students)))}
    yield Students(zhang=ids[world.students[0]], li=ids[world.students[1]])


def _open(sessions: sessionmaker[Session], classroom_id: int, *, grades: bool, chat: bool) -> None:
    with transaction(sessions) as session:
        access = session.get(StudentAccess, classroom_id) or StudentAccess(classroom_id=classroom_id)
        access.grades_open, access.chat_open = grades, chat
        session.add(access)


def test_a_code_works_once_and_a_new_code_revokes_the_old(app: Flask, world: World, sessions: sessionmaker[Session]):
    first = _issue_code(app, world, world.students[0])
    second = _issue_code(app, world, world.students[0])
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["csrf"] = "test-csrf-token-0123456789"
    refused = client.post("/student/join", data=form(code=first, username=f"z-{world.tag}", password=STUDENT_PASSWORD))
    assert refused.status_code == 400 and "登录码无效" in refused.get_data(as_text=True)
    _join(app, second.lower().replace("-", ""), f"z-{world.tag}")  # case and the dash do not matter
    again = client.post("/student/join", data=form(code=second, username=f"z2-{world.tag}", password=STUDENT_PASSWORD))
    assert again.status_code == 400
    with sessions() as session:
        accounts = session.scalars(select(User).where(User.student_id == world.students[0])).all()
        assert [(a.username, str(a.role), a.school_id) for a in accounts] == [(f"z-{world.tag}", "student",
                                                                               world.school_a)]


def test_a_student_sees_only_their_own_essays_and_grades_once_released(
    app: Flask, world: World, students: Students, sessions: sessionmaker[Session],
) -> None:
    zhang = client_as(app, students.zhang)
    home = zhang.get("/student").get_data(as_text=True)
    assert "读书的意义" in home and "我的梦想" not in home  # 李四's essay
    assert "老师还没有公布成绩" in home
    page = zhang.get(f"/student/essays/{world.essay}").get_data(as_text=True)
    assert "眼晴" in page and 'id="my-grade"' not in page  # the text, no grade yet
    _open(sessions, world.classroom, grades=True, chat=False)
    page = zhang.get(f"/student/essays/{world.essay}").get_data(as_text=True)
    assert 'id="my-grade"' in page and "“眼晴” → “眼睛”" in page
    assert zhang.get(f"/student/essays/{world.flagged_essay}").status_code == 404  # 李四's
    assert zhang.get("/student/chat").status_code == 403  # chat still closed


def test_a_student_never_reaches_teacher_pages_or_the_api(app: Flask, world: World, students: Students) -> None:
    zhang = client_as(app, students.zhang)
    for url in (f"/classes/{world.classroom}", f"/essays/{world.essay}", f"/assignments/{world.assignment}",
                f"/assignments/{world.assignment}/results", "/admin/audit", "/admin/users", "/rubrics",
                f"/classes/{world.classroom}/chat-analytics", f"/classes/{world.classroom}/students-online",
                f"/essays/{world.essay}/feedback.pdf", "/marking"):
        assert zhang.get(url).status_code == 403, url
    assert zhang.post("/account/token", data=form()).status_code == 403
    assert zhang.get("/classes").status_code == 302  # home goes to the student's own page
    account = zhang.get("/account")
    assert account.status_code == 200 and "修改密码" in account.get_data(as_text=True)
    assert "API 令牌" not in account.get_data(as_text=True)


def test_teachers_never_reach_student_pages(app: Flask, world: World, students: Students) -> None:
    for key in ("owner", "colleague", "outsider", "admin", "sysadmin"):
        client = client_as(app, world.users[key])
        for url in ("/student", "/student/chat", f"/student/essays/{world.essay}"):
            assert client.get(url).status_code == 403, (key, url)


def test_questions_are_checked_stored_audited_and_enqueued(
    app: Flask, world: World, students: Students, sessions: sessionmaker[Session], tasks: TaskRecorder,
) -> None:
    zhang = client_as(app, students.zhang)
    assert zhang.post("/student/chat/ask", data=form(question="作文开头怎么写")).status_code == 403  # closed
    _open(sessions, world.classroom, grades=True, chat=True)
    asked = zhang.post("/student/chat/ask", data=form(question="我的作文开头怎么改进？"))
    assert asked.status_code == 201 and asked.json["status"] == "queued" and asked.json["topic"] == "结构布局"
    assert tasks.sent == [(CHAT_TASK, [asked.json["id"]])]
    blocked = zhang.post("/student/chat/ask", data=form(question="作文里能写赌 博吗"))
    assert blocked.json["status"] == "blocked" and "不适宜" in blocked.json["notice"]
    owner = client_as(app, world.users["owner"])
    assert owner.post(f"/classes/{world.classroom}/chat-words", data=form(word="测试屏蔽词")).status_code == 302
    school_word = zhang.post("/student/chat/ask", data=form(question="作文能写测试屏蔽词吗"))
    assert school_word.json["status"] == "blocked"
    off_topic = zhang.post("/student/chat/ask", data=form(question="王者荣耀怎么上分"))
    assert off_topic.json["status"] == "refused" and "无关" in off_topic.json["notice"]
    assert zhang.post("/student/chat/ask", data=form(question="  ")).status_code == 400
    assert tasks.names() == [CHAT_TASK]  # only the first went to a worker
    with sessions() as session:
        turns = session.scalars(select(ChatTurn).where(ChatTurn.student_id == world.students[0])
                                .order_by(ChatTurn.id)).all()
        assert [str(t.status) for t in turns] == ["queued", "blocked", "blocked", "refused"]
        assert len({t.session_id for t in turns}) == 1
        audited = session.scalars(select(AuditLog.details).where(AuditLog.action == "chat.ask",
                                                                 AuditLog.object_id.in_([t.id for t in turns]))).all()
        assert sorted(d["status"] for d in audited) == ["blocked", "blocked", "queued", "refused"]
    # 李四 never sees 张三's turn
    li = client_as(app, students.li)
    assert li.get(f"/student/chat/turns/{asked.json['id']}").status_code == 404
    assert li.get(f"/student/chat/turns/{asked.json['id']}/stream").status_code == 404
    assert "我的作文开头怎么改进" not in li.get("/student/chat").get_data(as_text=True)


def test_the_rate_limit_refuses_past_the_hourly_count(app: Flask, world: World, students: Students,
                                                      sessions: sessionmaker[Session], tasks: TaskRecorder) -> None:
    _open(sessions, world.classroom, grades=False, chat=True)
    from services.web.state import app_state

    settings = app_state(app).settings
    original = settings.chat_questions_per_hour
    object.__setattr__(settings, "chat_questions_per_hour", 2)
    try:
        zhang = client_as(app, students.zhang)
        statuses = [zhang.post("/student/chat/ask", data=form(question=f"作文第{i}段怎么写")).json["status"]
                    for i in range(3)]
    finally:
        object.__setattr__(settings, "chat_questions_per_hour", original)
    assert statuses == ["queued", "queued", "refused"]
    assert len(tasks.sent) == 2


def test_the_stream_relays_the_stored_answer_from_an_offset(
    app: Flask, world: World, students: Students, sessions: sessionmaker[Session], tasks: TaskRecorder,
) -> None:
    _open(sessions, world.classroom, grades=False, chat=True)
    zhang = client_as(app, students.zhang)
    turn_id = zhang.post("/student/chat/ask", data=form(question="议论文怎么写")).json["id"]
    with transaction(sessions) as session:
        session.execute(update(ChatTurn).where(ChatTurn.id == turn_id).values(
            answer="先提出论点，再举例论证。", status=TurnStatus.done,
            sources=[{"kind": "material", "title": "《讲义》第1段"}]))
    body = zhang.get(f"/student/chat/turns/{turn_id}/stream?from=5").get_data(as_text=True)
    events = re.findall(r"event: (\w+)\ndata: (.*)\n", body)
    assert [name for name, _ in events] == ["token", "done"]
    assert json.loads(events[0][1]) == {"offset": 5, "text": "，再举例论证。"}
    done = json.loads(events[1][1])
    assert done["status"] == "done" and done["sources"][0]["title"] == "《讲义》第1段"
    page = zhang.get("/student/chat").get_data(as_text=True)  # after a reload the turn is on the page
    assert "先提出论点，再举例论证。" in page and "《讲义》第1段" in page


def test_materials_go_through_the_upload_checks(app: Flask, world: World, sessions: sessionmaker[Session]) -> None:
    owner = client_as(app, world.users["owner"])
    text = "议论文的开头要开门见山，提出论点。\n\n记叙文要写清楚时间、地点和人物。"
    from io import BytesIO

    ok = owner.post(f"/classes/{world.classroom}/chat-materials",
                    data=form(file=(BytesIO(text.encode("gb18030")), "写作讲义.txt")),
                    content_type="multipart/form-data")
    assert ok.status_code == 302
    bad = owner.post(f"/classes/{world.classroom}/chat-materials",
                     data=form(file=(BytesIO(b"%PDF-1.4 binary\x00\x01"), "讲义.docx")),
                     content_type="multipart/form-data")
    assert bad.status_code == 400 and "讲义.docx" in bad.get_data(as_text=True)
    with sessions() as session:
        materials = session.scalars(select(ChatMaterial).where(ChatMaterial.classroom_id == world.classroom)).all()
        assert [m.title for m in materials] == ["写作讲义"]
        chunks = session.scalars(select(ChatChunk).where(ChatChunk.material_id == materials[0].id)).all()
        assert [c.text for c in chunks] == [text.replace("\n\n", "\n")]
        assert "开门见山" in chunks[0].tokens.split()
    outsider = client_as(app, world.users["outsider"])
    assert outsider.post(f"/classes/{world.classroom}/chat-materials/{materials[0].id}/delete",
                         data=form()).status_code == 404
    assert owner.post(f"/classes/{world.classroom}/chat-materials/{materials[0].id}/delete",
                      data=form()).status_code == 302
    with sessions() as session:
        assert session.scalar(select(func.count(ChatChunk.id)).where(ChatChunk.material_id == materials[0].id)) == 0


def test_analytics_counts_questions_per_student_and_topic(
    app: Flask, world: World, students: Students, sessions: sessionmaker[Session], tasks: TaskRecorder,
) -> None:
    _open(sessions, world.classroom, grades=False, chat=True)
    zhang, li = client_as(app, students.zhang), client_as(app, students.li)
    for question in ("作文开头怎么写", "作文开头怎么写", "错别字怎么避免"):
        zhang.post("/student/chat/ask", data=form(question=question))
    li.post("/student/chat/ask", data=form(question="赌博的作文素材"))
    page = client_as(app, world.users["owner"]).get(f"/classes/{world.classroom}/chat-analytics")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "共 4 个问题" in html
    assert re.search(r"<td>张三</td><td class=\"num\">3</td>", html)
    assert re.search(r"<td>李四</td><td class=\"num\">1</td>", html)
    assert "从未提问：王五" in html
    assert re.search(r"<td>作文开头怎么写</td><td class=\"num\">2</td>", html)
    assert re.search(r"<td>结构布局</td><td class=\"num\">2</td>", html)
    today = html.split('id="per-day"')[1]
    assert re.search(r"<td class=\"num\">4</td><td>结构布局 2、字词标点 1、论证素材 1</td>", today)
    assert "赌博的作文素材" in html.split('id="blocked"')[1]
    for key in ("colleague", "outsider", "other_admin"):
        assert client_as(app, world.users[key]).get(f"/classes/{world.classroom}/chat-analytics").status_code == 404


def test_the_teacher_stops_and_restores_a_student_account(app: Flask, world: World, students: Students,
                                                          sessions: sessionmaker[Session]) -> None:
    zhang = client_as(app, students.zhang)
    assert zhang.get("/student").status_code == 200
    url = f"/classes/{world.classroom}/students/{world.students[0]}/account"
    assert client_as(app, world.users["outsider"]).post(url, data=form(active="0")).status_code == 404
    assert client_as(app, world.users["owner"]).post(url, data=form(active="0")).status_code == 302
    assert zhang.get("/student").status_code == 302  # signed out: the session no longer matches
    with sessions() as session:
        assert session.get(User, students.zhang).is_active is False
    login = app.test_client()
    with login.session_transaction() as sess:
        sess["csrf"] = "test-csrf-token-0123456789"
    refused = login.post("/login", data=form(username=f"zhang-{world.tag}", password=STUDENT_PASSWORD))
    assert refused.status_code == 401
    assert client_as(app, world.users["owner"]).post(url, data=form(active="1")).status_code == 302
    allowed = login.post("/login", data=form(username=f"zhang-{world.tag}", password=STUDENT_PASSWORD))
    assert allowed.status_code == 302
    assert client_as(app, students.zhang).get("/student").status_code == 200


def test_the_personal_data_export_holds_the_account_and_the_chat(
    app: Flask, world: World, students: Students, sessions: sessionmaker[Session], tasks: TaskRecorder,
) -> None:
    _open(sessions, world.classroom, grades=False, chat=True)
    client_as(app, students.zhang).post("/student/chat/ask", data=form(question="作文开头怎么写"))
    export = client_as(app, world.users["admin"]).get(f"/admin/students/{world.students[0]}/export")
    data = json.loads(export.get_data())
    assert data["account"]["username"] == f"zhang-{world.tag}"
    assert [(t["question"], t["status"]) for t in data["chat_turns"]] == [("作文开头怎么写", "queued")]


def test_an_idle_conversation_closes_and_a_new_one_starts(
    app: Flask, world: World, students: Students, sessions: sessionmaker[Session], tasks: TaskRecorder,
) -> None:
    from datetime import timedelta

    from shared.models import ChatSession
    from shared.models.base import utcnow

    _open(sessions, world.classroom, grades=False, chat=True)
    zhang = client_as(app, students.zhang)
    first = zhang.post("/student/chat/ask", data=form(question="作文开头怎么写")).json["id"]
    second = zhang.post("/student/chat/ask", data=form(question="作文结尾怎么写")).json["id"]
    with transaction(sessions) as session:
        turns = [session.get(ChatTurn, first), session.get(ChatTurn, second)]
        assert turns[0].session_id == turns[1].session_id
        idle = utcnow() - timedelta(minutes=app_settings(app).chat_idle_minutes + 1)
        session.get(ChatSession, turns[0].session_id).last_active_at = idle
    assert "作文开头怎么写" not in zhang.get("/student/chat").get_data(as_text=True)  # closed: not shown
    third = zhang.post("/student/chat/ask", data=form(question="论据怎么选")).json["id"]
    assert zhang.post("/student/chat/new", data=form()).status_code == 302
    fourth = zhang.post("/student/chat/ask", data=form(question="标点怎么用")).json["id"]
    with sessions() as session:
        chats = [session.get(ChatTurn, i).session_id for i in (first, third, fourth)]
    assert len(set(chats)) == 3  # idle, then 开始新对话: a new conversation each time
    page = zhang.get("/student/chat").get_data(as_text=True)
    assert "标点怎么用" in page and "论据怎么选" not in page


def app_settings(app: Flask):  # type: ignore[no-untyped-def]
    from services.web.state import app_state

    return app_state(app).settings


def test_a_student_reads_the_plan_with_its_exercises_and_the_cited_materials(
    app: Flask, world: World, students: Students, sessions: sessionmaker[Session],
) -> None:
    from tests.factories import add_training_plan

    material = {"id": "m1", "title": "苏轼贬谪黄州", "origin": "《宋史·苏轼传》", "source": "中华书局点校本"}
    exercise = {"title": "素材积累与化用", "detail": "每周摘抄三则。", "materials": [material]}
    area = {"kind": "dimension", "key": "development", "label": "发展等级", "reason": "低于全班 20 个百分点",
            "goal": "下次达到 12 分", "exercises": [exercise]}
    with transaction(sessions) as session:
        add_training_plan(session, world.students[0], focus_areas=[area], narrative="多读多写。")
    zhang = client_as(app, students.zhang)
    assert 'id="my-plan"' not in zhang.get("/student").get_data(as_text=True), "shown with released grades only"
    _open(sessions, world.classroom, grades=True, chat=False)
    home = zhang.get("/student").get_data(as_text=True)
    assert 'id="my-plan"' in home and "发展等级" in home and "素材积累与化用：每周摘抄三则。" in home
    assert "素材《苏轼贬谪黄州》（《宋史·苏轼传》；中华书局点校本）" in home
    assert "{&#39;" not in home and "{'" not in home, "no dictionary printed as text"


def test_a_question_asked_while_the_broker_is_away_is_kept_for_the_sweep(
    app: Flask, world: World, students: Students, sessions: sessionmaker[Session],
) -> None:
    from services.web.state import app_state

    class BrokerAway:
        def send_task(self, *_args: object, **_kwargs: object) -> None:
            raise ConnectionError("redis is away")

    _open(sessions, world.classroom, grades=True, chat=True)
    state = app_state(app)
    recorder, state.sender = state.sender, BrokerAway()
    try:
        asked = client_as(app, students.zhang).post("/student/chat/ask", data=form(question="议论文结尾怎么写？"))
    finally:
        state.sender = recorder
    assert asked.status_code == 201 and asked.json["status"] == "queued", "stored; the sweep sends it later"
    with sessions() as session:
        assert session.get(ChatTurn, asked.json["id"]).status == "queued"


def _pdf(pages: list[str]) -> bytes:
    """A PDF with one line of Chinese text a page (reportlab's STSong-Light, as the feedback sheets use)."""
    from io import BytesIO

    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    out = BytesIO()
    document = canvas.Canvas(out)
    for line in pages:
        document.setFont("STSong-Light", 12)
        if line:
            document.drawString(72, 720, line)
        document.showPage()
    document.save()
    return out.getvalue()


def test_a_pdf_material_is_read_in_the_sandbox_and_bad_ones_are_named(
    app: Flask, world: World, sessions: sessionmaker[Session],
) -> None:
    from io import BytesIO

    from services.web.ingest.pdf_reader import MAX_PDF_PAGES

    owner = client_as(app, world.users["owner"])
    url = f"/classes/{world.classroom}/chat-materials"

    def upload(data: bytes, name: str) -> Any:
        return owner.post(url, data=form(file=(BytesIO(data), name)), content_type="multipart/form-data")

    assert upload(_pdf(["议论文的论据要典型、真实。", "结尾要呼应开头。"]), "论据讲义.pdf").status_code == 302
    scanned = upload(_pdf(["", ""]), "扫描件.pdf")
    assert scanned.status_code == 400 and "扫描件.pdf" in scanned.get_data(as_text=True)
    assert "没有可提取的文字" in scanned.get_data(as_text=True)
    too_long = upload(_pdf([""] * (MAX_PDF_PAGES + 1)), "太长.pdf")
    assert too_long.status_code == 400 and f"超过 {MAX_PDF_PAGES} 页的上限" in too_long.get_data(as_text=True)
    broken = upload(b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\n%%EOF", "坏文件.pdf")
    assert broken.status_code == 400 and "坏文件.pdf" in broken.get_data(as_text=True)
    with sessions() as session:
        material = session.scalars(select(ChatMaterial).where(ChatMaterial.classroom_id == world.classroom,
                                                              ChatMaterial.title == "论据讲义")).one()
        chunks = session.scalars(select(ChatChunk).where(ChatChunk.material_id == material.id)).all()
        assert "论据要典型" in " ".join(c.text for c in chunks) and "呼应开头" in " ".join(c.text for c in chunks)
        titles = session.scalars(select(ChatMaterial.title).where(ChatMaterial.classroom_id == world.classroom)).all()
        assert sorted(titles) == ["论据讲义"], "nothing stored for the refused files"
