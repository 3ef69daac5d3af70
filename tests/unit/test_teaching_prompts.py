"""The teaching assistant's prompts and schemas (issue 20): each answer leaves room for content within the default
answer budget before the closing guard must finish it, and a 教案's two parts make up the whole."""

from __future__ import annotations

from services.worker.engine.schema_bounds import closing_reserve
from shared.prompts.teaching import (
    ANGLES_SCHEMA,
    LESSON_PARTS,
    LESSON_SCHEMA,
    LESSON_SECTIONS,
    lesson_messages,
    lesson_part_schema,
    picks_schema,
)
from shared.settings import Settings


def test_every_answer_leaves_room_within_the_default_budget() -> None:
    """At least half of each answer's tokens are the model's own before the guard steers it to close; each half of
    a 教案 gets more than a whole 教案 in one answer would (and it gets the budget twice)."""
    budget = Settings().max_new_tokens
    pick_schema = picks_schema([f"entry-{i:02d}" for i in range(10)])
    for schema in (ANGLES_SCHEMA, pick_schema, lesson_part_schema(0), lesson_part_schema(1)):
        assert budget - closing_reserve(schema) >= budget // 2
    whole = budget - closing_reserve(LESSON_SCHEMA)
    assert all(budget - closing_reserve(lesson_part_schema(i)) > whole for i in range(len(LESSON_PARTS)))


def test_the_two_lesson_parts_make_up_the_whole_and_each_prompt_asks_for_its_own() -> None:
    parts = [lesson_part_schema(i) for i in range(len(LESSON_PARTS))]
    merged = {key: prop for part in parts for key, prop in part["properties"].items()}
    assert merged == LESSON_SCHEMA["properties"] and list(merged) == [key for key, _ in LESSON_SECTIONS]
    facts = {"assignment_title": "科技与孤独", "essays": 3, "errors": [{"type": "错别字", "count": 2, "essays": 2}],
             "weakest": {"key": "development", "name": "发展等级", "rate": 0.4},
             "examples": [{"type": "错别字", "sentence": "【姓名1】的字写错了", "suggestion": "改正"}]}
    written = {"objectives": ["学会对比论证"], "key_points": ["正反对比"], "difficulties": ["论据挂钩"],
               "steps": [{"name": "导入", "minutes": 5, "activity": "展示病例"}]}
    first = lesson_messages("掌握对比论证", facts, 0)[1]["content"]
    second = lesson_messages("掌握对比论证", facts, 1, written=written)[1]["content"]
    assert "学会对比论证" in second and "导入（5 分钟）" in second and "已写好" not in first
    for text in (first, second):
        assert "掌握对比论证" in text and "错别字 2 处" in text and "发展等级（全班得分率 40%）" in text
        assert "【姓名1】的字写错了" in text
    first_task, second_task = first.split("\n\n")[-1], second.split("\n\n")[-1]
    assert "教学过程" in first_task and "作业" not in first_task
    assert "作业" in second_task and "教学目标" not in second_task and "教学过程" not in second_task
