"""Uploading essays: preview stored server-side, confirm writes everything or nothing, then grading is queued."""

from __future__ import annotations

import errno
import io
import os
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from services.web.state import app_state
from services.web.upload_store import claim_confirmation, load_preview
from services.web.views.uploads import ALREADY_CONFIRMED, BEING_CONFIRMED
from shared import upload_previews
from shared.models import AuditLog, Essay, EssayStatus, Grade, Student
from shared.upload_previews import STALE_CLAIM_S
from tests.factories.world import ESSAY_TEXT, World, essay_zip
from tests.web.conftest import TaskRecorder, client_as, form


def _upload(client: FlaskClient, assignment_id: int, *files: tuple[str, bytes]) -> Any:
    data = form(files=[(io.BytesIO(content), name) for name, content in files])
    return client.post(f"/assignments/{assignment_id}/upload", data=data, content_type="multipart/form-data")


def _token(response: Any) -> str:
    assert response.status_code == 303, response.get_data(as_text=True)[-2000:]
    return response.headers["Location"].rsplit("/", 1)[1]


def _essays(sessions: sessionmaker[Session], assignment_id: int) -> dict[int, Essay]:
    with sessions() as session:
        return {e.student_id: e for e in session.scalars(select(Essay).where(Essay.assignment_id == assignment_id))}


def test_zip_upload_preview_confirm_writes_essays_audits_and_queues(
    app: Flask, world: World, sessions: sessionmaker[Session], tasks: TaskRecorder
) -> None:
    client = client_as(app, world.users["owner"])
    token = _token(_upload(client, world.assignment, ("班级作文.zip", essay_zip({"王五.txt": ESSAY_TEXT}))))
    page = client.get(f"/uploads/{token}").get_data(as_text=True)
    assert "王五.txt" in page and "确认导入 1 篇" in page and str(len(ESSAY_TEXT)) in page
    assert set(_essays(sessions, world.assignment)) == {world.students[0], world.students[1]}, "nothing written yet"
    confirmed = client.post(f"/uploads/{token}/confirm", data=form())
    assert confirmed.status_code == 303 and confirmed.headers["Location"] == f"/assignments/{world.assignment}"
    essays = _essays(sessions, world.assignment)
    new = essays[world.students[2]]
    assert new.status == EssayStatus.queued and new.text.startswith("读书的意义") and new.char_count > 0
    assert tasks.sent == [("grading.grade_batch", [[new.id]])]
    with sessions() as session:
        actions = session.scalars(
            select(AuditLog.action).where(AuditLog.object_type == "assignment", AuditLog.object_id == world.assignment)
        ).all()
    assert "upload.preview" in actions and "upload.confirm" in actions
    assert client.get(f"/uploads/{token}").status_code == 404, "a confirmed preview is gone"


def test_several_txt_files_are_parsed_together(app: Flask, world: World) -> None:
    client = client_as(app, world.users["owner"])
    token = _token(_upload(client, world.assignment, ("王五.txt", ESSAY_TEXT.encode()), ("003.txt", b"x")))
    page = client.get(f"/uploads/{token}").get_data(as_text=True)
    assert "王五.txt" in page and "003.txt" in page


def test_problems_block_the_import_and_nothing_is_half_written(
    app: Flask, world: World, sessions: sessionmaker[Session], tasks: TaskRecorder
) -> None:
    client = client_as(app, world.users["owner"])
    upload = essay_zip({"王五.txt": ESSAY_TEXT, "赵六.txt": ESSAY_TEXT})
    token = _token(_upload(client, world.assignment, ("作文.zip", upload)))
    page = client.get(f"/uploads/{token}").get_data(as_text=True)
    assert "未匹配" in page and "赵六" in page and "不能导入" in page and 'id="confirm-form"' not in page
    before = _essays(sessions, world.assignment)
    refused = client.post(f"/uploads/{token}/confirm", data=form(), follow_redirects=True)
    assert "未导入任何作文" in refused.get_data(as_text=True)
    assert _essays(sessions, world.assignment).keys() == before.keys()
    assert tasks.sent == []


def test_a_student_who_already_has_an_essay_is_a_clear_error_unless_replaced(
    app: Flask, world: World, sessions: sessionmaker[Session], tasks: TaskRecorder
) -> None:
    client = client_as(app, world.users["owner"])
    token = _token(_upload(client, world.assignment, ("作文.zip", essay_zip({"张三.txt": ESSAY_TEXT + "新版"}))))
    assert "已有作文" in client.get(f"/uploads/{token}").get_data(as_text=True)
    refused = client.post(f"/uploads/{token}/confirm", data=form(), follow_redirects=True)
    assert "张三" in refused.get_data(as_text=True) and "替换已有作文" in refused.get_data(as_text=True)
    old = _essays(sessions, world.assignment)[world.students[0]]
    assert old.id == world.essay and tasks.sent == []
    replaced = client.post(f"/uploads/{token}/confirm", data=form(replace="1"))
    assert replaced.status_code == 303
    new = _essays(sessions, world.assignment)[world.students[0]]
    assert new.id != world.essay and new.text.endswith("新版") and new.status == EssayStatus.queued
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Grade).where(Grade.essay_id == world.essay)) == 0
        assert session.scalar(select(AuditLog.id).where(AuditLog.action == "essay.replace",
                                                        AuditLog.object_id == world.essay)) is not None


