"""Time and memory of building the school workbook over a large, fully graded school.

    python bench/reports.py [--classes 100] [--students 50] [--assignments 10] [--errors 3]
                            [--overrides 0.02] [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test]

A fresh PostgreSQL database is created next to ``--pg-url`` (default ``YUEJUAN_TEST_PG_URL``), migrated
with Alembic, filled with COPY (classes × students × assignments graded essays, each grade with
``--errors`` error annotations and one deduction; a share of essays also get a teacher's override, so
effective-grade selection has work to do), analysed, and dropped at the end.

Only the workbook build is measured, each time in a fresh child process so that its peak RSS is the
build's own (plus the interpreter and imports, reported separately): one run for wall time and
``ru_maxrss``, one under ``tracemalloc`` for the peak of Python allocations (tracing slows it down, so its
time is reported apart). The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PG_URL = os.environ.get("YUEJUAN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DIMENSIONS = (("content", 20), ("expression", 20), ("development", 20))
ERROR_SAMPLES = (
    ("错别字", "再接再励", "再接再厉"), ("错别字", "必需", "必须"), ("用词不当", "截止", "截至"),
    ("标点", "，，", "，"), ("病句", "通过这次活动使我明白了", "这次活动使我明白了"), ("关联词", "既然", "如果"),
)
ESSAY_TEXT = ("读书使人明智，也使人谦逊。" * 70)[:800]
TERM_START = datetime(2025, 2, 17, 0, 30, tzinfo=UTC)


# --- the database ----------------------------------------------------------------------------------------


def _copy(cursor: Any, table: str, columns: str, rows: Iterator[tuple[Any, ...]]) -> int:
    count = 0
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def load(url: str, args: argparse.Namespace) -> dict[str, int]:
    """Fill the database with one school; ids are assigned here so related rows stream without lookups."""
    from sqlalchemy import create_engine

    rng = random.Random(20250217)
    now = datetime.now(UTC)
    classes, students, assignments = args.classes, args.students, args.assignments
    teachers = max(1, classes // 2)
    engine = create_engine(url)
    counts: dict[str, int] = {}
    raw = engine.raw_connection()
    try:
        cursor = raw.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.execute("INSERT INTO schools (id, name, created_at) VALUES (1, '基准测试中学', %s)", (now,))
        counts["users"] = _copy(cursor, "users", "id, school_id, username, display_name, role, password_hash, "
                                "is_active, created_at",
                                ((t, 1, f"teacher{t}", f"教师{t:03d}", "teacher", "x", True, now)
                                 for t in range(1, teachers + 1)))
        counts["classrooms"] = _copy(cursor, "classrooms", "id, school_id, teacher_id, name, created_at",
                                     ((c, 1, 1 + (c - 1) % teachers, f"高三（{c}）班", now)
                                      for c in range(1, classes + 1)))
        counts["students"] = _copy(cursor, "students", "id, classroom_id, name, student_number, created_at",
                                   (((c - 1) * students + s, c, f"学生{c}-{s}", f"{c:03d}{s:03d}", now)
                                    for c in range(1, classes + 1) for s in range(1, students + 1)))
        counts["assignments"] = _copy(
            cursor, "assignments",
            "id, classroom_id, title, prompt_text, genre, rubric_id, rubric_version, required_length, created_at",
            (((c - 1) * assignments + k, c, f"第{k}次作文", "以“读书”为题写一篇议论文。", "议论文", "gaokao-national",
              "2024.1", 800, TERM_START + timedelta(weeks=2 * (k - 1), minutes=c))
             for c in range(1, classes + 1) for k in range(1, assignments + 1)),
        )

        def essays() -> Iterator[tuple[Any, ...]]:
            for c in range(1, classes + 1):
                for k in range(1, assignments + 1):
                    for s in range(1, students + 1):
                        essay_id = ((c - 1) * assignments + (k - 1)) * students + s
                        yield (essay_id, (c - 1) * assignments + k, (c - 1) * students + s, ESSAY_TEXT,
                               rng.randint(500, 1000), "graded", 1, "[]", now, now)

        counts["essays"] = _copy(cursor, "essays", "id, assignment_id, student_id, text, char_count, status, "
                                 "attempts, flags, created_at, finished_at", essays())
        grade_rows: list[tuple[int, int]] = []  # (grade id, essay id), kept for errors and deductions

        def grades() -> Iterator[tuple[Any, ...]]:
            grade_id = 0
            for essay_id in range(1, counts["essays"] + 1):
                versions = 2 if rng.random() < args.overrides else 1
                for version in range(1, versions + 1):
                    grade_id += 1
                    grade_rows.append((grade_id, essay_id))
                    scores = {key: rng.randint(top // 4, top) for key, top in DIMENSIONS}
                    raw_total = sum(scores.values())
                    yield (grade_id, essay_id, version, "gaokao-national", "2024.1", "grade-v1",
                           json.dumps(scores), "{}", "{}", raw_total, raw_total - 1, "[]", "评语",
                           "model" if version == 1 else "teacher", 0, now + timedelta(seconds=version))

        counts["grades"] = _copy(cursor, "grades", "id, essay_id, version, rubric_id, rubric_version, prompt_version, "
                                 "dimension_scores, bands, evidence, raw_total, total, caps, comment, source, "
                                 "dropped_quotes, created_at", grades())

        def errors() -> Iterator[tuple[Any, ...]]:
            for grade_id, _ in grade_rows:
                for i in range(args.errors):
                    kind, original, suggestion = rng.choice(ERROR_SAMPLES)
                    yield grade_id, kind, 10 * i, 10 * i + len(original), original, suggestion, "", "model"

        counts["error_annotations"] = _copy(
            cursor, "error_annotations",
            "grade_id, type, start_offset, end_offset, original, suggestion, explanation, origin", errors(),
        )
        counts["deductions"] = _copy(cursor, "deductions", "grade_id, rule, points, detail",
                                     ((grade_id, "length", -1, "字数不足") for grade_id, _ in grade_rows))
        for table in ("users", "classrooms", "students", "assignments", "essays", "grades", "schools"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        raw.commit()
        raw.driver_connection.autocommit = True  # type: ignore[union-attr]
        cursor.execute("VACUUM ANALYZE")
    finally:
        raw.close()
        engine.dispose()
    return counts


# --- the measured build ----------------------------------------------------------------------------------


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _build(url: str, out: str, traced: bool, queue: Any) -> None:
    """Child process: import everything, then build once and report the figures."""
    import tracemalloc

    from services.worker.reports.school_workbook import build_school_workbook
    from shared.models import make_engine, make_session_factory

    engine = make_engine(url)
    sessions = make_session_factory(engine)
    rss_before = _max_rss_mb()
    if traced:
        tracemalloc.start()
    started = time.perf_counter()
    with sessions() as session:
        build_school_workbook(session, 1, Path(out))
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 2**20 if traced else None
    if traced:
        tracemalloc.stop()
    engine.dispose()
    queue.put({"seconds": elapsed, "rss_before_mb": rss_before, "max_rss_mb": _max_rss_mb(), "tracemalloc_mb": peak})


def measure(url: str, out: Path, traced: bool) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_build, args=(url, str(out), traced, queue))
    child.start()
    result = queue.get(timeout=600)
    child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"build process exited with {child.exitcode}")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--students", type=int, default=50)
    parser.add_argument("--assignments", type=int, default=10)
    parser.add_argument("--errors", type=int, default=3, help="error annotations per grade")
    parser.add_argument("--overrides", type=float, default=0.02, help="share of essays with a teacher's override")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="an existing database next to which to create one")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Run as a script, this folder heads the import path and bench/platform.py would shadow the standard
    # library's platform module; the repository root takes its place.
    here = Path(__file__).resolve().parent
    sys.path[:] = [str(REPO), *(p for p in sys.path if Path(p or ".").resolve() != here)]
    from shared.models.migrate import upgrade
    from shared.models.scratch import create_database, drop_database

    url = create_database(args.pg_url, "yuejuan_bench")
    try:
        upgrade(url)
        started = time.perf_counter()
        counts = load(url, args)
        load_s = time.perf_counter() - started
        print(f"loaded {counts['essays']} essays, {counts['grades']} grades, {counts['error_annotations']} errors, "
              f"{counts['deductions']} deductions in {load_s:.1f} s")
        with tempfile.TemporaryDirectory() as directory:
            out = Path(directory) / "school.xlsx"
            plain = measure(url, out, traced=False)
            size_mb = out.stat().st_size / 2**20
            traced = measure(url, out, traced=True)
    finally:
        drop_database(args.pg_url, url)
    print(f"school workbook: {plain['seconds']:.2f} s, max RSS {plain['max_rss_mb']:.0f} MB "
          f"(of which {plain['rss_before_mb']:.0f} MB before the build: interpreter and imports), "
          f"file {size_mb:.2f} MB")
    print(f"under tracemalloc: peak {traced['tracemalloc_mb']:.1f} MB of Python allocations, {traced['seconds']:.2f} s")
    figures = {
        "classes": args.classes, "students": args.classes * args.students, "assignments": counts["assignments"],
        "essays": counts["essays"], "grades": counts["grades"], "error_annotations": counts["error_annotations"],
        "deductions": counts["deductions"], "load_s": round(load_s, 1), "build_s": round(plain["seconds"], 2),
        "max_rss_mb": round(plain["max_rss_mb"], 1), "rss_before_build_mb": round(plain["rss_before_mb"], 1),
        "tracemalloc_peak_mb": round(traced["tracemalloc_mb"], 1), "build_s_traced": round(traced["seconds"], 2),
        "file_mb": round(size_mb, 2), "cpus": os.cpu_count(),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
