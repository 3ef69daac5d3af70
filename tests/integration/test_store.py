"""Claims and writes: a task owns its essays, redelivery resumes, attempts are bounded, nothing is doubled."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select, update

from services.worker import store
from services.worker.jobs import DeductionItem, EssayOutcome, LocatedError
from shared.models import AuditLog, Essay, EssayStatus, Grade, transaction
from shared.models.base import utcnow
from shared.tasks import CLASS_WORKBOOK_TASK, TRAINING_PLANS_TASK
from tests.factories import RecordingSender, make_class


def _outcome(essay_id: int) -> EssayOutcome:
    return EssayOutcome(
        essay_id=essay_id, rubric_id="gaokao-national", rubric_version="2024.1", prompt_version="grade-v1",
        text="读书\n正文。", char_count=3, dimension_scores={"content": 12}, bands={"content": "二等"},
        raw_total=40, total=38, comment="评语",
        errors=[LocatedError("错别字", 3, 4, "正", "整", "形近字", "model")],
        deductions=[DeductionItem("typo", -1, "错别字 1 个")],
    )


def test_a_second_task_cannot_claim_what_the_first_owns(db_sessions) -> None:  # type: ignore[no-untyped-def]
    fixture = make_class(db_sessions, ["甲。", "乙。", "丙。"], tag=uuid.uuid4().hex[:6])
    ids = fixture.essay_ids
    first = store.claim(db_sessions, ids, "task-a", lease_s=60, is_retry=False)
    assert first == sorted(ids)
    assert store.claim(db_sessions, ids, "task-b", lease_s=60, is_retry=False) == []
    # A redelivery of the same task is not a claim: its essays are recovered instead (test below).
    assert store.claim(db_sessions, ids, "task-a", lease_s=60, is_retry=False) == []
    # A Celery retry after a transient error takes back what it held.
    assert store.claim(db_sessions, ids, "task-a", lease_s=60, is_retry=True) == sorted(ids)
    with db_sessions() as session:
        essays = session.scalars(select(Essay).where(Essay.id.in_(ids))).all()
        assert {e.attempts for e in essays} == {0}, "claiming charges no attempt"
        assert all(e.lease_until is not None and e.claim_token == "task-a" for e in essays)


def _held(sessions, ids: list[int]) -> dict[int, tuple[str, int, str | None]]:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return {e.id: (e.status.value, e.attempts, e.claim_token)
                for e in session.scalars(select(Essay).where(Essay.id.in_(ids)))}


def test_a_dead_batch_goes_back_in_halves_uncharged_and_a_lone_essay_is_charged_to_the_limit(  # type: ignore[no-untyped-def]
    db_sessions,
) -> None:
    texts = ["甲。", "乙乙。", "丙丙丙。", "丁丁丁丁。", "戊戊戊戊戊。"]
    fixture = make_class(db_sessions, texts, tag=uuid.uuid4().hex[:6])
    ids = fixture.essay_ids
    store.claim(db_sessions, ids, "dead", lease_s=60, is_retry=False)
    recovery = store.recover_claim(db_sessions, "dead", max_attempts=2, cause="process_lost", failure_reason="崩溃")
    assert [[essay_id for essay_id, _ in half] for half in recovery.resend] == [ids[:2], ids[2:]]
    assert recovery.failed == []
    assert _held(db_sessions, ids) == {i: ("queued", 0, None) for i in ids}, "nobody charged for a batch"
    assert store.recover_claim(db_sessions, "dead", max_attempts=2, cause="process_lost",
                               failure_reason="崩溃").essay_ids == [], "nothing held any more"
    # The suspect alone: the first death is charged and it goes again, the second fails it with the reason.
    suspect = ids[0]
    for attempt, token in enumerate(["alone-1", "alone-2"], start=1):
        store.claim(db_sessions, [suspect], token, lease_s=60, is_retry=False)
        recovery = store.recover_claim(db_sessions, token, max_attempts=2, cause="process_lost",
                                       failure_reason="这篇作文使进程崩溃")
        if attempt == 1:
            assert recovery.resend == [[(suspect, 2)]] and recovery.failed == []
        else:
            assert recovery.resend == [] and recovery.failed == [suspect]
    with db_sessions() as session:
        essay = session.get(Essay, suspect)
        assert (essay.status, essay.attempts, essay.failure_reason) == (EssayStatus.failed, 2, "这篇作文使进程崩溃")
        assert essay.finished_at is not None and essay.claim_token is None
    assert {i: v for i, v in _held(db_sessions, ids).items() if i != suspect} == {i: ("queued", 0, None)
                                                                                   for i in ids[1:]}


def test_a_lease_is_renewed_while_held_and_found_once_it_runs_out(db_sessions) -> None:  # type: ignore[no-untyped-def]
    fixture = make_class(db_sessions, ["甲。", "乙。"], tag=uuid.uuid4().hex[:6])
    live, dead = fixture.essay_ids
    store.claim(db_sessions, [live], "live", lease_s=60, is_retry=False)
    store.claim(db_sessions, [dead], "dead", lease_s=60, is_retry=False)
    later = utcnow() + timedelta(seconds=61)
    assert {"live", "dead"} <= set(store.expired_claims(db_sessions, later))
    assert store.renew_lease(db_sessions, "live", 120) == 1
    expired = store.expired_claims(db_sessions, later)
    assert "dead" in expired and "live" not in expired
    assert "dead" not in store.expired_claims(db_sessions, utcnow()), "a lease that has not run out is not taken"


def test_outcome_is_written_once_with_everything_it_carries(db_sessions) -> None:  # type: ignore[no-untyped-def]
    fixture = make_class(db_sessions, ["读书\n正文。"], tag=uuid.uuid4().hex[:6])
    essay_id = fixture.essay_ids[0]
    store.claim(db_sessions, [essay_id], "t", lease_s=60, is_retry=False)
    assert store.save_outcome(db_sessions, _outcome(essay_id), "t") is True
    assert store.save_outcome(db_sessions, _outcome(essay_id), "t") is False
    assert store.save_outcome(db_sessions, _outcome(essay_id), "other") is False
    with db_sessions() as session:
        grades = session.scalars(select(Grade).where(Grade.essay_id == essay_id)).all()
        assert len(grades) == 1 and grades[0].version == 1 and grades[0].total == 38
        assert [(e.type, e.start_offset, e.end_offset) for e in grades[0].errors] == [("错别字", 3, 4)]
        assert [(d.rule, d.points) for d in grades[0].deductions] == [("typo", -1)]
        assert session.get(Essay, essay_id).status == EssayStatus.graded
        audited = session.scalar(
            select(func.count()).select_from(AuditLog).where(AuditLog.action == "model.grade",
                                                             AuditLog.object_id == essay_id)
        )
        assert audited == 1


def test_a_failed_attempt_requeues_until_the_limit(db_sessions) -> None:  # type: ignore[no-untyped-def]
    fixture = make_class(db_sessions, ["甲。"], tag=uuid.uuid4().hex[:6])
    essay_id = fixture.essay_ids[0]
    store.claim(db_sessions, [essay_id], "t1", lease_s=60, is_retry=False)
    assert store.release_failure(db_sessions, essay_id, "t1", "boom", max_attempts=2) == EssayStatus.queued
    assert _held(db_sessions, [essay_id]) == {essay_id: ("queued", 1, None)}
    store.claim(db_sessions, [essay_id], "t2", lease_s=60, is_retry=False)
    assert store.release_failure(db_sessions, essay_id, "t2", "boom again", max_attempts=2) == EssayStatus.failed
    with db_sessions() as session:
        essay = session.get(Essay, essay_id)
        assert essay.status == EssayStatus.failed and essay.failure_reason == "boom again" and essay.attempts == 2


def test_a_batch_write_puts_each_essays_errors_on_its_own_grade(db_sessions) -> None:  # type: ignore[no-untyped-def]
    fixture = make_class(db_sessions, ["甲。", "乙。", "丙。"], tag=uuid.uuid4().hex[:6])
    ids = fixture.essay_ids
    outcomes = []
    for n, essay_id in enumerate(ids):
        outcome = _outcome(essay_id)
        outcome.total = 30 + n
        outcome.errors = [LocatedError("标点", i, i + 1, "，", "。", f"第 {n} 篇", "check") for i in range(n + 1)]
        outcome.text, outcome.title, outcome.char_count = ["甲。", "乙。", "丙。"][n], None, 2
        outcomes.append(outcome)
    # The pipeline normalised the first essay differently and found an injection attempt in the second.
    outcomes[0].text, outcomes[0].char_count = "甲。\n", 3
    outcomes[1].flags = ["疑似提示注入"]
    store.claim(db_sessions, ids, "t1", lease_s=60, is_retry=False)
    assert store.save_outcomes(db_sessions, outcomes, "t1") == ids
    # A regrade of the same essays adds version 2 alongside version 1.
    store.claim(db_sessions, ids, "t1", lease_s=60, is_retry=False)  # not queued: nothing to claim
    with transaction(db_sessions) as session:
        session.execute(update(Essay).where(Essay.id.in_(ids)).values(status=EssayStatus.queued))
    store.claim(db_sessions, ids, "t2", lease_s=60, is_retry=False)
    assert store.save_outcomes(db_sessions, outcomes, "t2") == ids
    # And a second regrade (SQLite once reused version 2 here: the version subquery bound `id` to grades).
    with transaction(db_sessions) as session:
        session.execute(update(Essay).where(Essay.id.in_(ids)).values(status=EssayStatus.queued))
    store.claim(db_sessions, ids, "t3", lease_s=60, is_retry=False)
    assert store.save_outcomes(db_sessions, outcomes, "t3") == ids
    with db_sessions() as session:
        for n, essay_id in enumerate(ids):
            grades = session.scalars(select(Grade).where(Grade.essay_id == essay_id).order_by(Grade.version)).all()
            assert [g.version for g in grades] == [1, 2, 3]
            for grade in grades:
                assert grade.total == 30 + n and grade.created_at is not None
                assert [e.explanation for e in grade.errors] == [f"第 {n} 篇"] * (n + 1)
        audit_rows = session.scalars(
            select(AuditLog).where(AuditLog.action == "model.grade", AuditLog.object_id.in_(ids))
        ).all()
        assert len(audit_rows) == 9 and all(row.at is not None for row in audit_rows)
        assert sorted(row.details["grade_version"] for row in audit_rows) == [1, 1, 1, 2, 2, 2, 3, 3, 3]
        stored = [session.get(Essay, essay_id) for essay_id in ids]
        assert [(e.text, e.char_count, e.flags) for e in stored] == [
            ("甲。\n", 3, []), ("乙。", 2, ["疑似提示注入"]), ("丙。", 2, [])
        ]
        assert {e.status for e in stored} == {EssayStatus.graded} and all(e.claim_token is None for e in stored)


def test_claim_and_load_returns_the_jobs_with_the_roster_to_mask(db_sessions) -> None:  # type: ignore[no-untyped-def]
    tag = uuid.uuid4().hex[:6]
    fixture = make_class(db_sessions, ["甲。", "乙。"], tag=tag, student_names=["李雷", "韩梅梅"])
    jobs = store.claim_and_load(db_sessions, fixture.essay_ids, "t", lease_s=60, is_retry=False)
    assert sorted(job.essay_id for job in jobs) == sorted(fixture.essay_ids)
    assert {job.text for job in jobs} == {"甲。", "乙。"}
    assert all(set(job.person_names) == {"李雷", "韩梅梅"} and job.school_names == (f"测试中学{tag}",) for job in jobs)
    assert store.claim_and_load(db_sessions, fixture.essay_ids, "other", lease_s=60, is_retry=False) == []
    with db_sessions() as session:
        assert {session.get(Essay, i).status for i in fixture.essay_ids} == {EssayStatus.grading}


def test_a_workers_grading_statements_stay_prepared_from_task_to_task(pg_url) -> None:  # type: ignore[no-untyped-def]
    """psycopg prepares a statement on its fifth use and forgets them all on a rollback: a grading task that
    ended in a rollback would have every statement parsed and planned afresh, task after task."""
    from sqlalchemy import text

    from services.worker.batch import BatchRules, close_batch, open_batch
    from shared.models import make_engine, make_session_factory

    engine = make_engine(pg_url, pool_size=1, max_overflow=0)  # every task on the one connection
    try:
        sessions = make_session_factory(engine)
        fixture = make_class(sessions, [f"第{n}篇。" for n in range(7)], tag=uuid.uuid4().hex[:6])
        rules, sender = BatchRules(max_attempts=3, token_budget=16384), RecordingSender()
        for n, essay_id in enumerate(fixture.essay_ids):
            jobs = open_batch(sessions, [essay_id], f"task-{n}", rules, is_retry=False)
            counts = close_batch(sender, sender, sessions, [essay_id], jobs, [_outcome(essay_id)], f"task-{n}", rules)
            assert counts["graded"] == 1
        # The last task finished the assignment: training plans and the class workbook are sent.
        assert [name for name, _ in sender.sent] == [TRAINING_PLANS_TASK, CLASS_WORKBOOK_TASK]
        with transaction(sessions) as session:
            prepared = session.scalars(text("SELECT statement FROM pg_prepared_statements")).all()
    finally:
        engine.dispose()
    for statement in ("UPDATE essays SET status=", "INSERT INTO grades", "INSERT INTO error_annotations",
                      "SELECT essays.assignment_id"):
        assert any(s.startswith(statement) for s in prepared), (statement, prepared)
