"""The OpenAPI 3 description of /api/v1, written by hand; a test checks it names every API route."""

from __future__ import annotations

from typing import Any

API_VERSION = "1.0.0"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _id(name: str, what: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": what, "schema": {"type": "integer"}}


def _flag(name: str, what: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": what,
            "schema": {"type": "string", "enum": ["0", "1"]}}


ERRORS = {
    "400": _json(_ref("Error"), "输入无效"),
    "401": _json(_ref("Error"), "缺少、无效、已撤销或已过期的 API 令牌"),
    "404": _json(_ref("Error"), "对象不存在或不在您的权限范围内"),
}


def _op(summary: str, ok: dict[str, Any], *, code: str = "200", params: list[dict[str, Any]] | None = None,
        body: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "responses": {code: ok, **ERRORS, **(extra or {})}}
    if params:
        operation["parameters"] = params
    if body:
        operation["requestBody"] = body
    return operation


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _files_body(field: str, many: bool) -> dict[str, Any]:
    file_schema = {"type": "string", "format": "binary"}
    prop = {"type": "array", "items": file_schema} if many else file_schema
    return {"required": True, "content": {"multipart/form-data": {
        "schema": {"type": "object", "properties": {field: prop}, "required": [field]}}}}


OBJ = {"type": "object"}
STR = {"type": "string"}
INT = {"type": "integer"}
NULLABLE_STR = {"type": "string", "nullable": True}

SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "properties": {"error": STR, "status": INT,
                                               "details": {"type": "array", "items": STR}}},
    "User": {"type": "object", "properties": {"id": INT, "username": STR, "display_name": STR,
                                              "role": {"type": "string", "enum": ["teacher", "school_admin",
                                                                                  "sysadmin"]},
                                              "school_id": {"type": "integer", "nullable": True}}},
    "Student": {"type": "object", "properties": {"id": INT, "name": STR, "student_number": NULLABLE_STR}},
    "Class": {"type": "object", "properties": {
        "id": INT, "name": STR, "school_id": INT, "teacher_id": INT, "teacher_name": STR,
        "students": {"oneOf": [INT, {"type": "array", "items": _ref("Student")}]},
        "assignments": {"type": "array", "items": _ref("Assignment")}}},
    "ClassInput": {"type": "object", "required": ["name"], "properties": {
        "name": STR, "teacher_id": {"type": "integer", "description": "管理员可指定本校教师；默认为自己"}}},
    "Assignment": {"type": "object", "properties": {
        "id": INT, "classroom_id": INT, "title": STR, "prompt_text": STR, "genre": STR, "rubric_id": STR,
        "rubric_version": STR, "required_length": INT, "created_at": {"type": "string", "format": "date-time"},
        "progress": _ref("Progress")}},
    "AssignmentInput": {"type": "object", "required": ["title", "prompt_text", "rubric"], "properties": {
        "title": STR, "prompt_text": {"type": "string", "description": "作文题目（题干）"},
        "genre": {"type": "string", "default": "议论文"},
        "rubric": {"type": "string", "description": "评分标准的 key（见 GET /rubrics），如 gaokao-national@2024.1"},
        "required_length": {"type": "integer", "minimum": 100, "maximum": 3000}}},
    "Rubric": {"type": "object", "properties": {"key": STR, "label": STR, "rubric_version": STR,
                                                "required_length": INT, "own": {"type": "boolean"}}},
    "RosterImport": {"type": "object", "properties": {"added": {"type": "array", "items": STR},
                                                      "skipped": {"type": "array", "items": STR},
                                                      "classroom": _ref("Class")}},
    "UploadPreview": {"type": "object", "properties": {
        "token": {"type": "string", "nullable": True, "description": "确认时使用；两小时后失效"},
        "ok": {"type": "boolean"}, "confirmed": {"type": "boolean"}, "files": {"type": "array", "items": STR},
        "items": {"type": "array", "items": {"type": "object", "properties": {
            "source": STR, "student_id": {"type": "integer", "nullable": True}, "student_name": STR,
            "title": NULLABLE_STR, "char_count": INT, "problems": {"type": "array", "items": STR},
            "removed": {"type": "array", "items": STR,
                        "description": "从 Word 文档中删除的不可见文字（隐藏、2 磅及以下、与背景同色），不会送去评分"},
            "existing_essay_id": {"type": "integer", "nullable": True}}}},
        "problems": {"type": "array", "items": STR}, "missing": {"type": "array", "items": STR}}},
    "UploadConfirmed": {"type": "object", "properties": {
        "confirmed": {"type": "boolean"}, "essay_ids": {"type": "array", "items": INT},
        "queued": {"type": "boolean", "description": "是否已发送到评分队列"}}},
    "Progress": {"type": "object", "properties": {
        "assignment_id": INT, "total": INT, "queued": INT, "grading": INT, "graded": INT, "failed": INT,
        "done": INT, "percent": INT, "finished": {"type": "boolean"},
        "essays_per_minute": {"type": "number", "nullable": True}, "eta_seconds": {"type": "integer",
                                                                                  "nullable": True},
        "ahead": {"type": "integer", "description": "排在本作业之前的其他作文篇数（已计入 eta_seconds）"},
        "workbook": {"type": "object", "nullable": True,
                     "description": "班级成绩报表（全部评完后自动生成）；尚无时为 null",
                     "properties": {"job_id": INT, "status": STR, "status_name": STR, "ready": {"type": "boolean"},
                                    "download_url": NULLABLE_STR,
                                    "updating": {"type": "boolean", "description": "加入训练计划的新版本正在生成"}}},
        "workers": {"type": "array", "items": OBJ},
        "worker_notice": {"type": "string", "nullable": True,
                          "description": "评分服务的问题（模型无法加载、无运行中的评分进程），正常时为 null"}}},
    "ReportJob": {"type": "object", "properties": {
        "id": INT, "kind": {"type": "string", "enum": ["class_workbook", "school_workbook"]},
        "status": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
        "status_name": {"type": "string", "description": "排队中、生成中、已完成、失败、重试中……"},
        "problem": {"type": "string", "nullable": True, "description": "失败或重试的原因类别（如「磁盘空间不足」）"},
        "detail": {"type": "string", "nullable": True, "description": "技术细节，仅管理员可见"},
        "school_id": {"type": "integer", "nullable": True}, "classroom_id": {"type": "integer", "nullable": True},
        "assignment_id": {"type": "integer", "nullable": True},
        "created_at": {"type": "string", "format": "date-time"},
        "finished_at": {"type": "string", "format": "date-time", "nullable": True},
        "ready": {"type": "boolean", "description": "工作簿已生成，可下载"},
        "download_url": {"type": "string", "nullable": True, "description": "GET 此地址下载 .xlsx（写入审计日志）"}}},
    "Results": {"type": "object", "properties": {
        "assignment_id": INT, "rubric_total": {"type": "integer", "nullable": True}, "sort": STR, "direction": STR,
        "dimensions": {"type": "array", "items": {"type": "object", "properties": {
            "key": STR, "name": STR, "max": {"type": "integer", "nullable": True}}}},
        "rows": {"type": "array", "items": OBJ}}},
    "Grade": {"type": "object", "properties": {
        "version": INT, "source": {"type": "string", "enum": ["model", "teacher"]}, "total": INT, "raw_total": INT,
        "dimension_scores": OBJ, "bands": OBJ, "evidence": OBJ, "comment": STR, "reason": NULLABLE_STR,
        "errors": {"type": "array", "items": OBJ}, "deductions": {"type": "array", "items": OBJ}}},
    "Essay": {"type": "object", "properties": {
        "id": INT, "assignment_id": INT, "student_id": INT, "student_name": STR, "status": STR,
        "flags": {"type": "array", "items": STR}, "title": NULLABLE_STR, "text": STR, "char_count": INT,
        "grade": {"allOf": [_ref("Grade")], "nullable": True}, "history": {"type": "array", "items": OBJ}}},
    "OverrideInput": {"type": "object", "required": ["scores", "reason"], "properties": {
        "scores": {"type": "object", "additionalProperties": {"type": "integer"},
                   "description": "每个维度的分数，如 {\"content\": 16, \"expression\": 15, \"development\": 12}"},
        "comment": {"type": "string", "description": "省略则沿用上一版评语"},
        "reason": {"type": "string", "description": "修改理由（必填）"}}},
}

