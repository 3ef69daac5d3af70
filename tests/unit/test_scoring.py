"""Composing the final score: every deduction, every cap and their order, with the arithmetic spelled out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.worker.analysis import Analysis, analyse
from services.worker.jobs import DeductionItem, LocatedError
from services.worker.scoring import compose_score, needs_model
from shared.prompts.rubric import LengthCap, Rubric, load_rubric, load_rubric_file

SCHOOL_FILE = Path(__file__).resolve().parents[1] / "data" / "rubrics" / "school-simple.yaml"


def _national() -> Rubric:
    return load_rubric("gaokao-national")


def _analysis(
    char_count: int = 900,
    *,
    title: str | None = "标题",
    sentences: int = 40,
    few_sentences: bool = False,
    mechanical: int = 0,
    required_length: int = 800,
    body: str = "正文。",
) -> Analysis:
    """An analysis with chosen figures; mechanical findings are 标点 errors at distinct positions."""
    findings = [
        LocatedError("标点", 10 * i, 10 * i + 1, ",", "，", "半角", "rule:halfwidth_punct") for i in range(mechanical)
    ]
    return Analysis(
        text=body,
        title=title,
        body=body,
        body_offset=0,
        char_count=char_count,
        char_count_rule="hanzi_alnum_punct",
        required_length=required_length,
        paragraph_count=5,
        sentence_count=sentences,
        few_sentences=few_sentences,
        mechanical_errors=findings,
    )


def _answer(content: int = 16, expression: int = 16, development: int = 16) -> dict[str, Any]:
    return {
        "content": {"score": content, "band": "一等", "evidence": []},
        "expression": {"score": expression, "band": "一等", "evidence": []},
        "development": {"score": development, "band": "一等", "evidence": []},
        "errors": [],
        "comment": "评语",
    }


def _typo(original: str, start: int) -> LocatedError:
    return LocatedError("错别字", start, start + len(original), original, "改", "形近字", "model")


def _rules(result: Any) -> dict[str, int]:
    return {item.rule: item.points for item in result.deductions}


def test_clean_essay_keeps_its_raw_total() -> None:
    result = compose_score(_national(), _analysis(), _answer(18, 17, 15), [])
    # 18 + 17 + 15 = 50, title present, 900 ≥ 800 characters, no errors
    assert result.dimension_scores == {"content": 18, "expression": 17, "development": 15}
    assert result.bands == {"content": "一等", "expression": "一等", "development": "二等"}
    assert (result.raw_total, result.total, result.deductions, result.caps) == (50, 50, [], [])
    assert result.used_model


def test_bands_are_derived_from_scores_and_the_model_band_is_kept_aside() -> None:
    answer = _answer(12, 16, 10)  # the model claimed 一等 for every dimension
    result = compose_score(_national(), _analysis(), answer, [])
    assert result.bands["content"] == "二等"  # 12 is in 11–15
    assert result.bands["development"] == "三等"  # 10 is in 6–10
    assert result.model_bands["content"] == "一等"


def test_development_is_capped_by_the_basic_band() -> None:
    result = compose_score(_national(), _analysis(), _answer(12, 11, 18), [])
    # basic 12 + 11 = 23 ≥ 22 (二等 minimum 11+11) but < 32 (一等): basic band 二等 → development ≤ 15
    assert result.dimension_scores["development"] == 15
    assert result.model_scores["development"] == 18
    assert result.bands["development"] == "二等"
    assert result.raw_total == 12 + 11 + 15  # 38
    assert result.total == 38
    assert result.caps == ["发展等级不高于基础等级所在的二等：18 分降为 15 分"]


def test_development_not_capped_when_basic_band_is_high_enough_or_rule_off() -> None:
    high = compose_score(_national(), _analysis(), _answer(16, 16, 20), [])
    assert high.dimension_scores["development"] == 20  # basic 32 reaches 一等
    off = _national().model_copy(update={"development_capped_by_basic": False})
    uncapped = compose_score(off, _analysis(), _answer(12, 11, 18), [])
    assert uncapped.dimension_scores["development"] == 18


def test_missing_title_deducts_two() -> None:
    result = compose_score(_national(), _analysis(title=None), _answer(16, 16, 16), [])
    # 48 − 2 = 46
    assert result.deductions == [DeductionItem("missing_title", -2, "缺少标题")]
    assert result.total == 46


@pytest.mark.parametrize(
    ("chars", "points"),
    # ceil((800 − chars) / 50): 800 → 0; 799 → ceil(1/50)=1; 750 → 1; 749 → ceil(51/50)=2;
    # 612 → ceil(188/50)=4; 400 → ceil(400/50)=8 (still ≥ 400, so no 残篇 cap)
    [(800, 0), (799, 1), (750, 1), (749, 2), (612, 4), (400, 8)],
)
def test_length_deduction(chars: int, points: int) -> None:
    result = compose_score(_national(), _analysis(chars), _answer(16, 16, 16), [])
    assert _rules(result).get("length", 0) == -points
    assert result.total == 48 - points


def test_length_deduction_detail() -> None:
    result = compose_score(_national(), _analysis(612), _answer(), [])
    (item,) = result.deductions
    assert item.detail == "字数 612，少于 800 字要求 188 字（每少 50 字扣 1 分）"


def test_length_deduction_uses_the_assignment_length() -> None:
    result = compose_score(_national(), _analysis(612, required_length=600), _answer(), [])
    assert result.deductions == []


def test_typos_count_once_each_and_are_capped_at_five() -> None:
    three = [_typo("在坐", 1), _typo("即然", 5), _typo("在坐", 9), _typo("必竟", 20)]
    result = compose_score(_national(), _analysis(), _answer(16, 16, 16), three)
    # unique 在坐, 即然, 必竟 = 3 → −3; 48 − 3 = 45
    assert result.deductions == [
        DeductionItem("typo", -3, "错别字 3 个（重复不计，最多扣 5 分）：“在坐”、“即然”、“必竟”"),
    ]
    assert result.total == 45
    seven = [_typo(word, i * 5) for i, word in enumerate(["甲乙", "丙丁", "戊己", "庚辛", "壬癸", "子丑", "寅卯"])]
    capped = compose_score(_national(), _analysis(), _answer(16, 16, 16), seven)
    assert _rules(capped) == {"typo": -5}  # 7 unique, capped at 5
    assert capped.total == 43


def test_typos_with_free_count() -> None:
    rubric = _national()
    assert rubric.deductions.typo is not None
    typo = rubric.deductions.typo.model_copy(update={"free_count": 2})
    lenient = rubric.model_copy(update={"deductions": rubric.deductions.model_copy(update={"typo": typo})})
    two = [_typo("在坐", 1), _typo("即然", 5)]
    assert compose_score(lenient, _analysis(), _answer(), two).deductions == []  # 2 − 2 free = 0
    three = [*two, _typo("必竟", 9)]
    result = compose_score(lenient, _analysis(), _answer(), three)
    assert _rules(result) == {"typo": -1}  # 3 − 2 free = 1
    assert "前 2 个不扣分" in result.deductions[0].detail


def test_other_model_errors_do_not_deduct() -> None:
    errors = [LocatedError("病句", 0, 4, "通过这次", "删去", "缺主语", "model")]
    assert compose_score(_national(), _analysis(), _answer(), errors).deductions == []


@pytest.mark.parametrize(
    ("mechanical", "model_spans", "points"),
    [
        (2, [], 0),  # 2 < 3
        (3, [], 1),  # 3 ≥ 3 → −1
        (2, [(500, 501)], 1),  # 2 rule + 1 model elsewhere = 3 → −1
        (2, [(10, 11)], 0),  # the model's error overlaps a rule finding at 10: still 2
        (5, [], 1),  # −1 once, not per error
    ],
)
def test_punctuation_deduction(mechanical: int, model_spans: list[tuple[int, int]], points: int) -> None:
    model = [LocatedError("标点", s, e, "，", "。", "一逗到底", "model") for s, e in model_spans]
    result = compose_score(_national(), _analysis(mechanical=mechanical), _answer(16, 16, 16), model)
    assert _rules(result).get("punctuation", 0) == -points
    assert result.total == 48 - points


def test_fragment_under_400_is_capped_at_20_without_length_deduction() -> None:
    result = compose_score(_national(), _analysis(350, title=None), _answer(16, 16, 16), [])
    # 48 − 2 (title) = 46, no length deduction below 400, then capped at 20
    assert _rules(result) == {"missing_title": -2}
    assert result.caps == ["残篇：正文 350 字，不足 400 字，总分不超过 20 分"]
    assert result.total == 20


def test_deductions_come_before_caps() -> None:
    result = compose_score(_national(), _analysis(380, title=None), _answer(8, 8, 6), [])
    # raw 22 − 2 = 20, then cap 20 → 20 (capping first would have given 20 − 2 = 18)
    assert result.raw_total == 22
    assert result.total == 20


def test_fragment_under_200_is_capped_at_10() -> None:
    result = compose_score(_national(), _analysis(150), _answer(16, 16, 16), [])
    # both 残篇 caps apply: min(48, 20, 10) = 10
    assert result.total == 10
    assert len(result.caps) == 2 and "不足 200 字，总分不超过 10 分" in result.caps[1]


def test_under_600_cap_when_configured() -> None:
    rubric = _national()
    stricter = rubric.model_copy(
        update={
            "caps": rubric.caps.model_copy(
                update={
                    "length": [
                        *rubric.caps.length,
                        LengthCap(label="字数不足", below_chars=600, max_total=36),
                    ]
                }
            )
        }
    )
    result = compose_score(stricter, _analysis(550), _answer(18, 18, 18), [])
    # 54 − ceil(250/50)=5 → 49, capped at 36
    assert _rules(result) == {"length": -5}
    assert result.total == 36
    assert result.caps == ["字数不足：正文 550 字，不足 600 字，总分不超过 36 分"]
    # without the optional cap the same essay keeps 49
    assert compose_score(rubric, _analysis(550), _answer(18, 18, 18), []).total == 49


def test_total_never_below_zero() -> None:
    result = compose_score(_national(), _analysis(420, title=None, mechanical=3), _answer(1, 1, 1), [])
    # 3 − 2 (title) − ceil(380/50)=8 (length) − 1 (punctuation) = −8 → 0
    assert sum(item.points for item in result.deductions) == -11
    assert result.total == 0


def test_model_scores_out_of_range_are_clamped() -> None:
    answer = _answer(25, -3, 16)
    result = compose_score(_national(), _analysis(), answer, [])
    assert result.dimension_scores["content"] == 20
    assert result.dimension_scores["expression"] == 0


def test_blank_essay_scores_zero_without_the_model() -> None:
    blank = analyse("", _national())
    assert not needs_model(blank)
    result = compose_score(_national(), blank, None, [])
    assert (result.total, result.raw_total, result.deductions, result.used_model) == (0, 0, [], False)
    assert result.caps == ["空白卷：0 分"]
    assert result.bands == {"content": "四等", "expression": "四等", "development": "四等"}


@pytest.mark.parametrize(("essay", "total"), [("题目\n我不会写。", 1), ("题目\n我不会写。真的不会。", 2)])
def test_one_or_two_sentences_score_one_or_two_without_the_model(essay: str, total: int) -> None:
    analysis = analyse(essay, _national())
    assert analysis.few_sentences and not needs_model(analysis)
    result = compose_score(_national(), analysis, None, [])
    assert result.total == total
    assert not result.used_model


def test_one_or_two_sentences_with_a_model_answer_stay_within_one_to_two() -> None:
    few = _analysis(30, sentences=2, few_sentences=True)
    assert compose_score(_national(), few, _answer(16, 16, 16), []).total == 2  # 48 → capped 10 → held at 2
    untitled = _analysis(30, title=None, sentences=1, few_sentences=True)
    assert compose_score(_national(), untitled, _answer(0, 0, 0), []).total == 1  # 0 − 2 → held at 1, never 0


def test_answer_required_when_the_model_is_needed() -> None:
    analysis = _analysis()
    assert needs_model(analysis)
    with pytest.raises(ValueError, match="model answer is required"):
        compose_score(_national(), analysis, None, [])


def test_school_rubric_end_to_end() -> None:
    rubric = load_rubric_file(SCHOOL_FILE)
    analysis = analyse("我的暑假\n" + "我们一起去海边玩，" * 40 + "真开心。", rubric)
    # hanzi_alnum: 8 hanzi × 40 + 3 = 323 characters (punctuation not counted) → under 600
    assert analysis.char_count == 323
    answer = {
        "ideas": {"score": 25, "band": "上", "evidence": []},
        "language": {"score": 14, "band": "上", "evidence": []},
        "errors": [],
        "comment": "内容充实。",
    }
    typos = [_typo(word, i) for i, word in enumerate(["甲", "乙", "丙", "丁", "戊", "己"])]
    result = compose_score(rubric, analysis, answer, typos)
    assert result.bands == {"ideas": "上", "language": "中"}  # 14 is in 8–14
    assert result.raw_total == 39
    # length: floor((600 − 323) / 100) = 2; typos: 6 − 2 free = 4, capped at 3; punctuation rule off
    assert _rules(result) == {"length": -2, "typo": -3}
    assert result.total == 34  # 39 − 5, and 323 ≥ 300 so no cap
    short = analyse("题目\n" + "我们一起去海边玩，" * 30 + "真开心。", rubric)
    # 8 × 30 + 3 = 243 < 300: capped at 25, no length deduction
    capped = compose_score(rubric, short, answer, [])
    assert capped.deductions == []
    assert capped.total == 25
