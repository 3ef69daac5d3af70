"""Every object route × {owner teacher, colleague, teacher of another school, school admin, other school's admin}.

Objects outside a user's scope answer 404 (as if they did not exist); admin-only pages answer 403 to teachers.
Mutating routes are checked for the denied users first (nothing may change), then for the owner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask

from tests.factories.world import World
from tests.web.conftest import client_as, form

CLASS_SCOPE = {"owner": "ok", "colleague": 404, "outsider": 404, "admin": "ok", "other_admin": 404}
UPLOADER_ONLY = {"owner": "ok", "colleague": 404, "outsider": 404, "admin": 404, "other_admin": 404}
ADMINS_ONLY = {"owner": 403, "colleague": 403, "outsider": 403, "admin": "ok", "other_admin": "ok"}
OWN_SCHOOL_ADMIN = {"owner": 404, "colleague": 404, "outsider": 404, "admin": "ok", "other_admin": 404}
SCHOOL_ADMIN_PAGE = {"owner": 403, "colleague": 403, "outsider": 403, "admin": "ok", "other_admin": 404}
# 三评/终评: the class teacher sees the essay but has no right (403); a 备课组长 role would open it to a colleague.
ARBITERS = {"owner": 403, "colleague": 404, "outsider": 404, "admin": "ok", "other_admin": 404}
# The world's evaluation job has not run: its workbook is missing (404) for everyone, the others are refused first.
SCHOOL_ADMIN_PAGE_MISSING = {**SCHOOL_ADMIN_PAGE, "admin": 404}
# School and role administration: sysadmins only (tests/web/test_accounts.py covers the sysadmin).
SYSADMIN_ONLY = {"owner": 403, "colleague": 403, "outsider": 403, "admin": 403, "other_admin": 403}
# A built-in rubric: every signed-in user may read it (a school's own: tests/web/test_small_fixes.py).
EVERYONE = {"owner": "ok", "colleague": "ok", "outsider": "ok", "admin": "ok", "other_admin": "ok"}
# Deleting a material that does not exist: 404 for the owner too, and for the others before anything is looked up.
CLASS_SCOPE_NOTHING_THERE = {**CLASS_SCOPE, "owner": 404, "admin": 404}
STUDENTS_ONLY = {"owner": 403, "colleague": 403, "outsider": 403, "admin": 403, "other_admin": 403}
ORDER = ("colleague", "outsider", "other_admin", "admin", "owner")


@dataclass(frozen=True)
class Route:
    endpoint: str
    method: str
    path: str
    expect: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)
    json: dict[str, Any] | None = None
    mutating: bool = False
    api: bool = False

    def url(self, world: World) -> str:
        return self.fill(self.path, world)

    def fill(self, text: str, world: World) -> str:
        return text.format(
            c=world.classroom, s=world.students[2], a=world.assignment, e=world.essay, f=world.flagged_essay,
            t=world.upload_token, cr=world.class_report, sr=world.school_report, sa=world.school_a,
            ev=world.eval_job, u=world.users["colleague"], ad=world.adapter, lp=world.lesson_plan,
            m=world.school_material,
        )

    def filled_json(self, world: World) -> dict[str, Any] | None:
        if self.json is None:
            return None
        return {key: self.fill(value, world) if isinstance(value, str) else value for key, value in self.json.items()}


PAGES = [
    Route("classes.show", "GET", "/classes/{c}", CLASS_SCOPE),
    Route("classes.add", "POST", "/classes/{c}/students", CLASS_SCOPE, data={"name": ""}),
    Route("classes.remove", "POST", "/classes/{c}/students/{s}/delete", CLASS_SCOPE, mutating=True),
    Route("classes.roster", "POST", "/classes/{c}/roster", CLASS_SCOPE),
    Route("assignments.new", "GET", "/classes/{c}/assignments/new", CLASS_SCOPE),
    Route("assignments.new", "POST", "/classes/{c}/assignments/new", CLASS_SCOPE, data={"title": ""}),
    Route("assignments.show", "GET", "/assignments/{a}", CLASS_SCOPE),
    Route("assignments.progress", "GET", "/assignments/{a}/progress.json", CLASS_SCOPE),
    Route("assignments.results", "GET", "/assignments/{a}/results?sort=total&dir=desc", CLASS_SCOPE),
    Route("assignments.regrade", "POST", "/assignments/{a}/regrade", CLASS_SCOPE, mutating=True),
    Route("uploads.form", "GET", "/assignments/{a}/upload", CLASS_SCOPE),
    Route("uploads.upload", "POST", "/assignments/{a}/upload", CLASS_SCOPE),
    Route("uploads.preview", "GET", "/uploads/{t}", UPLOADER_ONLY),
    Route("uploads.confirm", "POST", "/uploads/{t}/confirm", UPLOADER_ONLY, mutating=True),
    Route("uploads.discard", "POST", "/uploads/{t}/discard", UPLOADER_ONLY, mutating=True),
    Route("essays.show", "GET", "/essays/{e}", CLASS_SCOPE),
    Route("essays.override", "POST", "/essays/{e}/override", CLASS_SCOPE, data={"reason": ""}),
    Route("essays.accept", "POST", "/essays/{f}/accept", CLASS_SCOPE, mutating=True),
    Route("essays.regrade", "POST", "/essays/{e}/regrade", CLASS_SCOPE, mutating=True),
    Route("feedback.essay_sheet", "GET", "/essays/{e}/feedback.pdf", CLASS_SCOPE),
    Route("feedback.essay_sheet", "GET", "/essays/{e}/feedback.docx", CLASS_SCOPE),
    Route("feedback.class_pdf", "GET", "/assignments/{a}/feedback.pdf", CLASS_SCOPE),
    Route("feedback.class_docx_zip", "GET", "/assignments/{a}/feedback-docx.zip", CLASS_SCOPE),
    Route("reports.class_report", "GET", "/assignments/{a}/report", CLASS_SCOPE),
    Route("reports.request_class_report", "POST", "/assignments/{a}/report", CLASS_SCOPE, mutating=True),
    Route("reports.download", "GET", "/reports/{cr}/download", CLASS_SCOPE),
    Route("reports.download", "GET", "/reports/{sr}/download", OWN_SCHOOL_ADMIN),
    Route("reports.retry", "POST", "/reports/{cr}/retry", CLASS_SCOPE, mutating=True),
    Route("reports.retry", "POST", "/reports/{sr}/retry", OWN_SCHOOL_ADMIN, mutating=True),
    Route("reports.school_reports", "GET", "/admin/reports", ADMINS_ONLY),
    Route("reports.request_school_report", "POST", "/admin/reports", ADMINS_ONLY, mutating=True),
    Route("admin.audit", "GET", "/admin/audit", ADMINS_ONLY),
    Route("evaluations.index", "GET", "/admin/evaluations", ADMINS_ONLY),
    Route("evaluations.start", "POST", "/admin/evaluations", ADMINS_ONLY, data={"limit": "x"}),
    Route("evaluations.start", "POST", "/admin/evaluations", SCHOOL_ADMIN_PAGE, data={"assignment_id": "{a}"}),
    Route("evaluations.show", "GET", "/admin/evaluations/{ev}", SCHOOL_ADMIN_PAGE),
    Route("evaluations.progress", "GET", "/admin/evaluations/{ev}/progress.json", SCHOOL_ADMIN_PAGE),
    Route("evaluations.download", "GET", "/admin/evaluations/{ev}/download", SCHOOL_ADMIN_PAGE_MISSING),
    Route("rubrics.upload", "POST", "/rubrics", ADMINS_ONLY),
    Route("rubrics.show", "GET", "/rubrics/gaokao-national@2024.1", EVERYONE),
    Route("rubrics.download", "GET", "/rubrics/gaokao-national@2024.1/download", EVERYONE),
    Route("privacy.index", "GET", "/admin/privacy", ADMINS_ONLY),
    Route("adapters.index", "GET", "/admin/adapters", ADMINS_ONLY),
    Route("adapters.start", "POST", "/admin/adapters", ADMINS_ONLY, data={"rubric": "bogus"}),
    Route("adapters.show", "GET", "/admin/adapters/{ad}", SCHOOL_ADMIN_PAGE),
    Route("adapters.cancel", "POST", "/admin/adapters/{ad}/cancel", SCHOOL_ADMIN_PAGE),
    Route("adapters.roll_back", "POST", "/admin/adapters/{ad}/rollback", SCHOOL_ADMIN_PAGE),
    Route("adapters.delete", "POST", "/admin/adapters/{ad}/delete", SCHOOL_ADMIN_PAGE, mutating=True),
    # {u} is the colleague, a teacher of school A: their school's admin manages them, nobody else.
    Route("accounts.users", "GET", "/admin/users", ADMINS_ONLY),
    Route("accounts.create_user", "POST", "/admin/users", ADMINS_ONLY, data={"username": ""}),
    Route("accounts.reset_user_password", "POST", "/admin/users/{u}/password", SCHOOL_ADMIN_PAGE,
          data={"password": ""}),
    Route("accounts.disable_user", "POST", "/admin/users/{u}/disable", SCHOOL_ADMIN_PAGE, mutating=True),
    Route("accounts.enable_user", "POST", "/admin/users/{u}/enable", SCHOOL_ADMIN_PAGE, mutating=True),
    Route("accounts.set_user_role", "POST", "/admin/users/{u}/role", SYSADMIN_ONLY, data={"role": "school_admin"}),
    Route("accounts.schools", "GET", "/admin/schools", SYSADMIN_ONLY),
    Route("accounts.add_school", "POST", "/admin/schools", SYSADMIN_ONLY, data={"name": "x"}),
    Route("privacy.export", "GET", "/admin/students/{s}/export", SCHOOL_ADMIN_PAGE),
    # Without the typed name an erase form answers 400 and changes nothing (the erasure itself: tests/ops).
    Route("privacy.erase_student_page", "GET", "/admin/students/{s}/erase", SCHOOL_ADMIN_PAGE),
    Route("privacy.erase_student_page", "POST", "/admin/students/{s}/erase", SCHOOL_ADMIN_PAGE),
    Route("privacy.erase_classroom_page", "GET", "/admin/classes/{c}/erase", SCHOOL_ADMIN_PAGE),
    Route("privacy.erase_classroom_page", "POST", "/admin/classes/{c}/erase", SCHOOL_ADMIN_PAGE),
    Route("privacy.erase_school_page", "GET", "/admin/schools/{sa}/erase", SCHOOL_ADMIN_PAGE),
    Route("privacy.erase_school_page", "POST", "/admin/schools/{sa}/erase", SCHOOL_ADMIN_PAGE),
    Route("marking.settings_page", "GET", "/assignments/{a}/double-marking", CLASS_SCOPE),
    Route("marking.settings_page", "POST", "/assignments/{a}/double-marking", CLASS_SCOPE, data={"mode": "bogus"}),
    Route("marking.second_read", "GET", "/essays/{e}/second-read", CLASS_SCOPE),
    Route("marking.second_read", "POST", "/essays/{e}/second-read", CLASS_SCOPE),
    Route("marking.arbitrate", "GET", "/essays/{e}/arbitrate", ARBITERS),
    Route("marking.arbitrate", "POST", "/essays/{e}/arbitrate", ARBITERS),
    Route("marking.calibration", "GET", "/assignments/{a}/calibration", CLASS_SCOPE),
    Route("marking.calibration", "POST", "/assignments/{a}/calibration", CLASS_SCOPE),
    Route("marking.threshold", "POST", "/agreement/threshold", ADMINS_ONLY, data={"threshold": "x"}),
    Route("marking.leads", "GET", "/classes/{c}/leads", SCHOOL_ADMIN_PAGE),
    Route("marking.leads", "POST", "/classes/{c}/leads", SCHOOL_ADMIN_PAGE, data={"user_id": ""}),
    # 备课 (issue 20): an assignment's 题目解析 and its 教案 follow the class; school 素材 are the school admin's.
    Route("teaching.topic", "GET", "/assignments/{a}/topic", CLASS_SCOPE),
    Route("teaching.topic_status", "GET", "/assignments/{a}/topic.json", CLASS_SCOPE),
    Route("teaching.analyse", "POST", "/assignments/{a}/topic", CLASS_SCOPE),
    Route("teaching.edit_angles", "POST", "/assignments/{a}/topic/angles", CLASS_SCOPE, data={"thesis-0": ""}),
    Route("teaching.choose", "POST", "/assignments/{a}/topic/choice", CLASS_SCOPE, data={"angle": "9"}),
    Route("teaching.topic_docx_download", "GET", "/assignments/{a}/topic.docx", CLASS_SCOPE),
    Route("teaching.add_material", "POST", "/admin/materials", ADMINS_ONLY, data={"title": ""}),
    Route("teaching.delete_material", "POST", "/admin/materials/{m}/delete", SCHOOL_ADMIN_PAGE, mutating=True),
    Route("teaching.create_plan", "POST", "/lesson-plans", CLASS_SCOPE, data={"assignment_id": "{a}", "goal": ""}),
    Route("teaching.lesson", "GET", "/lesson-plans/{lp}", CLASS_SCOPE),
    Route("teaching.lesson_status", "GET", "/lesson-plans/{lp}/status.json", CLASS_SCOPE),
    Route("teaching.save_plan", "POST", "/lesson-plans/{lp}", CLASS_SCOPE, data={"objectives": ""}),
    Route("teaching.lesson_docx_download", "GET", "/lesson-plans/{lp}/plan.docx", CLASS_SCOPE),
    # Students online and the chat (teacher side); students themselves: tests/web/test_student_chat.py.
    Route("student_admin.settings_page", "GET", "/classes/{c}/students-online", CLASS_SCOPE),
    Route("student_admin.save_access", "POST", "/classes/{c}/students-online", CLASS_SCOPE, mutating=True),
    Route("student_admin.create_code", "POST", "/classes/{c}/students/{s}/code", CLASS_SCOPE, mutating=True),
    Route("student_admin.revoke_code", "POST", "/classes/{c}/students/{s}/code/revoke", CLASS_SCOPE, mutating=True),
    # The world's students have no account: 404 for the owner too (tests/web/test_student_chat.py covers one that has).
    Route("student_admin.set_account", "POST", "/classes/{c}/students/{s}/account", CLASS_SCOPE_NOTHING_THERE,
          data={"active": "0"}),
    Route("student_admin.upload_material", "POST", "/classes/{c}/chat-materials", CLASS_SCOPE),
    Route("student_admin.delete_material", "POST", "/classes/{c}/chat-materials/0/delete", CLASS_SCOPE_NOTHING_THERE),
    Route("student_admin.add_word", "POST", "/classes/{c}/chat-words", CLASS_SCOPE, data={"word": ""}),
    Route("student_admin.analytics", "GET", "/classes/{c}/chat-analytics", CLASS_SCOPE),
    # A student's own pages: no teacher, admin or sysadmin reaches them (403), whatever the object.
    Route("student.home", "GET", "/student", STUDENTS_ONLY),
    Route("student.essay", "GET", "/student/essays/{e}", STUDENTS_ONLY),
    Route("student.chat", "GET", "/student/chat", STUDENTS_ONLY),
    Route("student.ask_question", "POST", "/student/chat/ask", STUDENTS_ONLY, data={"question": "作文开头怎么写"}),
    Route("student.new_chat", "POST", "/student/chat/new", STUDENTS_ONLY),
    Route("student.turn_state", "GET", "/student/chat/turns/1", STUDENTS_ONLY),
    Route("student.stream", "GET", "/student/chat/turns/1/stream", STUDENTS_ONLY),
]

API = [
    Route("api.get_class", "GET", "/api/v1/classes/{c}", CLASS_SCOPE),
    Route("api.import_class_roster", "POST", "/api/v1/classes/{c}/roster", CLASS_SCOPE),
    Route("api.create_class_assignment", "POST", "/api/v1/classes/{c}/assignments", CLASS_SCOPE, json={}),
    Route("api.rubrics", "GET", "/api/v1/rubrics?classroom_id={c}", CLASS_SCOPE),
    Route("api.get_assignment", "GET", "/api/v1/assignments/{a}", CLASS_SCOPE),
    Route("api.upload_essays", "POST", "/api/v1/assignments/{a}/essays", CLASS_SCOPE),
    Route("api.confirm_upload", "POST", "/api/v1/uploads/{t}/confirm", UPLOADER_ONLY, mutating=True),
    Route("api.progress", "GET", "/api/v1/assignments/{a}/progress", CLASS_SCOPE),
    Route("api.results", "GET", "/api/v1/assignments/{a}/results", CLASS_SCOPE),
    Route("api.essay", "GET", "/api/v1/essays/{e}", CLASS_SCOPE),
    Route("api.override", "POST", "/api/v1/essays/{e}/override", CLASS_SCOPE, json={"scores": {}}),
    Route("api.regrade", "POST", "/api/v1/essays/{e}/regrade", CLASS_SCOPE, mutating=True),
    Route("reports_api.assignment_reports", "GET", "/api/v1/assignments/{a}/reports", CLASS_SCOPE),
    Route("reports_api.request_assignment_report", "POST", "/api/v1/assignments/{a}/reports", CLASS_SCOPE,
          mutating=True),
    Route("reports_api.class_reports", "GET", "/api/v1/classes/{c}/reports", CLASS_SCOPE),
    Route("reports_api.report", "GET", "/api/v1/reports/{cr}", CLASS_SCOPE),
    Route("reports_api.report", "GET", "/api/v1/reports/{sr}", OWN_SCHOOL_ADMIN),
    Route("reports_api.download", "GET", "/api/v1/reports/{cr}/download", CLASS_SCOPE),
    Route("reports_api.download", "GET", "/api/v1/reports/{sr}/download", OWN_SCHOOL_ADMIN),
    Route("reports_api.school_reports", "GET", "/api/v1/schools/{sa}/reports", OWN_SCHOOL_ADMIN),
    Route("reports_api.request_school_report", "POST", "/api/v1/schools/{sa}/reports", OWN_SCHOOL_ADMIN,
          mutating=True),
    Route("marking_api.double_marking", "GET", "/api/v1/assignments/{a}/double-marking", CLASS_SCOPE),
    Route("marking_api.double_marking", "POST", "/api/v1/assignments/{a}/double-marking", CLASS_SCOPE,
          json={"mode": "bogus"}),
    Route("marking_api.second_read", "POST", "/api/v1/essays/{e}/second-read", CLASS_SCOPE, json={"scores": {}}),
    Route("marking_api.arbitration", "POST", "/api/v1/essays/{e}/arbitration", ARBITERS, json={"scores": {}}),
    Route("marking_api.calibration", "GET", "/api/v1/assignments/{a}/calibration", CLASS_SCOPE),
    Route("marking_api.calibration", "POST", "/api/v1/assignments/{a}/calibration", CLASS_SCOPE),
    Route("teaching_api.get_topic", "GET", "/api/v1/assignments/{a}/topic", CLASS_SCOPE),
    Route("teaching_api.request_topic", "POST", "/api/v1/assignments/{a}/topic", CLASS_SCOPE),
    Route("teaching_api.edit_topic_angles", "POST", "/api/v1/assignments/{a}/topic/angles", CLASS_SCOPE,
          json={"angles": []}),
    Route("teaching_api.choose_topic_angle", "POST", "/api/v1/assignments/{a}/topic/choice", CLASS_SCOPE,
          json={"angle": 9}),
    Route("teaching_api.create_lesson_plan", "POST", "/api/v1/lesson-plans", CLASS_SCOPE,
          json={"assignment_id": "{a}"}),
    Route("teaching_api.get_lesson_plan", "GET", "/api/v1/lesson-plans/{lp}", CLASS_SCOPE),
    Route("teaching_api.topic_docx", "GET", "/api/v1/assignments/{a}/topic.docx", CLASS_SCOPE),
    Route("teaching_api.lesson_plan_docx", "GET", "/api/v1/lesson-plans/{lp}/docx", CLASS_SCOPE),
    Route("teaching_api.add_lesson_version", "POST", "/api/v1/lesson-plans/{lp}/versions", CLASS_SCOPE,
          json={"content": {}}),
]
# Routes with no object to scope: every signed-in user may use them (their content is scoped by query).
UNSCOPED = {
    "static", "health.healthz", "metrics.metrics", "auth.login", "auth.logout", "auth.account", "auth.create_token",
    "auth.revoke_token", "auth.change_password", "classes.home", "classes.index", "classes.new", "classes.template",
    "rubrics.index", "student.join",
    "api.openapi", "api.me", "api.list_classes", "api.create_class",
    "marking.queue", "marking.agreement", "marking_api.marking_queue", "marking_api.agreement",
    "teaching.materials", "teaching.lessons", "teaching_api.search_materials",
}


def _call(app: Flask, world: World, route: Route, key: str) -> int:
    url = route.url(world)
    if route.api:
        client = app.test_client()
        headers = {"Authorization": f"Bearer {world.tokens[key]}"}
        if route.method == "GET":
            return client.get(url, headers=headers).status_code
        return client.post(url, headers=headers, json=route.filled_json(world)).status_code
    client = client_as(app, world.users[key])
    if route.method == "GET":
        return client.get(url).status_code
    return client.post(url, data=form(**{k: route.fill(v, world) for k, v in route.data.items()})).status_code


def _check(app: Flask, world: World, route: Route) -> None:
    for key in ORDER:
        expected = route.expect[key]
        if expected == "ok" and route.mutating and key != "owner" and route.expect["owner"] == "ok":
            continue  # the owner goes last and proves a mutating route works for an allowed user
        status = _call(app, world, route, key)
        if expected == "ok":
            assert status < 400 or status in (400, 409, 422), f"{key} {route.method} {route.path} → {status}"
        else:
            assert status == expected, f"{key} {route.method} {route.path} → {status}, expected {expected}"


@pytest.mark.parametrize("route", PAGES, ids=lambda r: f"{r.method} {r.path}")
def test_page_access(app: Flask, world: World, route: Route) -> None:
    _check(app, world, route)


@pytest.mark.parametrize("route", [Route(**{**r.__dict__, "api": True}) for r in API],
                         ids=lambda r: f"{r.method} {r.path}")
def test_api_access(app: Flask, world: World, route: Route) -> None:
    _check(app, world, route)


def test_the_matrix_covers_every_route(app: Flask) -> None:
    covered = {route.endpoint for route in PAGES + API}
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints - covered - UNSCOPED == set()


def test_sysadmin_sees_every_school(app: Flask, world: World) -> None:
    client = client_as(app, world.users["sysadmin"])
    for url in (f"/classes/{world.classroom}", f"/essays/{world.essay}", f"/reports/{world.school_report}/download",
                "/admin/audit"):
        assert client.get(url).status_code == 200, url