SCORES_BODY = {"type": "object", "required": ["scores"], "properties": {
    "scores": {"type": "object", "additionalProperties": {"type": "integer"}, "description": "每个维度的分数"},
    "comment": {"type": "string"}}}
SCHEMAS.update({
    "DoubleMarking": {"type": "object", "properties": {
        "assignment_id": INT, "mode": {"type": "string", "enum": ["off", "sample", "all", "low_confidence"]},
        "share": {"type": "integer", "description": "随机抽取比例（%）"}, "selected": INT, "awaiting_second": INT,
        "awaiting_arbitration": INT, "settled": INT}},
    "DoubleMarkCase": {"type": "object", "properties": {
        "essay_id": INT, "status": {"type": "string", "enum": ["awaiting_arbitration", "settled"]},
        "needs": {"type": "string", "nullable": True, "enum": ["third_reading", "arbitration", None]},
        "totals": {"type": "array", "items": INT, "description": "各评总分（模型一评在前）"},
        "final_total": {"type": "integer", "nullable": True}, "final_rule": NULLABLE_STR,
        "readings": {"type": "array", "items": {"type": "object", "properties": {
            "version": INT, "reading": {"type": "string", "enum": ["model", "second", "third", "arbitration",
                                                                   "final"]},
            "source": STR, "created_by": {"type": "integer", "nullable": True}, "created_at": STR,
            "dimension_scores": OBJ, "total": INT}}}}},
    "AgreementFigures": {"type": "object", "properties": {
        "label": STR, "pairs": INT, "qwk": {"type": "number", "nullable": True},
        "bias": {"type": "number", "nullable": True, "description": "模型 − 教师"},
        "within_tolerance_rate": {"type": "number", "nullable": True}, "second_reads": INT, "arbitrations": INT,
        "warning": {"type": "boolean", "description": "QWK 低于本校阈值"}}},
})

