"""Inline error highlighting: every piece of student text is escaped; bad spans are listed but not marked."""

from __future__ import annotations

from services.web.highlight import highlight
from shared.models import ErrorAnnotation


def _error(start: int, end: int, original: str, kind: str = "错别字", suggestion: str = "") -> ErrorAnnotation:
    return ErrorAnnotation(type=kind, start_offset=start, end_offset=end, original=original, suggestion=suggestion,
                           explanation="", origin="model")


def test_text_and_tooltips_are_escaped() -> None:
    text = "<script>x</script>他说\"好\"&走了"
    start = text.index("&")
    markup, listed = highlight(text, [_error(start, start + 1, "&", suggestion="<b>")])
    html = str(markup)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'title="错别字：&amp; → &lt;b&gt;"' in html
    assert '<a href="#e1">&amp;</a>' in html
    assert listed[0].inline


def test_overlapping_and_out_of_range_spans_are_not_marked_inline() -> None:
    text = "一二三四五六七八九十"
    errors = [_error(2, 5, "三四五"), _error(3, 4, "四", "标点"), _error(8, 30, "九十"), _error(5, 5, "")]
    markup, listed = highlight(text, errors)
    assert [item.inline for item in listed] == [True, False, False, False]
    assert str(markup).count("<mark") == 1
    assert str(markup).replace('<mark class="err err-typo" id="m1" title="错别字：三四五"><a href="#e1">三四五</a>'
                               "<sup>1</sup></mark>", "三四五") == text


def test_unknown_types_get_a_neutral_class() -> None:
    markup, listed = highlight("甲乙丙", [_error(0, 1, "甲", "修辞")])
    assert listed[0].css == "other" and "err-other" in str(markup)
