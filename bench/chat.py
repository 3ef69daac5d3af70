"""Student chat latency: time to first token and tokens per second, with the worker idle and while it grades a class.

    python bench/chat.py [--model DIR] [--broker embedded|redis] [--database-url URL] [--turns 3] [--essays 16]
                         [--max-new-tokens 64]

Runs the production path end to end: a real worker process (`yuejuan worker --queues gpu`, which serves the chat
queue first), questions stored and enqueued by the web's own code (`services.web.chat_service.ask`), the answer
written into the turn's row as it grows. Time to first token is measured as the web sees it: from the question to
the first answer text in the row (polled every 5 ms, as the SSE relay polls it every 150 ms), so it includes the
broker and any wait for the batch being graded. Tokens per second: the turn's new tokens over the time from first
text to the end. Without --model a tiny random-weight Qwen2 is built (figures are for the plumbing, not a real
model); the default broker is the embedded SQLite transport of `make up` (it polls: expect about a second of
broker latency); --broker redis uses YUEJUAN_BENCH_REDIS_URL. Ends with one JSON line.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/platform.py is named like the standard library's `platform`: keep this folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DEFAULT_REDIS_URL = os.environ.get("YUEJUAN_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
QUESTIONS = ["我的作文开头怎么写才能开门见山？", "议论文的结尾怎么呼应开头？", "怎样避免错别字？",
             "论据怎么选才有说服力？"]
MATERIAL = ("议论文的开头要开门见山，直接提出论点，也可以引用名言引出论点。\n结尾要呼应开头，升华主题。\n"
            "论据要真实、典型、新颖，事实论据和道理论据结合使用。")
POLL_S = 0.005


def essay_texts(count: int) -> list[str]:
    sentence = "读书使人明智，也使人谦逊。我们应当珍惜时间，因为时间一去不复返。"
    return [f"读书的意义（{i}）\n{sentence * 20}" for i in range(count)]


def wait_ready(sessions: Any, process: subprocess.Popen[bytes], timeout: float = 600) -> None:
    from sqlalchemy import select

    from shared.models import WorkerStatus

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the worker exited with status {process.returncode}")
        with sessions() as session:
            if session.scalar(select(WorkerStatus.id).where(WorkerStatus.state == "ready")):
                return
        time.sleep(0.2)
    raise SystemExit("the worker did not become ready")


def setup(sessions: Any, essays: int) -> dict[str, Any]:
    from services.web.actor import Actor
    from services.web.chat_admin import add_material
    from services.web.ingest.material import MaterialText
    from shared.models import Assignment, Classroom, Essay, Role, School, Student, StudentAccess, User, transaction

    tag = uuid.uuid4().hex[:8]
    with transaction(sessions) as session:
        school = School(name=f"基准中学-{tag}")
        session.add(school)
        session.flush()
        teacher = User(username=f"bench-{tag}", display_name="基准老师", role=Role.teacher, school_id=school.id,
                       password_hash="x")
        session.add(teacher)
        session.flush()
        classroom = Classroom(school_id=school.id, teacher_id=teacher.id, name=f"高三-{tag}")
        session.add(classroom)
        session.flush()
        students = [Student(classroom_id=classroom.id, name=f"学生{i}", student_number=f"{i:03d}")
                    for i in range(essays + 1)]
        session.add_all(students)
        assignment = Assignment(classroom_id=classroom.id, title="读书作文", prompt_text="以“读书”为题写一篇议论文。",
                                rubric_id="gaokao-national", rubric_version="2024.1", created_by=teacher.id)
        session.add(assignment)
        session.flush()
        for student, text in zip(students[1:], essay_texts(essays), strict=True):
            session.add(Essay(assignment_id=assignment.id, student_id=student.id, text=text, char_count=len(text),
                              title=text.split("\n", 1)[0]))
        session.add(StudentAccess(classroom_id=classroom.id, grades_open=True, chat_open=True))
        add_material(session, Actor("bench", teacher.id, None), classroom, MaterialText("写作讲义", MATERIAL))
        return {"school": school.id, "assignment": assignment.id, "asker": students[0].id}


def ask_and_follow(sessions: Any, settings: Any, sender: Any, ids: dict[str, Any], question: str) -> dict[str, Any]:
    from services.web.actor import Actor
    from services.web.chat_service import ask
    from shared.models import ChatTurn, Student
    from shared.models.chat import FINISHED

    with sessions() as session:
        student = session.get(Student, ids["asker"])
        started = time.perf_counter()
        turn = ask(session, Actor("bench", None, None), student, ids["school"], question, settings, sender)
        turn_id = turn.id
    first = None
    while True:
        with sessions() as session:
            row = session.get(ChatTurn, turn_id)
            answer, status, tokens = row.answer, row.status, row.new_tokens
        now = time.perf_counter()
        if first is None and answer:
            first = now
        if status in FINISHED:
            break
        time.sleep(POLL_S)
    if status != "done":
        raise SystemExit(f"chat turn {turn_id} ended {status}")
    first = first or now
    return {"ttft_s": round(first - started, 3), "total_s": round(now - started, 3), "new_tokens": tokens,
            "tokens_per_s": round(tokens / (now - first), 1) if now > first else None}


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    rates = [r["tokens_per_s"] for r in rows if r["tokens_per_s"]]
    return {"turns": len(rows), "ttft_s_median": round(statistics.median(r["ttft_s"] for r in rows), 3),
            "ttft_s_max": max(r["ttft_s"] for r in rows),
            "tokens_per_s_median": round(statistics.median(rates), 1) if rates else None}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import func, select

    from shared.celery_app import make_celery
    from shared.file_modes import make_private_dir
    from shared.models import Essay, EssayStatus, make_engine, make_session_factory
    from shared.models.migrate import upgrade
    from shared.queueing import enqueue_assignment
    from shared.settings import Settings

    work = Path(tempfile.mkdtemp(prefix="yuejuan-chat-bench-"))
    model = args.model
    if model is None:
        from tests.tiny_model import build_tiny_qwen2

        model = str(work / "tiny-model")
        build_tiny_qwen2(Path(model))
    broker = DEFAULT_REDIS_URL if args.broker == "redis" else None
    settings = Settings(data_dir=work / "data", database_url=args.database_url, broker_url=broker,
                        chat_max_new_tokens=args.max_new_tokens, device="cpu", model=model)
    make_private_dir(settings.data_dir)
    url = settings.resolved_database_url()
    upgrade(url)
    sessions = make_session_factory(make_engine(url))
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUEJUAN_")}
    env.update({"YUEJUAN_DATA_DIR": str(settings.data_dir), "YUEJUAN_MODEL": model, "YUEJUAN_DEVICE": "cpu",
                "YUEJUAN_CHAT_MAX_NEW_TOKENS": str(args.max_new_tokens), "PYTHONPATH": str(REPO)})
    if args.database_url:
        env["YUEJUAN_DATABASE_URL"] = args.database_url
    if broker:
        env["YUEJUAN_BROKER_URL"] = broker
        import redis

        redis.Redis.from_url(broker).flushdb()
    log = (work / "worker.log").open("wb")
    worker = subprocess.Popen([sys.executable, "-m", "services.cli", "worker", "--queues", "gpu"], env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    sender = make_celery(settings)
    try:
        wait_ready(sessions, worker)
        ids = setup(sessions, args.essays)
        ask_and_follow(sessions, settings, sender, ids, "作文怎么写？")  # warm-up: first generation allocates
        idle = [ask_and_follow(sessions, settings, sender, ids, QUESTIONS[i % len(QUESTIONS)])
                for i in range(args.turns)]
        graded_before = time.perf_counter()
        with sessions() as session:
            tasks = enqueue_assignment(session, sender, ids["assignment"], settings.batch_token_budget)
        busy = []
        for i in range(args.turns):
            with sessions() as session:
                waiting = session.scalar(select(func.count(Essay.id)).where(
                    Essay.assignment_id == ids["assignment"], Essay.status.in_([EssayStatus.queued,
                                                                                 EssayStatus.grading])))
            if not waiting:
                break
            row = ask_and_follow(sessions, settings, sender, ids, QUESTIONS[i % len(QUESTIONS)])
            busy.append({**row, "essays_left_when_asked": waiting})
        while True:
            with sessions() as session:
                left = session.scalar(select(func.count(Essay.id)).where(
                    Essay.assignment_id == ids["assignment"], Essay.status.in_([EssayStatus.queued,
                                                                                EssayStatus.grading])))
            if not left:
                break
            time.sleep(0.2)
        grading_s = time.perf_counter() - graded_before
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    return {
        "bench": "chat", "model": "tiny random Qwen2" if args.model is None else model, "device": "cpu",
        "broker": args.broker, "database": url.split(":", 1)[0], "max_new_tokens": args.max_new_tokens,
        "idle": summary(idle), "while_grading": summary(busy) if busy else None,
        "grading": {"essays": args.essays, "tasks": tasks, "seconds": round(grading_s, 1)},
        "rows": {"idle": idle, "while_grading": busy},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="a model directory (default: a tiny random Qwen2)")
    parser.add_argument("--broker", choices=["embedded", "redis"], default="embedded")
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temporary data directory")
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--essays", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args(argv)
    result = run(args)
    for phase in ("idle", "while_grading"):
        figures = result[phase]
        if figures:
            print(f"{phase:>14}: time to first token {figures['ttft_s_median']:.3f} s (median of {figures['turns']}, "
                  f"max {figures['ttft_s_max']:.3f} s), {figures['tokens_per_s_median']} tokens/s")
    print(f"grading {args.essays} essays in {result['grading']['tasks']} tasks took {result['grading']['seconds']} s")
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