CLASS_ID = _id("classroom_id", "班级 id")
ASSIGNMENT_ID = _id("assignment_id", "作业 id")
ESSAY_ID = _id("essay_id", "作文 id")


def openapi_document() -> dict[str, Any]:
    conflict = {"409": _json(_ref("Error"), "冲突（如学生已有作文、名单为空、正在评分）")}
    paths: dict[str, Any] = {
        "/openapi.json": {"get": {"summary": "本文档", "security": [],
                                  "responses": {"200": {"description": "OpenAPI 3 文档"}}}},
        "/me": {"get": _op("当前令牌对应的用户", _json(_ref("User"), "用户"))},
        "/rubrics": {"get": _op("可用的评分标准", _json({"type": "object", "properties": {
            "rubrics": {"type": "array", "items": _ref("Rubric")}}}, "评分标准列表"),
            params=[{"name": "classroom_id", "in": "query", "required": False, "schema": INT,
                     "description": "按该班级所在学校列出（含本校评分标准）"}])},
        "/classes": {
            "get": _op("列出可见的班级", _json({"type": "object", "properties": {
                "classes": {"type": "array", "items": _ref("Class")}}}, "班级列表")),
            "post": _op("创建班级", _json(_ref("Class"), "已创建"), code="201", body=_json_body(_ref("ClassInput")),
                        extra=conflict),
        },
        "/classes/{classroom_id}": {"get": _op("班级详情（名单与作业）", _json(_ref("Class"), "班级"),
                                               params=[CLASS_ID])},
        "/classes/{classroom_id}/roster": {"post": _op(
            "导入名单（.xlsx/.csv；已在名单中的学生跳过）", _json(_ref("RosterImport"), "导入结果"),
            params=[CLASS_ID], body=_files_body("file", many=False))},
        "/classes/{classroom_id}/assignments": {"post": _op(
            "布置作业", _json(_ref("Assignment"), "已创建"), code="201", params=[CLASS_ID],
            body=_json_body(_ref("AssignmentInput")))},
        "/assignments/{assignment_id}": {"get": _op("作业详情与进度", _json(_ref("Assignment"), "作业"),
                                                    params=[ASSIGNMENT_ID])},
        "/assignments/{assignment_id}/essays": {"post": _op(
            "上传作文：默认返回预览和 token；?confirm=1 时若无问题直接导入（全部或全不）并排队评分",
            _json(_ref("UploadPreview"), "预览（未导入）"), params=[
                ASSIGNMENT_ID, _flag("confirm", "1 = 无问题时直接导入"),
                _flag("replace", "1 = 替换学生已有的作文")],
            body=_files_body("files", many=True),
            extra={"201": _json(_ref("UploadConfirmed"), "已导入并排队"),
                   "422": _json(_ref("UploadPreview"), "有问题，未导入任何作文"), **conflict})},
        "/uploads/{token}/confirm": {"post": _op(
            "确认一次预览：导入全部作文并排队评分", _json(_ref("UploadConfirmed"), "已导入"), code="201",
            params=[{"name": "token", "in": "path", "required": True, "schema": STR},
                    _flag("replace", "1 = 替换学生已有的作文")], extra=conflict)},
        "/assignments/{assignment_id}/progress": {"get": _op("评分进度", _json(_ref("Progress"), "进度"),
                                                             params=[ASSIGNMENT_ID])},
        "/assignments/{assignment_id}/results": {"get": _op(
            "全班成绩", _json(_ref("Results"), "成绩表"), params=[
                ASSIGNMENT_ID,
                {"name": "sort", "in": "query", "required": False, "schema": STR,
                 "description": "number、name、status、total、deductions、flags 或 dim:<维度键>"},
                {"name": "dir", "in": "query", "required": False, "schema": {"type": "string",
                                                                             "enum": ["asc", "desc"]}}])},
        "/essays/{essay_id}": {"get": _op("作文详情（原文、错误位置、各版本评分）；会写入审计日志",
                                          _json(_ref("Essay"), "作文"), params=[ESSAY_ID])},
        "/essays/{essay_id}/override": {"post": _op(
            "教师改分：保存为新版本（source=teacher），保留模型版本", _json(_ref("Essay"), "新版本已保存"),
            code="201", params=[ESSAY_ID], body=_json_body(_ref("OverrideInput")), extra=conflict)},
        "/essays/{essay_id}/regrade": {"post": _op(
            "重新评分（结果保存为新版本）", _json({"type": "object", "properties": {
                "requeued": {"type": "boolean"}, "queued": {"type": "boolean"}}}, "已重新排队"),
            code="202", params=[ESSAY_ID], extra=conflict)},
    }
    paths.update(_marking_paths(conflict))
    paths.update(_report_paths())
    from services.web.openapi_teaching import SCHEMAS as TEACHING_SCHEMAS
    from services.web.openapi_teaching import teaching_paths

    paths.update(teaching_paths())
    return {
        "openapi": "3.0.3",
        "info": {"title": "阅卷 Yuejuan API", "version": API_VERSION,
                 "description": "作文批量评分的 JSON 接口。使用账户页面或 `yuejuan user token` 生成的令牌："
                                "Authorization: Bearer <令牌>。令牌自生成起 YUEJUAN_API_TOKEN_DAYS 天（默认 90 天）"
                                "后失效；重新生成即轮换，旧令牌立即失效。权限与网页相同：教师只能访问自己的班级。"
                                "响应为 UTF-8 JSON；时间为带时区偏移的 ISO 8601（YUEJUAN_TIMEZONE，默认 +08:00）。"},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                       "schemas": {**SCHEMAS, **TEACHING_SCHEMAS}},
        "paths": paths,
    }


