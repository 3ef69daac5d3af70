"""Platform cost per essay outside the model: ingest, enqueue, claim and write, on real PostgreSQL and Redis.

    python bench/platform.py [--essays PATH] [--classes 20] [--per-class 50] [--model-seconds-per-essay S]
                             [--repeat N]

Each stage runs the production code: the upload parser and the web's confirm step (one transaction per
class), `enqueue_assignment` sending real Celery messages to Redis, then for each task the worker's own code
around the model call: `open_batch` (claim, load the essays and the rosters to mask) and `close_batch` (grade,
~5 error annotations, 2 deductions, status and audit row per essay, then the completion check that queues a
finished class's report job and training plans). Tasks are planned with the configured batch token budget
(YUEJUAN_BATCH_TOKEN_BUDGET). One extra class goes through first, untimed, to warm up the process as a
running server has. The model is not run; its time per essay is an input (default: the CPU figure of
../shared/reference/inference-notes.md, 12.7 s for a 0.5B model at batch 4; pass a GPU figure from
bench/engine.py to compare against GPU time). Ends with one JSON line of the figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the standard library's `platform`: keep its folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import io
import json
import os
import statistics
import tempfile
import time
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run as a script: services/ and shared/ live beside bench/

DEFAULT_ESSAYS = REPO.parent / "shared" / "data" / "essays-acea" / "data.json"
DEFAULT_PG_URL = os.environ.get("YUEJUAN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DEFAULT_REDIS_URL = os.environ.get("YUEJUAN_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
CPU_MODEL_SECONDS_PER_ESSAY = 12.7


def load_texts(path: Path, count: int) -> tuple[list[str], str]:
    if path.exists():
        texts = []
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                record = json.loads(line)
                body = "\n".join("".join(s[0] for s in paragraph) for paragraph in record["para"])
                texts.append(f"{record['title']}\n{body}")
                if len(texts) == count:
                    break
        return [texts[i % len(texts)] for i in range(count)], str(path)
    sentence = "读书使人明智，也使人谦逊。我们应当珍惜时间，因为时间一去不复返。"
    return [f"读书的意义\n{sentence * 25}" for _ in range(count)], "synthetic"


def class_workbook(names: list[str], texts: list[str]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["姓名", "作文"])
    for name, text in zip(names, texts, strict=True):
        sheet.append([name, text])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def sample_outcome(job: Any) -> Any:
    """What the pipeline hands back for an essay: the real deterministic analysis, a model-like answer."""
    from services.worker.analysis import analyse
    from services.worker.jobs import DeductionItem, EssayOutcome, LocatedError
    from shared.prompts.rubric import resolve_rubric

    analysis = analyse(job.text, resolve_rubric(job.rubric_id, job.rubric_version), job.required_length)
    text = analysis.text
    errors = [
        LocatedError("错别字", i * 10, i * 10 + 2, text[i * 10:i * 10 + 2], "改", "形近字", "model") for i in range(5)
    ]
    return EssayOutcome(
        essay_id=job.essay_id, rubric_id=job.rubric_id, rubric_version=job.rubric_version or "",
        prompt_version="grade-v1", title=analysis.title, text=text, char_count=analysis.char_count,
        flags=list(analysis.injection_flags),
        dimension_scores={"content": 15, "expression": 14, "development": 12},
        bands={"content": "二等", "expression": "二等", "development": "二等"},
        evidence={"content": ["读书使人明智"]}, raw_total=41, total=39, comment="结构完整，论证尚可。" * 5,
        errors=errors, deductions=[DeductionItem("typo", -1, "错别字"), DeductionItem("length", -1, "字数不足")],
        model_name="Qwen/Qwen2.5-7B-Instruct", engine_name="transformers+xgrammar", prompt_tokens=1400,
        generated_tokens=420, latency_ms=900,
    )


class _Refuse:
    """Retry sender for the bench: every sample outcome is a success, so nothing may be requeued."""

    def send_task(self, name: str, args: Any = (), **options: Any) -> Any:
        raise AssertionError(f"unexpected requeue of {args}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    import redis
    from sqlalchemy import event, func, select

    from services.web.actor import Actor
    from services.web.essay_import import parse_uploaded_files, upload_limits, write_essays
    from services.web.ingest import RosterEntry
    from services.web.upload_store import save_preview
    from services.worker.batch import BatchRules, close_batch, open_batch
    from shared.celery_app import make_celery
    from shared.models import (
        Assignment,
        Classroom,
        ReportJob,
        Role,
        School,
        Student,
        User,
        make_engine,
        make_session_factory,
        transaction,
    )
    from shared.models.db import WORKER_PING_AFTER_IDLE_S
    from shared.models.migrate import upgrade
    from shared.models.scratch import create_database, drop_database
    from shared.queueing import enqueue_assignment, plan_batches
    from shared.settings import Settings

    total = args.classes * args.per_class
    texts, source = load_texts(args.essays, total)
    url = create_database(args.pg_url, "yuejuan_platform")
    redis.Redis.from_url(args.redis_url).flushdb()
    timings = {"ingest": 0.0, "enqueue": 0.0, "claim": 0.0, "write": 0.0}
    warm_up = dict.fromkeys(timings, 0.0)
    try:
        upgrade(url)
        with tempfile.TemporaryDirectory() as data_dir:
            settings = Settings(database_url=url, broker_url=args.redis_url, data_dir=Path(data_dir))
            engine = make_engine(url, ping_after_idle_s=WORKER_PING_AFTER_IDLE_S)  # as a worker's engine
            claiming = [False]

            @event.listens_for(engine, "checkin")
            def _as_if_the_model_ran(_dbapi_connection: Any, record: Any) -> None:
                # On a worker the model runs between claim and write, so the write's connection has been idle
                # long enough to be pinged (shared/models/db.py); make it so here without waiting.
                if claiming[0]:
                    record.info["idle_since"] = float("-inf")

            sessions = make_session_factory(engine)
            celery = make_celery(settings)
            assignments: list[tuple[dict[str, float], list[tuple[int, int]]]] = []
            with transaction(sessions) as session:
                school = School(name="基准中学")
                session.add(school)
                session.flush()
                teacher = User(username="bench", display_name="基准", role=Role.teacher, password_hash="x",
                               school_id=school.id)
                session.add(teacher)
                session.flush()
                teacher_id, school_id = teacher.id, school.id
            # Class 0 warms up (imports, Celery's backend lookup, connections, prepared statements), as a
            # running server has long done; only the classes after it are timed.
            for c in range(args.classes + 1):
                stages = warm_up if c == 0 else timings
                names = [f"学生{c:02d}{i:03d}" for i in range(args.per_class)]
                with transaction(sessions) as session:
                    classroom = Classroom(school_id=school_id, teacher_id=teacher_id, name=f"高三{c}班")
                    session.add(classroom)
                    session.flush()
                    session.add_all([Student(classroom_id=classroom.id, name=n) for n in names])
                    assignment = Assignment(classroom_id=classroom.id, title="作文", prompt_text="读书",
                                            rubric_id="gaokao-national", rubric_version="2024.1", created_by=teacher_id)
                    session.add(assignment)
                    session.flush()
                    assignment_id = assignment.id
                    roster = [RosterEntry(s.id, s.name, None) for s in
                              session.scalars(select(Student).where(Student.classroom_id == classroom.id))]
                class_texts = texts[(c - 1) * args.per_class:c * args.per_class] if c else texts[:args.per_class]
                upload = class_workbook(names, class_texts)
                started = time.perf_counter()
                preview = parse_uploaded_files([("作文.xlsx", upload)], roster, upload_limits(settings))
                assert preview.ok, preview.problems[:3]
                stored = save_preview(settings.data_dir, preview, user_id=teacher_id, assignment_id=assignment_id,
                                      filenames=["作文.xlsx"])
                with transaction(sessions) as session:
                    ids = write_essays(session, Actor("bench", teacher_id, "127.0.0.1"),
                                       session.get(Assignment, assignment_id), stored, replace=False)
                stages["ingest"] += time.perf_counter() - started
                started = time.perf_counter()
                with sessions() as session:
                    enqueue_assignment(session, celery, assignment_id, settings.batch_token_budget)
                stages["enqueue"] += time.perf_counter() - started
                with sessions() as session:
                    from shared.models import Essay

                    lengths = session.execute(select(Essay.id, Essay.char_count).where(Essay.id.in_(ids))).all()
                assignments.append((stages, [(row.id, row.char_count) for row in lengths]))
            rules = BatchRules(max_attempts=3, token_budget=settings.batch_token_budget)
            retry_sender = _Refuse()
            for stages, essays in assignments:
                for number, batch in enumerate(plan_batches(essays, settings.batch_token_budget)):
                    token = f"bench-{batch[0]}-{number}"
                    started = time.perf_counter()
                    claiming[0] = True
                    jobs = open_batch(sessions, batch, token, rules, is_retry=False)
                    stages["claim"] += time.perf_counter() - started
                    claiming[0] = False
                    assert sorted(job.essay_id for job in jobs) == sorted(batch)
                    outcomes = [sample_outcome(job) for job in jobs]
                    started = time.perf_counter()
                    counts = close_batch(celery, retry_sender, sessions, batch, jobs, outcomes, token, rules)
                    stages["write"] += time.perf_counter() - started
                    assert counts["graded"] == len(batch), counts
            queued_messages = redis.Redis.from_url(args.redis_url).llen("gpu")
            with sessions() as session:
                report_jobs = session.scalar(select(func.count()).select_from(ReportJob))
            assert report_jobs == args.classes + 1, f"{report_jobs} report jobs for {args.classes + 1} finished classes"
    finally:
        drop_database(args.pg_url, url)
        redis.Redis.from_url(args.redis_url).flushdb()
    per_essay_ms = {stage: seconds * 1000 / total for stage, seconds in timings.items()}
    platform_ms = sum(per_essay_ms.values())
    return {
        "essays": total, "essay_source": source, "messages_in_redis": queued_messages, "report_jobs": report_jobs,
        **{f"{stage}_ms_per_essay": round(ms, 3) for stage, ms in per_essay_ms.items()},
        "platform_ms_per_essay": round(platform_ms, 3),
        "model_seconds_per_essay": args.model_seconds_per_essay,
        "share_of_model_time_percent": round(platform_ms / (args.model_seconds_per_essay * 1000) * 100, 4),
    }


def median_figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One run's figures, or the median of each timed figure over several (and every run's total)."""
    if len(runs) == 1:
        return runs[0]
    figures = dict(runs[0])
    for key, value in runs[0].items():
        if key.endswith(("_ms_per_essay", "_percent")) and isinstance(value, float):
            figures[key] = round(statistics.median(run[key] for run in runs), 4)
    figures["runs"] = len(runs)
    figures["platform_ms_per_essay_each_run"] = [run["platform_ms_per_essay"] for run in runs]
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--essays", type=Path, default=DEFAULT_ESSAYS)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--model-seconds-per-essay", type=float, default=CPU_MODEL_SECONDS_PER_ESSAY)
    parser.add_argument("--repeat", type=int, default=1, help="whole runs, each on a fresh database; "
                        "the figures are their medians")
    args = parser.parse_args(argv)
    figures = median_figures([run(args) for _ in range(max(1, args.repeat))])
    for key, value in figures.items():
        print(f"{key}: {value}")
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
