"""双评 through the pages and the API: blind second reads, the rubric's final score, 三评 by someone with the right,
bad input and races (never two final scores), 样卷 calibration and the agreement figures from the stored readings.

The world's two graded essays have the model's reading 15/14/10 with −3 in deductions: 36 of 60 (tolerance 6).
"""

from __future__ import annotations

import threading
from pathlib import Path

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from services.web import double_marking as dm
from services.web.actor import Actor
from shared.models import (
    AuditLog,
    Calibration,
    ClassroomRole,
    DoubleMarkCase,
    Essay,
    Grade,
    User,
)
from shared.prompts.rubric import load_rubric
from tests.factories.world import World
from tests.web.conftest import form

RUBRIC = load_rubric("gaokao-national")


def _scores(content: int, expression: int, development: int, **extra: object) -> dict[str, object]:
    return form(score_content=str(content), score_expression=str(expression), score_development=str(development),
                **extra)


def _versions(sessions: sessionmaker[Session], essay_id: int) -> list[tuple[int, str, str | None, int, int | None]]:
    with sessions() as session:
        return [(g.version, str(g.source), g.reading, g.total, g.created_by) for g in session.scalars(
            select(Grade).where(Grade.essay_id == essay_id).order_by(Grade.version))]


def dm_api(app: Flask, world: World, key: str, path: str) -> dict:  # type: ignore[type-arg]
    response = app.test_client().get(path, headers={"Authorization": f"Bearer {world.tokens[key]}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def _set_all(login, world: World) -> None:  # type: ignore[no-untyped-def]
    response = login("owner").post(f"/assignments/{world.assignment}/double-marking", data=form(mode="all"))
    assert response.status_code == 303


def _workbook_status(sessions: sessionmaker[Session], world: World, path: Path) -> dict[str, tuple[str, int | None]]:
    """The class workbook's 状态 and total per student of the world's two graded essays."""
    from openpyxl import load_workbook

    from services.worker.reports.class_workbook import build_class_workbook

    with sessions() as session:
        build_class_workbook(session, world.assignment, path)
    rows = list(load_workbook(path)["学生"].iter_rows(values_only=True))
    header = rows[0]
    status, total = header.index("状态"), next(i for i, h in enumerate(header) if str(h).startswith("总分"))
    return {row[1]: (row[status], row[total]) for row in rows[1:] if row[1] in ("张三", "李四")}


def _school_totals(sessions: sessionmaker[Session], world: World) -> list[int]:
    """The totals the school workbook counts for the world's assignment."""
    from services.worker.reports.queries import stream_school_grades

    with sessions() as session:
        return [total for assignment_id, total, _ in stream_school_grades(session, world.school_a)
                if assignment_id == world.assignment]


def test_blind_second_read_within_tolerance_takes_the_mean(app: Flask, login, world: World, sessions,
                                                           tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    owner = login("owner")
    _set_all(login, world)
    queue = owner.get("/marking").get_data(as_text=True)
    assert 'id="q-second-count">2<' in queue
    page = owner.get(f"/essays/{world.essay}/second-read").get_data(as_text=True)
    assert 'id="second-read-form"' in page and 'id="readings"' not in page  # blind: no scores before reading
    assert "score_content" in page
    # Blind everywhere until the second reading: the essay page sends the reader to the blind page, the results
    # table and the API show no model score for it.
    essay_page = owner.get(f"/essays/{world.essay}")
    assert essay_page.status_code == 303 and essay_page.headers["Location"].endswith(
        f"/essays/{world.essay}/second-read")
    results = owner.get(f"/assignments/{world.assignment}/results").get_data(as_text=True)
    assert results.count('class="status-second_read"') == 2 and ">36<" not in results
    api = dm_api(app, world, "owner", f"/api/v1/essays/{world.essay}")
    assert api["grade"] is None and api["history"] == [] and api["awaiting_second_read"] is True
    rows = dm_api(app, world, "owner", f"/api/v1/assignments/{world.assignment}/results")["rows"]
    assert {row["status"] for row in rows if row.get("essay_id") in (world.essay, world.flagged_essay)} == {
        "second_read"}
    assert _workbook_status(sessions, world, tmp_path / "before.xlsx") == {"张三": ("待二评", None),
                                                                         "李四": ("待二评", None)}
    assert _school_totals(sessions, world) == [], "the school workbook counts no model score before the second"
    response = owner.post(f"/essays/{world.essay}/second-read", data=_scores(16, 15, 10))
    assert response.status_code == 303
    assert 'id="double-marking-notice"' in owner.get(f"/essays/{world.essay}").get_data(as_text=True)
    assert _workbook_status(sessions, world, tmp_path / "after.xlsx") == {"张三": ("已评分", 37),
                                                                        "李四": ("待二评", None)}
    assert _school_totals(sessions, world) == [37]
    page = owner.get(response.headers["Location"]).get_data(as_text=True)
    assert 'id="readings"' in page and "最终分 <strong id=\"final-total\">37</strong>" in page
    # model 36, second 41 − 3 = 38: within 6, the mean (37) is final; every reading is a version with its reader
    assert _versions(sessions, world.essay) == [
        (1, "model", None, 36, None), (2, "teacher", "second", 38, world.users["owner"]),
        (3, "teacher", "final", 37, world.users["owner"]),
    ]
    with sessions() as session:
        case = session.scalar(select(DoubleMarkCase).where(DoubleMarkCase.essay_id == world.essay))
        assert case is not None and case.totals == [36, 38] and case.final_rule == "mean"
        actions = session.scalars(select(AuditLog.action).where(
            AuditLog.object_type == "essay", AuditLog.object_id == world.essay,
            AuditLog.action.like("double_marking.%"))).all()
        assert sorted(actions) == ["double_marking.final", "double_marking.second_read"]
    assert 'id="a-settled">1<' in owner.get(f"/assignments/{world.assignment}").get_data(as_text=True)
    # A settled essay is not regraded by the model (its readings stand), alone or with the class.
    refused = owner.post(f"/essays/{world.essay}/regrade", data=form(), follow_redirects=True)
    assert "已进入双评" in refused.get_data(as_text=True)
    assert owner.post(f"/assignments/{world.assignment}/regrade", data=form()).status_code in (302, 303)
    with sessions() as session:
        assert str(session.get(Essay, world.essay).status) == "graded"
    assert len(_versions(sessions, world.essay)) == 3


def test_beyond_tolerance_goes_to_a_third_reading_by_someone_with_the_right(login, world: World, sessions) -> None:  # type: ignore[no-untyped-def]
    _set_all(login, world)
    owner = login("owner")
    assert owner.post(f"/essays/{world.flagged_essay}/second-read", data=_scores(20, 20, 20)).status_code == 303
    assert _versions(sessions, world.flagged_essay)[-1] == (2, "teacher", "second", 57, world.users["owner"])
    # the class teacher has no right to arbitrate (403); a colleague cannot see the class at all (404)
    assert owner.get(f"/essays/{world.flagged_essay}/arbitrate").status_code == 403
    assert owner.post(f"/essays/{world.flagged_essay}/arbitrate", data=_scores(18, 18, 18)).status_code == 403
    assert login("colleague").get(f"/essays/{world.flagged_essay}/arbitrate").status_code == 404
    assert login("other_admin").get(f"/essays/{world.flagged_essay}/arbitrate").status_code == 404
    admin = login("admin")
    queue = admin.get("/marking").get_data(as_text=True)
    assert 'id="q-arbitration-count">1<' in queue and "36、57" in queue
    assert admin.post(f"/essays/{world.flagged_essay}/arbitrate", data=_scores(18, 18, 21)).status_code == 400
    assert len(_versions(sessions, world.flagged_essay)) == 2
    assert admin.post(f"/essays/{world.flagged_essay}/arbitrate", data=_scores(18, 18, 18)).status_code == 303
    # third 51: 15 from the model, 6 from the second reading → mean of the closest two (51, 57) = 54
    assert _versions(sessions, world.flagged_essay)[2:] == [
        (3, "teacher", "third", 51, world.users["admin"]), (4, "teacher", "final", 54, world.users["admin"]),
    ]
    again = admin.post(f"/essays/{world.flagged_essay}/arbitrate", data=_scores(10, 10, 10))
    assert again.status_code == 409 and "已经有最终分" in again.get_data(as_text=True)
    with sessions() as session:
        finals = session.scalar(select(func.count()).select_from(Grade).where(
            Grade.essay_id == world.flagged_essay, Grade.reading == "final"))
        assert finals == 1


def test_a_lead_named_by_the_admin_may_arbitrate(login, world: World, sessions) -> None:  # type: ignore[no-untyped-def]
    _set_all(login, world)
    assert login("owner").post(f"/essays/{world.essay}/second-read", data=_scores(5, 5, 5)).status_code == 303
    assert login("owner").post(f"/classes/{world.classroom}/leads",
                               data=form(user_id=str(world.users["colleague"]))).status_code == 403
    outsider_id = world.users["outsider"]
    assert login("admin").post(f"/classes/{world.classroom}/leads",
                               data=form(user_id=str(outsider_id))).status_code == 400  # another school's teacher
    assert login("admin").post(f"/classes/{world.classroom}/leads",
                               data=form(user_id=str(world.users["colleague"]))).status_code == 303
    colleague = login("colleague")
    assert colleague.get(f"/essays/{world.essay}").status_code == 404  # the role opens arbitration only
    assert 'id="q-arbitration-count">1<' in colleague.get("/marking").get_data(as_text=True)
    assert colleague.post(f"/essays/{world.essay}/arbitrate", data=_scores(10, 10, 10)).status_code == 303
    # model 36, second 12, third 27: 9 and 15 away, both beyond 6 → 终评 still needed
    with sessions() as session:
        case = session.scalar(select(DoubleMarkCase).where(DoubleMarkCase.essay_id == world.essay))
        assert case is not None and case.needs == "arbitration" and case.totals == [36, 12, 27]
        assert session.scalar(select(func.count()).select_from(ClassroomRole)
                              .where(ClassroomRole.classroom_id == world.classroom)) == 1
    repeat = colleague.post(f"/essays/{world.essay}/arbitrate", data=_scores(10, 10, 10))
    assert repeat.status_code == 409 and "您已评过" in repeat.get_data(as_text=True)
    assert login("admin").post(f"/essays/{world.essay}/arbitrate", data=_scores(14, 13, 12)).status_code == 303
    assert _versions(sessions, world.essay)[-2:] == [
        (4, "teacher", "arbitration", 36, world.users["admin"]), (5, "teacher", "final", 36, world.users["admin"]),
    ]


def test_bad_second_reads_are_refused_and_write_nothing(login, world: World, sessions) -> None:  # type: ignore[no-untyped-def]
    _set_all(login, world)
    owner = login("owner")
    out_of_range = owner.post(f"/essays/{world.essay}/second-read", data=_scores(21, 10, 10))
    assert out_of_range.status_code == 400 and "0 到 20" in out_of_range.get_data(as_text=True)
    assert len(_versions(sessions, world.essay)) == 1
    # a teacher who has already marked the essay (an override: the first human reading) may not second-read it
    assert owner.post(f"/essays/{world.flagged_essay}/override",
                      data=_scores(12, 12, 12, reason="复核")).status_code == 303
    first_reader = owner.post(f"/essays/{world.flagged_essay}/second-read", data=_scores(12, 12, 12))
    assert first_reader.status_code == 409 and "另一位教师" in first_reader.get_data(as_text=True)
    assert 'id="q-second-count">1<' in owner.get("/marking").get_data(as_text=True)
    assert owner.post(f"/essays/{world.essay}/second-read", data=_scores(15, 14, 10)).status_code == 303
    twice = login("admin").post(f"/essays/{world.essay}/second-read", data=_scores(1, 1, 1))
    assert twice.status_code == 409 and "已有二评" in twice.get_data(as_text=True)
    assert [v[2] for v in _versions(sessions, world.essay)] == [None, "second", "final"]
    bad_mode = owner.post(f"/assignments/{world.assignment}/double-marking", data=form(mode="sample", share="0"))
    assert bad_mode.status_code == 400 and "1 到 100" in bad_mode.get_data(as_text=True)


def test_two_second_reads_at_once_write_one_reading_on_postgresql(world: World, sessions) -> None:  # type: ignore[no-untyped-def]
    """Two sessions read the same essay; the first holds its uncommitted case row while the second, in another
    thread, tries to write its own: the second waits on the unique key and fails once the first commits."""
    with sessions() as setup:
        setup.get(Essay, world.essay).assignment.double_marking = "all"  # type: ignore[union-attr]
        setup.commit()
    first, second = sessions(), sessions()
    outcome: dict[str, object] = {}

    def read(session: Session, key: str, scores: dict[str, int]) -> None:
        user = session.get(User, world.users[key])
        essay = session.get(Essay, world.essay)
        assert user is not None and essay is not None
        try:
            dm.second_read(session, Actor(key, user.id, None), user, essay, RUBRIC, scores)
            outcome[key] = "read"
        except (IntegrityError, dm.ReadingConflict) as exc:
            session.rollback()
            outcome[key] = type(exc).__name__

    try:
        read(first, "owner", {"content": 16, "expression": 15, "development": 10})
        assert outcome["owner"] == "read"
        racer = threading.Thread(target=read, args=(second, "admin", {"content": 1, "expression": 1,
                                                                        "development": 1}))
        racer.start()
        racer.join(timeout=2)
        assert racer.is_alive(), "the second writer should be waiting on the first one's uncommitted rows"
        first.commit()
        racer.join(timeout=30)
        assert not racer.is_alive()
        assert outcome["admin"] == "IntegrityError"
    finally:
        first.close()
        second.close()
    assert [(v[2], v[3]) for v in _versions(sessions, world.essay)] == [(None, 36), ("second", 38), ("final", 37)]


def test_concurrent_http_second_reads_give_one_reading_and_one_conflict(app: Flask, login, world: World,  # type: ignore[no-untyped-def]
                                                                         sessions) -> None:
    _set_all(login, world)
    clients = {"owner": login("owner"), "admin": login("admin")}
    start = threading.Barrier(2)
    statuses: dict[str, int] = {}

    def post(key: str) -> None:
        start.wait()
        statuses[key] = clients[key].post(f"/essays/{world.essay}/second-read", data=_scores(16, 15, 10)).status_code

    threads = [threading.Thread(target=post, args=(key,)) for key in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses.values()) == [303, 409], statuses
    assert [v[2] for v in _versions(sessions, world.essay)] == [None, "second", "final"]


def test_api_second_read_arbitration_calibration_and_agreement(app: Flask, world: World, sessions) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()

    def call(key: str, method: str, url: str, body: dict[str, object] | None = None):  # type: ignore[no-untyped-def]
        headers = {"Authorization": f"Bearer {world.tokens[key]}"}
        return client.open(f"/api/v1{url}", method=method, headers=headers, json=body)

    assert call("owner", "POST", f"/assignments/{world.assignment}/double-marking",
                {"mode": "sample", "share": 101}).status_code == 400
    settings = call("owner", "POST", f"/assignments/{world.assignment}/double-marking", {"mode": "all"}).get_json()
    assert settings["mode"] == "all" and settings["awaiting_second"] == 2
    assert call("owner", "POST", f"/essays/{world.essay}/second-read",
                {"scores": {"content": 16, "expression": 15, "development": 40}}).status_code == 400
    read = call("owner", "POST", f"/essays/{world.essay}/second-read",
                {"scores": {"content": 16, "expression": 15, "development": 10}})
    assert read.status_code == 201 and read.get_json()["final_total"] == 37
    assert [r["reading"] for r in read.get_json()["readings"]] == ["model", "second", "final"]
    far = call("owner", "POST", f"/essays/{world.flagged_essay}/second-read",
               {"scores": {"content": 20, "expression": 20, "development": 20}}).get_json()
    assert far["status"] == "awaiting_arbitration" and far["needs"] == "third_reading"
    denied = call("owner", "POST", f"/essays/{world.flagged_essay}/arbitration",
                  {"scores": {"content": 18, "expression": 18, "development": 18}})
    assert denied.status_code == 403 and "备课组长" in denied.get_json()["error"]
    assert call("admin", "GET", "/marking").get_json()["arbitrations"][0]["totals"] == [36, 57]
    settled = call("admin", "POST", f"/essays/{world.flagged_essay}/arbitration",
                   {"scores": {"content": 18, "expression": 18, "development": 18}}).get_json()
    assert settled["final_total"] == 54 and settled["final_rule"] == "mean_of_closest_two"

    calibration = call("owner", "POST", f"/assignments/{world.assignment}/calibration").get_json()
    assert calibration["anchors"] == 2 and calibration["method"] == "linear"
    rows = {row["essay_id"]: row for row in calibration["essays"]}
    assert rows[world.essay]["model_total"] == 36 and rows[world.essay]["second_read_total"] == 38
    assert rows[world.essay]["calibrated_total"] is not None
    with sessions() as session:
        stored = session.scalar(select(Calibration).where(Calibration.assignment_id == world.assignment))
        assert stored is not None and set(stored.maps) == {"content", "expression", "development"}

    agreement = call("admin", "GET", "/agreement").get_json()
    by_assignment = agreement["assignment"]
    assert len(by_assignment) == 1
    figures = by_assignment[0]
    # pairs (teacher, model): (38, 36) and (57, 36): bias (−2 − 21) / 2, one of two within 6, one arbitration
    assert figures["pairs"] == 2 and figures["bias"] == -11.5 and figures["within_tolerance_rate"] == 0.5
    assert figures["second_reads"] == 2 and figures["arbitrations"] == 1
    assert figures["qwk"] == 0.0  # the model gave both the same total: exactly chance-level agreement
    assert figures["warning"] is True  # below the default threshold 0.6
    assert call("outsider", "GET", "/agreement").get_json()["assignment"] == []


def test_mode_is_set_when_the_assignment_is_created(login, world: World, sessions) -> None:  # type: ignore[no-untyped-def]
    owner = login("owner")
    data = form(title="双评作业", prompt_text="题目", genre="议论文", rubric="gaokao-national@2024.1",
                double_marking="sample", double_marking_share="30")
    assert owner.post(f"/classes/{world.classroom}/assignments/new", data=data).status_code == 303
    refused = owner.post(f"/classes/{world.classroom}/assignments/new",
                         data={**data, "title": "另一个", "double_marking": "sometimes"})
    assert refused.status_code == 400 and "双评方式" in refused.get_data(as_text=True)
    with sessions() as session:
        from shared.models import Assignment

        rows = session.execute(select(Assignment.title, Assignment.double_marking, Assignment.double_marking_share)
                               .where(Assignment.classroom_id == world.classroom)).all()
        assert ("双评作业", "sample", 30) in rows and all(title != "另一个" for title, _, _ in rows)


def test_agreement_page_warns_below_the_school_threshold(login, world: World) -> None:  # type: ignore[no-untyped-def]
    _set_all(login, world)
    login("owner").post(f"/essays/{world.essay}/second-read", data=_scores(16, 15, 10))
    admin = login("admin")
    assert login("owner").post("/agreement/threshold", data=form(threshold="0.1")).status_code == 403
    assert admin.post("/agreement/threshold", data=form(threshold="2")).status_code == 303
    assert admin.post("/agreement/threshold", data=form(threshold="-0.5")).status_code == 303
    page = admin.get("/agreement").get_data(as_text=True)
    assert "QWK 低于 -0.50 时预警" in page and "低于阈值" not in page  # one pair: QWK undefined, no warning


def test_anonymous_callers_are_sent_to_login_or_refused(app: Flask, world: World) -> None:
    client = app.test_client()
    pages = [f"/assignments/{world.assignment}/double-marking", f"/essays/{world.essay}/second-read",
             f"/essays/{world.essay}/arbitrate", "/marking", f"/assignments/{world.assignment}/calibration",
             "/agreement", f"/classes/{world.classroom}/leads"]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url
    for url in pages + ["/agreement/threshold"]:
        assert client.post(url, data=form()).status_code in (302, 400), url  # CSRF first, then the login guard
    api = [("GET", f"/assignments/{world.assignment}/double-marking"), ("GET", "/marking"),
           ("POST", f"/essays/{world.essay}/second-read"), ("POST", f"/essays/{world.essay}/arbitration"),
           ("GET", f"/assignments/{world.assignment}/calibration"), ("GET", "/agreement")]
    for method, url in api:
        assert client.open(f"/api/v1{url}", method=method, json={}).status_code == 401, url


def test_two_arbiters_at_once_write_one_third_reading_on_postgresql(login, world: World, sessions) -> None:  # type: ignore[no-untyped-def]
    """The first arbiter's claim (the case's reading count) is uncommitted while a second arbiter, in another thread,
    tries the same case: the second waits on the row and then finds the count moved on, a conflict."""
    _set_all(login, world)
    assert login("owner").post(f"/essays/{world.essay}/second-read", data=_scores(20, 20, 20)).status_code == 303
    assert login("admin").post(f"/classes/{world.classroom}/leads",
                               data=form(user_id=str(world.users["colleague"]))).status_code == 303
    first, second = sessions(), sessions()
    outcome: dict[str, object] = {}

    def arbitrate(session: Session, key: str) -> None:
        user = session.get(User, world.users[key])
        case = session.scalar(select(DoubleMarkCase).where(DoubleMarkCase.essay_id == world.essay))
        assert user is not None and case is not None
        try:
            dm.arbitrate(session, Actor(key, user.id, None), user, case, RUBRIC,
                         {"content": 18, "expression": 18, "development": 18})
            outcome[key] = "read"
        except dm.ReadingConflict as exc:
            session.rollback()
            outcome[key] = str(exc)

    try:
        arbitrate(first, "admin")
        racer = threading.Thread(target=arbitrate, args=(second, "colleague"))
        racer.start()
        racer.join(timeout=2)
        assert racer.is_alive(), "the second arbiter should be waiting on the first one's claim"
        first.commit()
        racer.join(timeout=30)
        assert not racer.is_alive()
    finally:
        first.close()
        second.close()
    assert outcome["admin"] == "read" and "刚刚提交" in str(outcome["colleague"])
    assert [(v[2], v[4]) for v in _versions(sessions, world.essay)] == [
        (None, None), ("second", world.users["owner"]), ("third", world.users["admin"]),
        ("final", world.users["admin"])]


def test_a_calibrated_assignment_refits_on_each_new_second_read(login, world: World, sessions) -> None:  # type: ignore[no-untyped-def]
    _set_all(login, world)
    owner = login("owner")
    assert owner.post(f"/assignments/{world.assignment}/calibration", data=form()).status_code == 409  # no anchors yet
    owner.post(f"/essays/{world.essay}/second-read", data=_scores(16, 15, 10))
    assert owner.post(f"/assignments/{world.assignment}/calibration", data=form()).status_code == 303
    with sessions() as session:
        assert session.scalar(select(Calibration.anchors).where(Calibration.assignment_id == world.assignment)) == 1
    owner.post(f"/essays/{world.flagged_essay}/second-read", data=_scores(18, 17, 12))
    page = owner.get(f"/assignments/{world.assignment}/calibration").get_data(as_text=True)
    assert 'id="anchor-count">2<' in page and "收缩线性映射" in page
    with sessions() as session:
        assert session.scalar(select(Calibration.anchors).where(Calibration.assignment_id == world.assignment)) == 2