def test_corrupt_file_is_rejected_with_a_clear_message(
    app: Flask, world: World, sessions: sessionmaker[Session]
) -> None:
    client = client_as(app, world.users["owner"])
    response = _upload(client, world.assignment, ("作文.docx", b"PK\x03\x04 this is not really a docx"))
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "作文.docx" in body and ("损坏" in body or "不符" in body)
    assert len(_essays(sessions, world.assignment)) == 2


def test_zip_slip_is_refused_with_a_message(app: Flask, world: World, sessions: sessionmaker[Session]) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../../etc/王五.txt", ESSAY_TEXT)
    client = client_as(app, world.users["owner"])
    response = _upload(client, world.assignment, ("evil.zip", buffer.getvalue()))
    assert response.status_code == 400
    assert "路径穿越" in response.get_data(as_text=True)
    assert len(_essays(sessions, world.assignment)) == 2
    with sessions() as session:
        rejected = session.scalar(select(AuditLog).where(AuditLog.action == "upload.rejected",
                                                         AuditLog.object_id == world.assignment))
    assert rejected is not None and rejected.details["files"] == 1 and rejected.details["file_types"] == ["zip"]


def test_mixed_file_types_in_one_selection_are_refused(app: Flask, world: World) -> None:
    client = client_as(app, world.users["owner"])
    response = _upload(client, world.assignment, ("a.txt", b"x"), ("b.zip", essay_zip({"王五.txt": ESSAY_TEXT})))
    assert response.status_code == 400 and "单独上传" in response.get_data(as_text=True)


def test_an_empty_roster_asks_for_the_roster_first(app: Flask, world: World) -> None:
    client = client_as(app, world.users["outsider"])
    with app_state(app).sessions() as session, session.begin():
        session.execute(delete(Student).where(Student.classroom_id == world.classroom_b))
    response = _upload(client, world.assignment_b, ("钱七.txt", ESSAY_TEXT.encode()))
    assert response.status_code == 400 and "名单还是空的" in response.get_data(as_text=True)


def test_previews_belong_to_their_uploader_and_bad_tokens_are_404(app: Flask, world: World) -> None:
    admin = client_as(app, world.users["admin"])
    assert admin.get(f"/uploads/{world.upload_token}").status_code == 404
    owner = client_as(app, world.users["owner"])
    assert owner.get(f"/uploads/{world.upload_token}").status_code == 200
    assert owner.get("/uploads/..%2f..%2fetc%2fpasswd").status_code == 404
    assert owner.get("/uploads/short").status_code == 404


# --- a double click on 确认导入 --------------------------------------------------------------------------


def _confirm_count(sessions: sessionmaker[Session], assignment_id: int) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(AuditLog).where(
            AuditLog.action == "upload.confirm", AuditLog.object_id == assignment_id)) or 0


def _flashes(client: FlaskClient) -> list[str]:
    with client.session_transaction() as sess:
        return [message for _, message in sess.get("_flashes", [])]


def test_a_second_confirm_of_the_same_preview_lands_on_the_assignment_page(
    app: Flask, world: World, sessions: sessionmaker[Session], tasks: TaskRecorder
) -> None:
    client = client_as(app, world.users["owner"])
    token = _token(_upload(client, world.assignment, ("王五.txt", ESSAY_TEXT.encode())))
    first = client.post(f"/uploads/{token}/confirm", data=form())
    assert first.status_code == 303 and first.headers["Location"] == f"/assignments/{world.assignment}"
    client.get(first.headers["Location"])  # shows (and clears) the first flash
    again = client.post(f"/uploads/{token}/confirm", data=form())
    assert again.status_code == 303 and again.headers["Location"] == f"/assignments/{world.assignment}"
    assert _flashes(client) == [ALREADY_CONFIRMED]
    page = client.get(again.headers["Location"])
    assert page.status_code == 200 and ALREADY_CONFIRMED in page.get_data(as_text=True)
    assert set(_essays(sessions, world.assignment)) == set(world.students), "王五's essay exactly once"
    assert _confirm_count(sessions, world.assignment) == 1 and len(tasks.sent) == 1
    # Another user cannot learn anything from the token.
    assert client_as(app, world.users["colleague"]).post(f"/uploads/{token}/confirm", data=form()).status_code == 404


