"""Mapping the model's quoted errors back to offsets in the essay."""

from __future__ import annotations

from typing import Any

from services.worker.locate import locate_quotes

TEXT = "我的青春\n\n青春是在接再厉的奋斗,不是在坐的空谈。在接再厉才能成功。\n他说 “我们 一起 走” 吧。"


def _error(original: str, kind: str = "错别字", suggestion: str = "改", explanation: str = "因") -> dict[str, Any]:
    return {"type": kind, "original": original, "suggestion": suggestion, "explanation": explanation}


def test_exact_quote() -> None:
    findings, dropped = locate_quotes(TEXT, [_error("在坐", suggestion="在座", explanation="同音字")])
    assert dropped == 0
    (finding,) = findings
    assert (finding.start, finding.end) == (TEXT.index("在坐"), TEXT.index("在坐") + 2)
    assert TEXT[finding.start : finding.end] == finding.original == "在坐"
    assert (finding.type, finding.suggestion, finding.explanation, finding.origin) == (
        "错别字",
        "在座",
        "同音字",
        "model",
    )


def test_repeated_quotes_map_to_successive_occurrences() -> None:
    first = TEXT.index("在接再厉")
    second = TEXT.index("在接再厉", first + 1)
    findings, dropped = locate_quotes(TEXT, [_error("在接再厉"), _error("在接再厉")])
    assert dropped == 0
    assert [f.start for f in findings] == [first, second]


def test_more_repeats_than_occurrences_are_dropped() -> None:
    findings, dropped = locate_quotes(TEXT, [_error("在接再厉")] * 3)
    assert (len(findings), dropped) == (2, 1)


def test_width_and_whitespace_are_folded_when_the_exact_quote_is_missing() -> None:
    # The model "corrected" the half-width comma to a full-width one while quoting.
    findings, dropped = locate_quotes(TEXT, [_error("奋斗，不是", kind="标点")])
    assert dropped == 0
    (finding,) = findings
    assert finding.original == "奋斗,不是"
    assert TEXT[finding.start : finding.end] == "奋斗,不是"
    # Whitespace inside the essay's passage is skipped over and kept in the located span.
    (spaced,), dropped = locate_quotes(TEXT, [_error("我们一起走", kind="病句")])
    assert dropped == 0
    assert spaced.original == "我们 一起 走"


def test_quotes_wrapped_in_quotation_marks() -> None:
    (finding,), dropped = locate_quotes(TEXT, [_error("“不是在坐”")])
    assert dropped == 0
    assert finding.original == "不是在坐"


def test_quotes_not_in_the_text_are_dropped_and_counted() -> None:
    findings, dropped = locate_quotes(TEXT, [_error("子虚乌有"), _error(""), _error("   "), _error("在坐")])
    assert dropped == 3
    assert [f.original for f in findings] == ["在坐"]


def test_search_from_skips_the_title() -> None:
    (finding,), _ = locate_quotes(TEXT, [_error("青春")], search_from=TEXT.index("\n"))
    assert finding.start == TEXT.index("青春", 4)
    (from_start,), _ = locate_quotes(TEXT, [_error("青春")])
    assert from_start.start == 2


def test_findings_come_back_in_text_order() -> None:
    findings, _ = locate_quotes(TEXT, [_error("成功"), _error("在坐"), _error("青春")])
    assert [f.original for f in findings] == ["青春", "在坐", "成功"]
    assert [f.start for f in findings] == sorted(f.start for f in findings)
