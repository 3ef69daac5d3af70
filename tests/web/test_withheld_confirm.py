"""A flagged essay's model score is withheld (待复核) on the page, in the results table and in the API until its
teacher, having read it, accepts the flags: that confirms the model's score as a teacher version."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from shared.models import Grade, GradeSource, transaction
from tests.factories.world import World
from tests.web.conftest import client_as, form


def _withhold(sessions: sessionmaker[Session], essay_id: int) -> int:
    with transaction(sessions) as session:
        session.execute(update(Grade).where(Grade.essay_id == essay_id).values(needs_review=True))
        return session.scalars(select(Grade.total).where(Grade.essay_id == essay_id)).one()


def _api(app: Flask, world: World, key: str, path: str) -> object:
    return app.test_client().get(path, headers={"Authorization": f"Bearer {world.tokens[key]}"})


def test_a_withheld_score_is_not_final_anywhere_until_its_teacher_confirms_it(
    app: Flask, world: World, sessions: sessionmaker[Session]
) -> None:
    model_total = _withhold(sessions, world.flagged_essay)
    owner = client_as(app, world.users["owner"])
    page = owner.get(f"/essays/{world.flagged_essay}").get_data(as_text=True)
    assert "待复核" in page and f"确认 {model_total} 分" in page and 'id="withheld"' in page
    results = _api(app, world, "owner", f"/api/v1/assignments/{world.assignment}/results").json
    row = next(r for r in results["rows"] if r["essay_id"] == world.flagged_essay)
    assert (row["status"], row["total"], row["scores"]) == ("review", None, {})
    essay = _api(app, world, "owner", f"/api/v1/essays/{world.flagged_essay}").json
    assert essay["grade"]["needs_review"] is True
    assert "待复核" in owner.get(f"/assignments/{world.assignment}/results").get_data(as_text=True)

    # Nobody else can confirm it: another school's teacher gets 404; an anonymous post is refused (no session, so
    # no CSRF token: 400) and an anonymous visit goes to the login page.
    assert client_as(app, world.users["outsider"]).post(f"/essays/{world.flagged_essay}/accept",
                                                        data=form()).status_code == 404
    assert app.test_client().post(f"/essays/{world.flagged_essay}/accept", data=form()).status_code == 400
    visit = app.test_client().get(f"/essays/{world.flagged_essay}")
    assert visit.status_code in (302, 303) and "/login" in visit.headers["Location"]
    with sessions() as session:
        assert session.scalars(select(Grade.source).where(Grade.essay_id == world.flagged_essay)).all() == [
            GradeSource.model]

    assert owner.post(f"/essays/{world.flagged_essay}/accept", data=form()).status_code == 303
    with sessions() as session:
        grades = session.scalars(select(Grade).where(Grade.essay_id == world.flagged_essay)
                                 .order_by(Grade.version)).all()
        assert [(g.version, g.source, g.total, g.needs_review) for g in grades] == [
            (1, GradeSource.model, model_total, True), (2, GradeSource.teacher, model_total, False)]
        assert grades[1].created_by == world.users["owner"] and grades[1].reason == "已复核提示注入标记，确认模型评分"
    results = _api(app, world, "owner", f"/api/v1/assignments/{world.assignment}/results").json
    row = next(r for r in results["rows"] if r["essay_id"] == world.flagged_essay)
    assert (row["status"], row["total"]) == ("graded", model_total)
    assert "待复核" not in owner.get(f"/essays/{world.flagged_essay}").get_data(as_text=True)