def test_a_confirm_while_another_click_is_importing_waits_for_it(
    app: Flask, world: World, sessions: sessionmaker[Session], web_data_dir: Path
) -> None:
    client = client_as(app, world.users["owner"])
    stored = load_preview(web_data_dir, world.upload_token, user_id=world.users["owner"])
    assert stored is not None and claim_confirmation(web_data_dir, stored)  # the first click, still writing
    busy = client.post(f"/uploads/{world.upload_token}/confirm", data=form())
    assert busy.status_code == 303 and busy.headers["Location"] == f"/assignments/{world.assignment}"
    assert _flashes(client) == [BEING_CONFIRMED]
    assert world.students[2] not in _essays(sessions, world.assignment)

    # A claim left by a confirm that died minutes ago is taken over.
    claim = web_data_dir / "uploads" / f"{world.upload_token}.confirmed.json"
    old = time.time() - STALE_CLAIM_S - 60
    os.utime(claim, (old, old))
    done = client.post(f"/uploads/{world.upload_token}/confirm", data=form())
    assert done.status_code == 303 and _flashes(client)[-1].startswith("已导入 1 篇作文")
    assert set(_essays(sessions, world.assignment)) == set(world.students)
    assert _confirm_count(sessions, world.assignment) == 1


def test_two_simultaneous_confirms_import_once_and_both_land_on_the_assignment(
    app: Flask, world: World, sessions: sessionmaker[Session]
) -> None:
    clients = [client_as(app, world.users["owner"]) for _ in range(2)]
    start = threading.Barrier(2)

    def click(client: FlaskClient) -> Any:
        start.wait()
        return client.post(f"/uploads/{world.upload_token}/confirm", data=form())

    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(click, clients))
    assert [r.status_code for r in responses] == [303, 303]
    assert {r.headers["Location"] for r in responses} == {f"/assignments/{world.assignment}"}
    messages = sorted(_flashes(client)[0] for client in clients)
    assert messages[0].startswith("已导入 1 篇作文") and messages[1] in (ALREADY_CONFIRMED, BEING_CONFIRMED)
    assert set(_essays(sessions, world.assignment)) == set(world.students)
    assert _confirm_count(sessions, world.assignment) == 1


# --- a full disk ------------------------------------------------------------------------------------------


def _disk_error(monkeypatch: pytest.MonkeyPatch, code: int) -> list[int]:
    """Writing a preview gets half-way, then fails with ``code`` (ENOSPC: the disk is full)."""
    real_write, calls = upload_previews._write_all, []

    def write(handle: int, data: bytes) -> None:
        calls.append(len(data))
        real_write(handle, data[: len(data) // 2])
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(upload_previews, "_write_all", write)
    return calls


def _upload_dir_files(web_data_dir: Path) -> set[str]:
    return {path.name for path in (web_data_dir / "uploads").iterdir()}


def test_an_upload_on_a_full_disk_is_507_with_a_message_and_leaves_no_file(
    app: Flask, world: World, sessions: sessionmaker[Session], web_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _upload_dir_files(web_data_dir)
    calls = _disk_error(monkeypatch, errno.ENOSPC)
    client = client_as(app, world.users["owner"])
    response = _upload(client, world.assignment, ("王五.txt", ESSAY_TEXT.encode()))
    assert calls, "the preview write was reached"
    assert response.status_code == 507
    page = response.get_data(as_text=True)
    assert "服务器磁盘空间不足，上传未保存，请联系管理员" in page and str(web_data_dir) not in page
    assert _upload_dir_files(web_data_dir) == before, "no temporary or partial file is left"
    with sessions() as session:
        reasons = session.scalars(select(AuditLog.details).where(
            AuditLog.action == "upload.rejected", AuditLog.object_id == world.assignment)).all()
    assert [details["reason"] for details in reasons] == ["disk_full"]

    api = app.test_client().post(
        f"/api/v1/assignments/{world.assignment}/essays", headers={"Authorization": f"Bearer {world.tokens['owner']}"},
        data={"files": [(io.BytesIO(ESSAY_TEXT.encode()), "王五.txt")]}, content_type="multipart/form-data")
    assert api.status_code == 507 and "磁盘空间不足" in api.get_json()["error"]
    assert _upload_dir_files(web_data_dir) == before


def test_an_upload_on_a_read_only_disk_is_503(
    app: Flask, world: World, web_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _upload_dir_files(web_data_dir)
    _disk_error(monkeypatch, errno.EROFS)
    response = _upload(client_as(app, world.users["owner"]), world.assignment, ("王五.txt", ESSAY_TEXT.encode()))
    assert response.status_code == 503 and "上传未保存" in response.get_data(as_text=True)
    assert _upload_dir_files(web_data_dir) == before


def test_a_confirm_on_a_full_disk_imports_nothing_and_can_be_repeated(
    app: Flask, world: World, sessions: sessionmaker[Session], web_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _upload_dir_files(web_data_dir)
    with monkeypatch.context() as patch:
        _disk_error(patch, errno.ENOSPC)
        full = client_as(app, world.users["owner"]).post(f"/uploads/{world.upload_token}/confirm", data=form())
    assert full.status_code == 507 and "磁盘空间不足" in full.get_data(as_text=True)
    assert _upload_dir_files(web_data_dir) == before and world.students[2] not in _essays(sessions, world.assignment)
    again = client_as(app, world.users["owner"]).post(f"/uploads/{world.upload_token}/confirm", data=form())
    assert again.status_code == 303 and set(_essays(sessions, world.assignment)) == set(world.students)