def _report_paths() -> dict[str, Any]:
    """Class and school workbooks."""
    jobs = _json({"type": "object", "properties": {"reports": {"type": "array", "items": _ref("ReportJob")}}},
                 "报表任务（新的在前）")
    queued = _json(_ref("ReportJob"), "已排队；轮询 GET /reports/{job_id}，完成后 download_url 可用")
    unavailable = {"503": _json(OBJ, "无法连接任务队列（任务已标记失败，可稍后重试）")}
    school_id = _id("school_id", "学校 id")
    job_id = _id("job_id", "报表任务 id")
    return {
        "/assignments/{assignment_id}/reports": {
            "get": _op("作业的班级成绩报表任务", jobs, params=[ASSIGNMENT_ID]),
            "post": _op("生成班级成绩报表（Excel）", queued, code="202", params=[ASSIGNMENT_ID], extra=unavailable),
        },
        "/classes/{classroom_id}/reports": {"get": _op("班级所有作业的成绩报表任务", jobs, params=[CLASS_ID])},
        "/schools/{school_id}/reports": {
            "get": _op("全校报表任务（学校管理员、系统管理员）", jobs, params=[school_id]),
            "post": _op("生成全校报表（学校管理员、系统管理员）", queued, code="202", params=[school_id],
                        extra=unavailable),
        },
        "/reports/{job_id}": {"get": _op("一个报表任务的状态", _json(_ref("ReportJob"), "报表任务"), params=[job_id])},
        "/reports/{job_id}/download": {"get": _op(
            "下载报表工作簿（写入审计日志）；尚未生成完成时 404",
            {"description": "Excel 工作簿", "content": {
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                    "schema": {"type": "string", "format": "binary"}}}},
            params=[job_id])},
    }


