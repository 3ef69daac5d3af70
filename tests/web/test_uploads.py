"""Uploading essays: preview stored server-side, confirm writes everything or nothing, then grading is queued."""

from __future__ import annotations

import io
import zipfile
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from shared.models import AuditLog, Essay, EssayStatus, Grade, Student
from tests.web.conftest import TaskRecorder, client_as, form
from tests.web.world import ESSAY_TEXT, World, essay_zip


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
    with app.extensions["yuejuan"]["sessions"]() as session, session.begin():
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
