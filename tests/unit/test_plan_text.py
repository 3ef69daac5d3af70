"""Plan narratives are plain text in whole sentences within the limit; wrapped cells get the height they need."""

from __future__ import annotations

from services.worker.plans.narrative import NARRATIVE_MAX_CHARS, complete_sentences, parse_narrative
from services.worker.reports.excel import LINE_HEIGHT_PT, row_height, wrapped_lines


def test_markdown_marks_and_list_markers_are_removed() -> None:
    text = "**重点**：该生*表达*较弱。\n- 先做 `结构提纲训练`。\n1. 再做__修辞__练习！\n## 目标\n下一篇达到 70%。"
    assert complete_sentences(text) == "重点：该生表达较弱。先做结构提纲训练。再做修辞练习！目标下一篇达到 70%。"


def test_a_sentence_cut_off_is_dropped_and_none_is_left_without_a_whole_sentence() -> None:
    assert complete_sentences("该生表达较弱。建议先完成结构提纲训练，并在下一篇") == "该生表达较弱。"
    assert complete_sentences("他说：“要坚持。”然后") == "他说：“要坚持。”"
    assert complete_sentences("建议先完成结构提纲训练，并在下一篇") is None
    long = "该生表达方面相对薄弱。" * 30
    cut = complete_sentences(long)
    assert cut is not None and len(cut) <= NARRATIVE_MAX_CHARS and cut.endswith("。")
    assert len(cut) == NARRATIVE_MAX_CHARS // len("该生表达方面相对薄弱。") * len("该生表达方面相对薄弱。")


def test_a_model_answer_is_parsed_into_plain_sentences() -> None:
    assert parse_narrative('{"narrative": "**该生**内容薄弱。\\n\\n建议"}') == "该生内容薄弱。"
    assert parse_narrative('{"narrative": "没有句号的半句"}') is None
    assert parse_narrative("not json") is None


def test_row_height_counts_wrapped_lines_of_wide_characters() -> None:
    assert wrapped_lines("一二三四五", 11) == 1  # 10 columns of text in 10 usable columns
    assert wrapped_lines("一二三四五六", 11) == 2
    assert wrapped_lines("一\n二\n三", 30) == 3
    values = ["1", "甲" * 50, "短"]
    assert row_height(values, [1, 2], {2: 21}) == 5 * LINE_HEIGHT_PT + 3  # 100 columns / 20 per line
    assert row_height(values, [2], {3: 10}) is None