def _marking_paths(conflict: dict[str, Any]) -> dict[str, Any]:
    """双评, calibration and agreement."""
    forbidden = {"403": _json(_ref("Error"), "无三评/终评权限（须为本班备课组长或学校管理员）")}
    queue_item = {"type": "object", "properties": {
        "essay_id": INT, "assignment_id": INT, "assignment_title": STR, "classroom_name": STR, "student_name": STR,
        "needs": NULLABLE_STR, "totals": {"type": "array", "items": INT}}}
    figures_list = {"type": "array", "items": _ref("AgreementFigures")}
    return {
        "/assignments/{assignment_id}/double-marking": {
            "get": _op("作业的双评设置与进度", _json(_ref("DoubleMarking"), "设置"), params=[ASSIGNMENT_ID]),
            "post": _op("设置双评方式", _json(_ref("DoubleMarking"), "已设置"), params=[ASSIGNMENT_ID],
                        body=_json_body({"type": "object", "required": ["mode"], "properties": {
                            "mode": {"type": "string", "enum": ["off", "sample", "all", "low_confidence"]},
                            "share": {"type": "integer", "minimum": 1, "maximum": 100}}})),
        },
        "/marking": {"get": _op("我的阅卷任务：待我二评、待我仲裁", _json({"type": "object", "properties": {
            "second_reads": {"type": "array", "items": queue_item},
            "arbitrations": {"type": "array", "items": queue_item}}}, "任务"))},
        "/essays/{essay_id}/second-read": {"post": _op(
            "盲评二评：两评在误差内取平均为最终分，超出则交三评/终评", _json(_ref("DoubleMarkCase"), "已保存"),
            code="201", params=[ESSAY_ID], body=_json_body(SCORES_BODY), extra=conflict)},
        "/essays/{essay_id}/arbitration": {"post": _op(
            "三评或终评（按评分标准的规则）", _json(_ref("DoubleMarkCase"), "已保存"), code="201",
            params=[ESSAY_ID], body=_json_body(SCORES_BODY), extra={**conflict, **forbidden})},
        "/assignments/{assignment_id}/calibration": {
            "get": _op("样卷校准：映射、建议样卷、全班原始分与校准分", _json(OBJ, "校准"), params=[ASSIGNMENT_ID]),
            "post": _op("用全部样卷（二评）重新拟合校准", _json(OBJ, "校准"), params=[ASSIGNMENT_ID],
                        extra=conflict),
        },
        "/agreement": {"get": _op("模型与教师的评分一致性（按作业、班级、月份）", _json({
            "type": "object", "properties": {"threshold": {"type": "number"}, "assignment": figures_list,
                                             "classroom": figures_list, "month": figures_list}}, "一致性"))},
    }
