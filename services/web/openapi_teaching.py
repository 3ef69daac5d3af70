"""The teaching assistant's part of the OpenAPI document (issue 20): 题目解析, 素材 and 教案."""

from __future__ import annotations

from typing import Any

from services.web.openapi import ASSIGNMENT_ID, INT, NULLABLE_STR, OBJ, STR, _id, _json, _json_body, _op, _ref
from shared.prompts.material_library import KINDS, THEMES
from shared.prompts.teaching import ANGLE, LESSON_SCHEMA

DOCX = {"description": "Word 文档", "content": {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": {
        "schema": {"type": "string", "format": "binary"}}}}
STATUS = {"type": "string", "enum": ["queued", "running", "done", "failed"], "nullable": True}
MATERIAL = {"type": "object", "properties": {
    "id": STR, "kind": {"type": "string", "enum": list(KINDS)}, "title": STR, "text": STR,
    "themes": {"type": "array", "items": {"type": "string", "enum": list(THEMES)}}, "summary": STR, "origin": STR,
    "source": STR}}
SCHEMAS: dict[str, Any] = {
    "Angle": ANGLE,
    "Topic": {"type": "object", "properties": {
        "assignment_id": INT, "status": STATUS, "status_name": STR, "error": NULLABLE_STR,
        "edited": {"type": "boolean"}, "pending": {"type": "boolean"}, "chosen": {"type": "integer", "nullable": True},
        "angles": {"type": "array", "items": _ref("Angle"),
                   "description": "从最稳妥到最大胆；每条另有 rank（最稳妥…最大胆）"},
        "materials": {"type": "object", "nullable": True, "properties": {
            "status": STATUS, "status_name": STR, "error": NULLABLE_STR, "candidates": {"type": "array", "items": STR},
            "picks": {"type": "array", "items": {"allOf": [_ref("Material"), {"type": "object", "properties": {
                "usage": STR, "kind_name": STR}}]}}}},
        "model_name": NULLABLE_STR}},
    "Material": MATERIAL,
    "LessonContent": LESSON_SCHEMA,
    "LessonPlan": {"type": "object", "properties": {
        "id": INT, "assignment_id": {"type": "integer", "nullable": True}, "goal": STR, "facts": OBJ,
        "status": STATUS, "status_name": STR, "error": NULLABLE_STR, "pending": {"type": "boolean"},
        "model_name": NULLABLE_STR, "versions": INT, "version": {"type": "integer", "nullable": True},
        "source": NULLABLE_STR, "content": {"allOf": [_ref("LessonContent")], "nullable": True}}},
}


def teaching_paths() -> dict[str, Any]:
    topic = _json(_ref("Topic"), "题目解析")
    plan_id = _id("plan_id", "教案 id")
    unavailable = {"503": _json(_ref("Topic"), "无法连接任务队列，或生成失败（见 error）")}
    query = [{"name": name, "in": "query", "required": False, "description": what, "schema": schema}
             for name, what, schema in (("q", "关键词（jieba 分词，BM25 排序）", STR),
                                        ("theme", "主题", {"type": "string", "enum": list(THEMES)}),
                                        ("kind", "类型", {"type": "string", "enum": list(KINDS)}))]
    return {
        "/assignments/{assignment_id}/topic": {
            "get": _op("作业的题目解析（立意角度与推荐素材）", topic, params=[ASSIGNMENT_ID]),
            "post": _op("生成立意：同一作文题与评分标准已生成过时直接返回（200，不调用模型），否则排队（202）",
                        topic, params=[ASSIGNMENT_ID], extra={"202": _json(_ref("Topic"), "已排队"), **unavailable}),
        },
        "/assignments/{assignment_id}/topic/angles": {"post": _op(
            "保存教师修改后的立意（1–5 条）", topic, params=[ASSIGNMENT_ID],
            body=_json_body({"type": "object", "required": ["angles"],
                             "properties": {"angles": {"type": "array", "items": _ref("Angle")}}}))},
        "/assignments/{assignment_id}/topic/choice": {"post": _op(
            "选定一条立意并推荐素材：从素材库检索，模型只能在检索结果中挑选（202 排队，200 已有缓存）", topic,
            params=[ASSIGNMENT_ID], body=_json_body({"type": "object", "required": ["angle"],
                                                     "properties": {"angle": {"type": "integer", "minimum": 0}}}),
            extra={"202": _json(_ref("Topic"), "已排队")})},
        "/assignments/{assignment_id}/topic.docx": {"get": _op(
            "题目解析导出为 Word（写入审计日志）；尚未生成立意时 404", DOCX, params=[ASSIGNMENT_ID])},
        "/materials": {"get": _op("检索素材库（含本校素材）", _json({"type": "object", "properties": {
            "materials": {"type": "array", "items": _ref("Material")}}}, "素材"), params=query)},
        "/lesson-plans": {"post": _op(
            "生成教案：教学目标和/或作业（作业的错误统计与本班病例，已隐去姓名）", _json(_ref("LessonPlan"), "已排队"),
            code="202", body=_json_body({"type": "object", "properties": {
                "goal": {"type": "string", "maxLength": 200}, "assignment_id": INT}}),
            extra={"503": _json(_ref("LessonPlan"), "无法连接任务队列")})},
        "/lesson-plans/{plan_id}": {"get": _op("教案（最新版本）", _json(_ref("LessonPlan"), "教案"),
                                               params=[plan_id])},
        "/lesson-plans/{plan_id}/docx": {"get": _op(
            "教案导出为 Word（写入审计日志）；version 参数选版本，缺省为最新版", DOCX, params=[plan_id, {
                "name": "version", "in": "query", "required": False, "description": "版本号",
                "schema": {"type": "integer", "minimum": 1}}])},
        "/lesson-plans/{plan_id}/versions": {"post": _op(
            "保存修改后的教案为新版本", _json(_ref("LessonPlan"), "新版本"), code="201", params=[plan_id],
            body=_json_body({"type": "object", "required": ["content"],
                             "properties": {"content": _ref("LessonContent")}}))},
    }
