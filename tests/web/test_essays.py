"""The essay page (escaping, highlights, audit of every view) and teacher review: override, accept, regrade."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from shared.models import AuditLog, Essay, EssayStatus, Grade, GradeSource
from tests.factories.world import TYPO, World
from tests.web.conftest import TaskRecorder, client_as, form


def _grades(sessions: sessionmaker[Session], essay_id: int) -> list[Grade]:
    with sessions() as session:
        return list(session.scalars(
            select(Grade).where(Grade.essay_id == essay_id).order_by(Grade.version)
            .options(selectinload(Grade.errors), selectinload(Grade.deductions))
        ))


def test_essay_page_shows_highlights_scores_evidence_deductions_and_is_audited(
    app: Flask, world: World, sessions: sessionmaker[Session]
) -> None:
    client = client_as(app, world.users["admin"])
    page = client.get(f"/essays/{world.essay}").get_data(as_text=True)
    assert f'<mark class="err err-typo" id="m1" title="错别字：{TYPO} → 眼睛（“睛”误写为“晴”）">' \
           f'<a href="#e1">{TYPO}</a>' in page
    assert 'id="e1"' in page and "眼睛" in page
    assert "读书使人明智</blockquote>" in page and "字数不足" in page and "观点明确" in page
    assert "第 1 版（模型）" in page
    with sessions() as session:
        viewed = session.scalars(select(AuditLog).where(AuditLog.action == "essay.view",
                                                        AuditLog.object_id == world.essay)).all()
    assert [row.actor_id for row in viewed] == [world.users["admin"]]


def test_student_html_is_always_escaped(app: Flask, world: World) -> None:
    client = client_as(app, world.users["owner"])
    page = client.get(f"/essays/{world.flagged_essay}").get_data(as_text=True)
    assert "<script>alert" not in page and "<b>加粗</b>" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page and "&lt;b&gt;加粗&lt;/b&gt;" in page
    api = app.test_client().get(f"/api/v1/essays/{world.flagged_essay}",
                                headers={"Authorization": f"Bearer {world.tokens['owner']}"})
    assert api.json["text"].count("<script>") == 1, "the API returns the text as data (JSON), unchanged"


def test_flags_are_shown_for_review_and_accepting_clears_them_with_an_audit_row(
    app: Flask, world: World, sessions: sessionmaker[Session]
) -> None:
    client = client_as(app, world.users["owner"])
    page = client.get(f"/essays/{world.flagged_essay}").get_data(as_text=True)
    assert "需要教师复核" in page and "疑似提示注入" in page
    results = client.get(f"/assignments/{world.assignment}/results").get_data(as_text=True)
    assert "⚑ 1" in results
    assert client.post(f"/essays/{world.flagged_essay}/accept", data=form()).status_code == 303
    with sessions() as session:
        assert session.get(Essay, world.flagged_essay).flags == []
        row = session.scalar(select(AuditLog).where(AuditLog.action == "essay.accept_flags",
                                                    AuditLog.object_id == world.flagged_essay))
    assert row is not None and row.details == {"flags": 1}
    assert "需要教师复核" not in client.get(f"/essays/{world.flagged_essay}").get_data(as_text=True)


def test_override_adds_version_2_as_teacher_and_keeps_version_1(
    app: Flask, world: World, sessions: sessionmaker[Session]
) -> None:
    client = client_as(app, world.users["owner"])
    response = client.post(f"/essays/{world.essay}/override", data=form(
        score_content="18", score_expression="16", score_development="14", comment="论证充分，语言流畅。",
        reason="复核后上调内容分",
    ))
    assert response.status_code == 303
    first, second = _grades(sessions, world.essay)
    assert (first.version, first.source, first.total) == (1, GradeSource.model, 36)
    assert first.dimension_scores == {"content": 15, "expression": 14, "development": 10}
    assert (second.version, second.source, second.created_by) == (2, GradeSource.teacher, world.users["owner"])
    assert second.dimension_scores == {"content": 18, "expression": 16, "development": 14}
    assert second.bands == {"content": "一等", "expression": "一等", "development": "二等"}
    assert second.raw_total == 48 and second.total == 48 - 3, "deductions are copied and applied"
    assert second.comment == "论证充分，语言流畅。" and second.reason == "复核后上调内容分"
    assert [(e.type, e.original) for e in second.errors] == [("错别字", TYPO)]
    assert sorted(d.rule for d in second.deductions) == ["length", "typo"]
    page = client.get(f"/essays/{world.essay}").get_data(as_text=True)
    assert "第 2 版（教师）" in page and "复核后上调内容分" in page
    with sessions() as session:
        audit = session.scalar(select(AuditLog).where(AuditLog.action == "grade.override",
                                                      AuditLog.object_id == world.essay))
    assert audit is not None and audit.details["grade_version"] == 2 and audit.details["previous_total"] == 36


def test_override_total_is_clamped_and_bad_scores_are_refused(
    app: Flask, world: World, sessions: sessionmaker[Session]
) -> None:
    client = client_as(app, world.users["owner"])
    low = client.post(f"/essays/{world.essay}/override", data=form(
        score_content="0", score_expression="1", score_development="0", reason="空白"))
    assert low.status_code == 303 and _grades(sessions, world.essay)[-1].total == 0
    for bad in ({"score_content": "21"}, {"score_content": "abc"}, {"reason": ""}):
        data = {"score_content": "10", "score_expression": "10", "score_development": "10", "reason": "x", **bad}
        response = client.post(f"/essays/{world.essay}/override", data=form(**data))
        assert response.status_code == 400
    assert len(_grades(sessions, world.essay)) == 2


def test_regrade_one_essay_requeues_it_with_a_conditional_update(
    app: Flask, world: World, sessions: sessionmaker[Session], tasks: TaskRecorder
) -> None:
    client = client_as(app, world.users["owner"])
    assert client.post(f"/essays/{world.essay}/regrade", data=form()).status_code == 303
    with sessions() as session:
        essay = session.get(Essay, world.essay)
        assert essay.status == EssayStatus.queued and essay.attempts == 0
    assert tasks.sent == [("grading.grade_batch", [[world.essay]])]
    again = client.post(f"/essays/{world.essay}/regrade", data=form(), follow_redirects=True)
    assert "无需重新评分" in again.get_data(as_text=True) and len(tasks.sent) == 1
    assert len(_grades(sessions, world.essay)) == 1, "the worker writes the next version, the web never does"


def test_regrade_the_whole_class(
    app: Flask, world: World, sessions: sessionmaker[Session], tasks: TaskRecorder
) -> None:
    client = client_as(app, world.users["admin"])
    assert client.post(f"/assignments/{world.assignment}/regrade", data=form()).status_code == 303
    with sessions() as session:
        statuses = set(session.scalars(select(Essay.status).where(Essay.assignment_id == world.assignment)))
    assert statuses == {EssayStatus.queued}
    assert sorted(sum((args[0] for _, args in tasks.sent), [])) == sorted([world.essay, world.flagged_essay])
