"""Rubric files: the shipped national rubric, a school's own file, versions and invalid files."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.prompts.rubric import (
    RUBRIC_DIR,
    Rubric,
    RubricError,
    default_tolerance,
    final_score,
    list_rubrics,
    load_rubric,
    load_rubric_file,
    within_tolerance,
)

SCHOOL_FILE = Path(__file__).resolve().parents[1] / "data" / "rubrics" / "school-simple.yaml"
NATIONAL_FILE = RUBRIC_DIR / "gaokao-national.yaml"


def _national_data() -> dict[str, Any]:
    return yaml.safe_load(NATIONAL_FILE.read_text(encoding="utf-8"))


def _write(tmp_path: Path, data: Any, name: str = "rubric.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_national_rubric_shape() -> None:
    rubric = load_rubric("gaokao-national")
    assert (rubric.id, rubric.version, rubric.total) == ("gaokao-national", "2024.1", 60)
    assert rubric.ref == "gaokao-national@2024.1"
    assert [d.key for d in rubric.dimensions] == ["content", "expression", "development"]
    assert [d.name for d in rubric.dimensions] == ["内容", "表达", "发展等级"]
    assert sum(d.max for d in rubric.dimensions) == rubric.total
    assert rubric.char_count_rule == "hanzi_alnum_punct"
    assert rubric.required_length == 800
    assert rubric.development_capped_by_basic
    assert [d.key for d in rubric.basic_dimensions] == ["content", "expression"]
    assert [d.key for d in rubric.development_dimensions] == ["development"]
    for dim in rubric.dimensions:
        assert [(b.name, b.min, b.max) for b in dim.bands] == [
            ("一等", 16, 20),
            ("二等", 11, 15),
            ("三等", 6, 10),
            ("四等", 0, 5),
        ]
        assert all(band.descriptors for band in dim.bands)
    assert "切合题意" in rubric.band_for("content", 18).descriptors
    assert {"错别字", "标点", "病句"} <= set(rubric.error_types)


def test_national_deductions_and_caps() -> None:
    rubric = load_rubric("gaokao-national")
    deductions, caps = rubric.deductions, rubric.caps
    assert deductions.missing_title == 2
    assert deductions.length is not None and (deductions.length.per_chars, deductions.length.points) == (
        50,
        1,
    )
    assert deductions.typo is not None
    assert (deductions.typo.points_each, deductions.typo.max_points, deductions.typo.free_count) == (1, 5, 0)
    assert deductions.punctuation is not None
    assert (deductions.punctuation.threshold, deductions.punctuation.points) == (3, 1)
    assert [(c.below_chars, c.max_total, c.skip_length_deduction) for c in caps.length] == [
        (400, 20, True),
        (200, 10, True),
    ]
    assert caps.few_sentences is not None
    assert (caps.few_sentences.max_sentences, caps.few_sentences.min_total, caps.few_sentences.max_total) == (
        2,
        1,
        2,
    )
    limits = rubric.output_limits
    assert (limits.comment_max_chars, limits.evidence_max_items, limits.evidence_max_chars) == (150, 1, 40)
    assert (limits.errors_max_items, limits.quote_max_chars) == (12, 20)
    assert (limits.suggestion_max_chars, limits.explanation_max_chars) == (20, 40)


@pytest.mark.parametrize(
    ("score", "band"),
    [
        (20, "一等"),
        (16, "一等"),
        (15, "二等"),
        (11, "二等"),
        (10, "三等"),
        (6, "三等"),
        (5, "四等"),
        (0, "四等"),
    ],
)
def test_band_boundaries(score: int, band: str) -> None:
    rubric = load_rubric("gaokao-national")
    for key in ("content", "expression", "development"):
        assert rubric.band_for(key, score).name == band


def test_band_for_out_of_range_and_unknown_dimension() -> None:
    rubric = load_rubric("gaokao-national")
    with pytest.raises(ValueError, match="outside 0..20"):
        rubric.band_for("content", 21)
    with pytest.raises(ValueError, match="outside"):
        rubric.band_for("content", -1)
    with pytest.raises(KeyError, match="content, expression, development"):
        rubric.band_for("style", 10)


@pytest.mark.parametrize(
    ("content", "expression", "rank"),
    # basic band thresholds are the sums of the band minima: 一等 16+16=32, 二等 11+11=22, 三等 6+6=12
    [
        (20, 20, 0),
        (16, 16, 0),
        (16, 15, 1),
        (11, 11, 1),
        (20, 1, 2),
        (11, 10, 2),
        (6, 6, 2),
        (6, 5, 3),
        (0, 0, 3),
    ],
)
def test_basic_rank(content: int, expression: int, rank: int) -> None:
    rubric = load_rubric("gaokao-national")
    assert rubric.basic_rank({"content": content, "expression": expression, "development": 20}) == rank


def test_province_bands_20_17_are_expressible(tmp_path: Path) -> None:
    data = _national_data()
    for dim in data["dimensions"]:
        for band, (low, high) in zip(dim["bands"], [(17, 20), (12, 16), (7, 11), (0, 6)], strict=True):
            band["min"], band["max"] = low, high
    rubric = load_rubric_file(_write(tmp_path, data))
    assert rubric.band_for("content", 17).name == "一等"
    assert rubric.band_for("content", 16).name == "二等"
    assert rubric.band_for("content", 6).name == "四等"


def test_list_rubrics_and_unknown_id() -> None:
    assert ("gaokao-national", "2024.1") in [(info.id, info.version) for info in list_rubrics()]
    with pytest.raises(RubricError, match="gaokao-national") as info:
        load_rubric("gaokao-mars")
    assert "gaokao-mars" in str(info.value)


def test_load_rubric_versions(tmp_path: Path) -> None:
    current = _national_data()
    old = copy.deepcopy(current)
    old["version"] = "2023.1"
    old["deductions"]["missing_title"] = 3
    _write(tmp_path, current, "gaokao-national.yaml")
    _write(tmp_path, old, "gaokao-national@2023.1.yaml")
    assert load_rubric("gaokao-national", directory=tmp_path).version == "2024.1"
    assert load_rubric("gaokao-national", "2024.1", directory=tmp_path).version == "2024.1"
    pinned = load_rubric("gaokao-national", "2023.1", directory=tmp_path)
    assert (pinned.version, pinned.deductions.missing_title) == ("2023.1", 3)
    with pytest.raises(RubricError, match="2023.1, 2024.1"):
        load_rubric("gaokao-national", "1999.9", directory=tmp_path)
    assert [(i.id, i.version) for i in list_rubrics(tmp_path)] == [
        ("gaokao-national", "2023.1"),
        ("gaokao-national", "2024.1"),
    ]


def test_shipped_file_id_must_match_file_name(tmp_path: Path) -> None:
    _write(tmp_path, _national_data(), "other.yaml")
    with pytest.raises(RubricError, match="与文件名不符"):
        load_rubric("other", directory=tmp_path)


def test_school_rubric_loads_from_anywhere() -> None:
    rubric = load_rubric_file(SCHOOL_FILE)
    assert (rubric.id, rubric.version, rubric.total) == ("school-simple", "2025.2", 50)
    assert [(d.key, d.max, len(d.bands)) for d in rubric.dimensions] == [
        ("ideas", 30, 3),
        ("language", 20, 3),
    ]
    assert rubric.band_for("ideas", 21).name == "上"
    assert rubric.band_for("ideas", 20).name == "中"
    assert rubric.band_for("language", 7).name == "下"
    assert rubric.char_count_rule == "hanzi_alnum"
    assert rubric.deductions.punctuation is None
    assert rubric.caps.few_sentences is None
    assert not rubric.development_capped_by_basic
    # limits not given in the file take their defaults
    assert (rubric.output_limits.errors_max_items, rubric.output_limits.quote_max_chars) == (5, 20)


def _mutations() -> list[tuple[str, Any, str]]:
    """(case id, function that breaks the national data, expected phrase in the error)."""

    def overlap(d: dict[str, Any]) -> None:
        d["dimensions"][0]["bands"][1]["max"] = 16  # 二等 11–16 overlaps 一等 16–20

    def gap(d: dict[str, Any]) -> None:
        d["dimensions"][1]["bands"][1]["min"] = 12  # nothing covers 11

    def not_from_zero(d: dict[str, Any]) -> None:
        d["dimensions"][0]["bands"][3]["min"] = 1

    def not_to_max(d: dict[str, Any]) -> None:
        d["dimensions"][2]["max"] = 25

    def total_mismatch(d: dict[str, Any]) -> None:
        d["total"] = 50

    def unknown_key(d: dict[str, Any]) -> None:
        d["deductions"]["missing_titel"] = 2

    def float_version(d: dict[str, Any]) -> None:
        d["version"] = 2024.1

    def duplicate_key(d: dict[str, Any]) -> None:
        d["dimensions"][1]["key"] = "content"

    def reserved_key(d: dict[str, Any]) -> None:
        d["dimensions"][1]["key"] = "comment"

    def unknown_error_type(d: dict[str, Any]) -> None:
        d["error_types"] = ["病句"]

    def cap_above_total(d: dict[str, Any]) -> None:
        d["caps"]["length"][0]["max_total"] = 80

    def band_min_above_max(d: dict[str, Any]) -> None:
        d["dimensions"][0]["bands"][0]["min"] = 21

    def duplicate_band_name(d: dict[str, Any]) -> None:
        d["dimensions"][0]["bands"][1]["name"] = "一等"

    def development_cap_mismatch(d: dict[str, Any]) -> None:
        dev = d["dimensions"][2]
        dev["bands"] = [{"name": "高", "min": 11, "max": 20}, {"name": "低", "min": 0, "max": 10}]

    def negative_deduction(d: dict[str, Any]) -> None:
        d["deductions"]["missing_title"] = -2

    def unknown_count_rule(d: dict[str, Any]) -> None:
        d["char_count_rule"] = "words"

    return [
        ("overlap", overlap, "重叠"),
        ("gap", gap, "缺少 11–11 分"),
        ("not_from_zero", not_from_zero, "应从 0 分开始"),
        ("not_to_max", not_to_max, "应止于满分 25"),
        ("total_mismatch", total_mismatch, "不等于各维度满分之和 60"),
        ("unknown_key", unknown_key, "missing_titel"),
        ("float_version", float_version, "加引号"),
        ("duplicate_key", duplicate_key, "维度键重复"),
        ("reserved_key", reserved_key, "保留字"),
        ("unknown_error_type", unknown_error_type, "不在 error_types 中"),
        ("cap_above_total", cap_above_total, "超过满分"),
        ("band_min_above_max", band_min_above_max, "大于最高分"),
        ("duplicate_band_name", duplicate_band_name, "分档名称重复"),
        ("development_cap_mismatch", development_cap_mismatch, "分档数相同"),
        ("negative_deduction", negative_deduction, "missing_title"),
        ("unknown_count_rule", unknown_count_rule, "char_count_rule"),
    ]


@pytest.mark.parametrize(("case", "mutate", "phrase"), _mutations(), ids=[m[0] for m in _mutations()])
def test_invalid_rubric_files_are_rejected_with_file_and_problem(
    tmp_path: Path, case: str, mutate: Any, phrase: str
) -> None:
    data = _national_data()
    mutate(data)
    path = _write(tmp_path, data, f"{case}.yaml")
    with pytest.raises(RubricError) as info:
        load_rubric_file(path)
    message = str(info.value)
    assert str(path) in message
    assert phrase in message


def test_total_mismatch_allowed_when_explicit(tmp_path: Path) -> None:
    data = _national_data()
    data["total"] = 50
    data["allow_total_mismatch"] = True
    data["caps"]["length"] = []
    assert load_rubric_file(_write(tmp_path, data)).total == 50


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(RubricError, match="无法读取") as info:
        load_rubric_file(missing)
    assert str(missing) in str(info.value)

    broken = tmp_path / "broken.yaml"
    broken.write_text("id: [unclosed\n", encoding="utf-8")
    with pytest.raises(RubricError, match="不是合法的 YAML"):
        load_rubric_file(broken)

    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(RubricError, match="顶层必须是键值映射"):
        load_rubric_file(listing)


# --- 双评 (double marking) ---


def _double_marking(**changes: Any) -> Rubric:
    data = _national_data()
    data["double_marking"].update(changes)
    return Rubric.model_validate(data)


def test_national_double_marking() -> None:
    rubric = load_rubric("gaokao-national")
    rule = rubric.double_marking
    assert (rule.tolerance, rule.within, rule.rounding) == (6, "mean", "half_up")
    assert (rule.beyond, rule.third_reading, rule.arbitrate_if_third_beyond) == (
        "third_reading",
        "mean_of_closest_two",
        True,
    )
    # the file states the defaults: without the section the rubric decides the same way
    data = _national_data()
    del data["double_marking"]
    without = Rubric.model_validate(data)
    assert without.double_marking.tolerance is None and without.tolerance_for() == 6
    assert without.double_marking.model_copy(update={"tolerance": 6}) == rule
    assert rubric.tolerance_for() == 6
    assert rubric.tolerance_for("content") == 2  # 6 × 20/60


@pytest.mark.parametrize(("total", "tolerance"), [(60, 6), (50, 5), (100, 10), (150, 15), (45, 5), (44, 4), (4, 0)])
def test_default_tolerance_scales_6_of_60(total: int, tolerance: int) -> None:
    assert default_tolerance(total) == tolerance  # total × 6/60, rounded half up (4.5 → 5)


def test_school_rubric_without_section_gets_the_scaled_default() -> None:
    rubric = load_rubric_file(SCHOOL_FILE)
    assert rubric.double_marking.tolerance is None
    assert rubric.tolerance_for() == 5  # 6/60 of 50
    assert (rubric.tolerance_for("ideas"), rubric.tolerance_for("language")) == (3, 2)  # 5 × 30/50, 5 × 20/50


@pytest.mark.parametrize(
    ("value", "phrase"),
    [
        (-1, "不能为负数"),
        (61, "超过满分 60"),
        (6.5, "必须是整数分"),
        ("6", "必须是整数分"),
        (True, "必须是整数分"),
    ],
)
def test_invalid_tolerance_is_rejected_in_chinese(tmp_path: Path, value: Any, phrase: str) -> None:
    data = _national_data()
    data["double_marking"]["tolerance"] = value
    path = _write(tmp_path, data)
    with pytest.raises(RubricError) as info:
        load_rubric_file(path)
    assert phrase in str(info.value)
    assert "double_marking" in str(info.value) and str(path) in str(info.value)


def test_unknown_double_marking_rule_is_rejected(tmp_path: Path) -> None:
    data = _national_data()
    data["double_marking"]["beyond"] = "median"
    with pytest.raises(RubricError, match="double_marking.beyond"):
        load_rubric_file(_write(tmp_path, data))


def test_tolerance_equal_to_total_is_allowed() -> None:
    assert _double_marking(tolerance=60).tolerance_for() == 60
    assert _double_marking(tolerance=0).tolerance_for("content") == 0


def test_within_tolerance() -> None:
    rubric = load_rubric("gaokao-national")
    assert within_tolerance(40, 46, rubric) and within_tolerance(46, 40, rubric)
    assert not within_tolerance(40, 47, rubric)
    assert within_tolerance(10, 12, rubric, "content") and not within_tolerance(10, 13, rubric, "content")


@pytest.mark.parametrize(
    ("readings", "score", "rule", "needs"),
    [
        ([45], None, None, "second_reading"),
        ([40, 45], 43, "mean", None),  # 42.5 rounds half up
        ([40, 46], 43, "mean", None),  # a gap of exactly 6 is within the tolerance
        ([40, 47], None, None, "third_reading"),
        ([40, 47, 45], 46, "mean_of_closest_two", None),  # 45 is closer to 47: (45 + 47) / 2
        ([40, 47, 41], 41, "mean_of_closest_two", None),  # (41 + 40) / 2 = 40.5 → 41
        ([30, 42, 36], 36, "mean_of_closest_two", None),  # equally close: (30 + 42 + 36) / 3
        ([20, 40, 50], None, None, "arbitration"),  # the third is more than 6 from both
        ([20, 40, 50, 44], 44, "arbitration", None),  # 终评 stands
    ],
)
def test_final_score_national(readings: list[int], score: int | None, rule: str | None, needs: str | None) -> None:
    result = final_score(readings, load_rubric("gaokao-national"))
    assert (result.score, result.rule, result.needs) == (score, rule, needs)


def test_final_score_other_rules() -> None:
    assert final_score([40, 45], _double_marking(rounding="floor")).score == 42
    assert final_score([40, 45], _double_marking(rounding="ceil")).score == 43
    assert final_score([40, 47, 41], _double_marking(rounding="floor")).score == 40
    # straight to 终评
    straight = _double_marking(beyond="arbitration")
    assert final_score([40, 47], straight).needs == "arbitration"
    assert (final_score([40, 47, 44], straight).score, final_score([40, 47, 44], straight).rule) == (44, "arbitration")
    # the third reading stands
    assert final_score([40, 47, 30], _double_marking(third_reading="third_stands")).score == 30
    # no 终评: the third is averaged with the closer reading even when far from both
    assert final_score([20, 40, 50], _double_marking(arbitrate_if_third_beyond=False)).score == 45


def test_final_score_rejects_bad_readings() -> None:
    rubric = load_rubric("gaokao-national")
    with pytest.raises(ValueError, match="at least one reading"):
        final_score([], rubric)
    with pytest.raises(ValueError, match=r"0\.\.60"):
        final_score([61, 40], rubric)
    with pytest.raises(ValueError, match="already decide"):
        final_score([40, 42, 50], rubric)
    with pytest.raises(ValueError, match="already decide"):
        final_score([40, 47, 45, 44], rubric)
