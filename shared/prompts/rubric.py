"""Rubrics as versioned YAML data: the pydantic model, its validation and the loaders.

A rubric says how many points each dimension is worth, what its bands mean, which deductions and
caps apply, how long the model's answer may be and how two readings of an essay become one score (双评).
Shipped rubrics live in ``rubrics/<id>.yaml`` (older pinned versions as ``rubrics/<id>@<version>.yaml``);
a school may load its own file.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.textnorm import CharCountRule

logger = logging.getLogger(__name__)

RUBRIC_DIR = Path(__file__).resolve().parent / "rubrics"
RESERVED_KEYS = frozenset({"errors", "comment"})
_ID_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
_VERSION_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z._-]*$"


class RubricError(ValueError):
    """A rubric file is missing, unreadable or invalid; the message names the file and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Band(_Strict):
    """One band (等) of a dimension: an inclusive score range and what earns it."""

    name: str = Field(min_length=1)
    min: int = Field(ge=0)
    max: int = Field(ge=0)
    descriptors: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _range(self) -> Band:
        if self.min > self.max:
            raise ValueError(f"分档 {self.name} 的最低分 {self.min} 大于最高分 {self.max}")
        return self


class Dimension(_Strict):
    """A scored dimension (内容, 表达, 发展等级 …) with bands covering 0..max."""

    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=1)
    group: Literal["basic", "development"] = "basic"
    max: int = Field(gt=0)
    guidance: str = ""
    bands: list[Band] = Field(min_length=1)

    @field_validator("key")
    @classmethod
    def _not_reserved(cls, key: str) -> str:
        if key in RESERVED_KEYS:
            raise ValueError(f"维度键 {key!r} 是保留字（{', '.join(sorted(RESERVED_KEYS))}）")
        return key

    @field_validator("bands")
    @classmethod
    def _sorted_bands(cls, bands: list[Band]) -> list[Band]:
        names = [band.name for band in bands]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"分档名称重复：{'、'.join(duplicates)}")
        return sorted(bands, key=lambda band: band.min, reverse=True)

    @model_validator(mode="after")
    def _bands_cover_range(self) -> Dimension:
        ascending = list(reversed(self.bands))
        if ascending[0].min != 0:
            raise ValueError(
                f"维度 {self.key}：最低分档 {ascending[0].name} 应从 0 分开始，实际从 {ascending[0].min}"
            )
        for lower, upper in zip(ascending, ascending[1:], strict=False):
            if upper.min <= lower.max:
                raise ValueError(
                    f"维度 {self.key}：分档 {upper.name}（{upper.min}–{upper.max}）与 "
                    f"{lower.name}（{lower.min}–{lower.max}）重叠"
                )
            if upper.min > lower.max + 1:
                raise ValueError(
                    f"维度 {self.key}：分档 {lower.name} 与 {upper.name} 之间"
                    f"缺少 {lower.max + 1}–{upper.min - 1} 分"
                )
        if ascending[-1].max != self.max:
            raise ValueError(
                f"维度 {self.key}：最高分档 {ascending[-1].name} 止于 {ascending[-1].max}，"
                f"应止于满分 {self.max}"
            )
        return self

    def band_for(self, score: int) -> Band:
        """Return the band containing ``score``; raise ValueError outside 0..max."""
        for band in self.bands:
            if band.min <= score <= band.max:
                return band
        raise ValueError(f"score {score} is outside 0..{self.max} of dimension {self.key!r}")

    def rank_of(self, score: int) -> int:
        """Rank of the band containing ``score``: 0 for the top band."""
        return self.bands.index(self.band_for(score))


class LengthDeduction(_Strict):
    """Points deducted per ``per_chars`` characters short of the required length."""

    per_chars: int = Field(default=50, gt=0)
    points: int = Field(default=1, ge=0)
    rounding: Literal["ceil", "floor"] = "ceil"


class TypoDeduction(_Strict):
    """错别字: points per unique wrong character/word, after ``free_count`` free ones, up to a cap."""

    error_type: str = "错别字"
    points_each: int = Field(default=1, ge=0)
    max_points: int = Field(default=5, ge=0)
    free_count: int = Field(default=0, ge=0)


class PunctuationDeduction(_Strict):
    """标点: ``points`` deducted once ``threshold`` or more punctuation errors are found."""

    error_type: str = "标点"
    threshold: int = Field(default=3, gt=0)
    points: int = Field(default=1, ge=0)


class Deductions(_Strict):
    """Deterministic deductions applied after the dimension scores are summed."""

    missing_title: int = Field(default=2, ge=0)
    length: LengthDeduction | None = Field(default_factory=LengthDeduction)
    typo: TypoDeduction | None = Field(default_factory=TypoDeduction)
    punctuation: PunctuationDeduction | None = Field(default_factory=PunctuationDeduction)


class LengthCap(_Strict):
    """A cap on the total for bodies shorter than ``below_chars`` (残篇 and similar 细则)."""

    label: str = "残篇"
    below_chars: int = Field(gt=0)
    max_total: int = Field(ge=0)
    skip_length_deduction: bool = False


class FewSentencesCap(_Strict):
    """One or two sentences: the total is held within [min_total, max_total], never 0."""

    max_sentences: int = Field(default=2, gt=0)
    below_chars: int = Field(default=200, gt=0)
    min_total: int = Field(default=1, ge=0)
    max_total: int = Field(default=2, ge=0)

    @model_validator(mode="after")
    def _range(self) -> FewSentencesCap:
        if self.min_total > self.max_total:
            raise ValueError(f"few_sentences：min_total {self.min_total} 大于 max_total {self.max_total}")
        return self


class Caps(_Strict):
    """Caps applied to the total after deductions."""

    length: list[LengthCap] = Field(default_factory=list)
    few_sentences: FewSentencesCap | None = Field(default_factory=FewSentencesCap)


class OutputLimits(_Strict):
    """Size limits for the model's answer, enforced by the JSON schema."""

    comment_max_chars: int = Field(default=150, gt=0)
    evidence_max_items: int = Field(default=1, ge=0)
    evidence_max_chars: int = Field(default=40, gt=0)
    errors_max_items: int = Field(default=12, ge=0)
    quote_max_chars: int = Field(default=20, gt=0)
    suggestion_max_chars: int = Field(default=20, gt=0)
    explanation_max_chars: int = Field(default=40, gt=0)


def default_tolerance(total: int) -> int:
    """全国卷 practice, 6 of 60 points, scaled to ``total`` and rounded half up (50 → 5, 100 → 10, 150 → 15)."""
    return (total + 5) // 10


class DoubleMarking(_Strict):
    """双评: how two independent readings of an essay's total become its final score.

    Readings within ``tolerance`` points of each other are averaged (``within: mean``) and the average is
    rounded to whole points by ``rounding``. Beyond it, ``beyond`` decides: ``third_reading`` (三评) or
    ``arbitration`` (straight to 终评, whose score stands). After a third reading, ``mean_of_closest_two``
    averages the third with whichever earlier reading is closer to it (equally close: the mean of all
    three), or ``third_stands`` takes the third as final; with ``arbitrate_if_third_beyond`` a third
    reading beyond the tolerance from both earlier ones goes to 终评 as well. Without a ``tolerance`` the
    rubric uses 6/60 of its total (``default_tolerance``).
    """

    tolerance: int | None = None
    within: Literal["mean"] = "mean"
    rounding: Literal["half_up", "floor", "ceil"] = "half_up"
    beyond: Literal["third_reading", "arbitration"] = "third_reading"
    third_reading: Literal["mean_of_closest_two", "third_stands"] = "mean_of_closest_two"
    arbitrate_if_third_beyond: bool = True

    @field_validator("tolerance", mode="before")
    @classmethod
    def _whole_points(cls, value: Any) -> Any:
        if value is None:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"双评误差 tolerance 必须是整数分，实际为 {value!r}")
        if value < 0:
            raise ValueError(f"双评误差 tolerance 不能为负数，实际为 {value}")
        return value


class Rubric(_Strict):
    """A complete, validated grading rubric."""

    id: str = Field(pattern=_ID_PATTERN)
    version: str = Field(pattern=_VERSION_PATTERN)
    name: str = Field(min_length=1)
    total: int = Field(gt=0)
    allow_total_mismatch: bool = False
    char_count_rule: CharCountRule = "hanzi_alnum_punct"
    required_length: int = Field(default=800, gt=0)
    dimensions: list[Dimension] = Field(min_length=1)
    development_capped_by_basic: bool = False
    deductions: Deductions = Field(default_factory=Deductions)
    caps: Caps = Field(default_factory=Caps)
    error_types: list[str] = Field(min_length=1)
    output_limits: OutputLimits = Field(default_factory=OutputLimits)
    double_marking: DoubleMarking = Field(default_factory=DoubleMarking)

    @field_validator("version", mode="before")
    @classmethod
    def _version_is_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError(f'version 必须是加引号的字符串（如 "2024.1"），实际为 {value!r}')
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Rubric:
        keys = [dim.key for dim in self.dimensions]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise ValueError(f"维度键重复：{', '.join(duplicates)}")
        dimension_sum = sum(dim.max for dim in self.dimensions)
        if dimension_sum != self.total and not self.allow_total_mismatch:
            raise ValueError(
                f"满分 total={self.total} 不等于各维度满分之和 {dimension_sum}"
                "（如确有意为之，请设置 allow_total_mismatch: true）"
            )
        if len(set(self.error_types)) != len(self.error_types) or not all(self.error_types):
            raise ValueError("error_types 不能为空串或重复")
        for rule in (self.deductions.typo, self.deductions.punctuation):
            if rule is not None and rule.error_type not in self.error_types:
                raise ValueError(f"扣分规则使用的错误类型 {rule.error_type!r} 不在 error_types 中")
        for cap in self.caps.length:
            if cap.max_total > self.total:
                raise ValueError(
                    f"字数上限规则（不足 {cap.below_chars} 字）的 max_total {cap.max_total} 超过满分"
                )
        if self.caps.few_sentences and self.caps.few_sentences.max_total > self.total:
            raise ValueError("few_sentences.max_total 超过满分")
        tolerance = self.double_marking.tolerance
        if tolerance is not None and tolerance > self.total:
            raise ValueError(f"双评误差 double_marking.tolerance {tolerance} 分超过满分 {self.total}")
        if self.development_capped_by_basic:
            self._check_development_cap()
        return self

    def _check_development_cap(self) -> None:
        basic, development = self.basic_dimensions, self.development_dimensions
        if not basic or not development:
            raise ValueError("development_capped_by_basic 需要至少一个 basic 维度和一个 development 维度")
        counts = {len(dim.bands) for dim in basic + development}
        if len(counts) != 1:
            raise ValueError("development_capped_by_basic 要求基础等级与发展等级各维度的分档数相同")

    @property
    def ref(self) -> str:
        """``id@version``: what a grade stores to name the rubric it was scored with."""
        return f"{self.id}@{self.version}"

    @property
    def basic_dimensions(self) -> list[Dimension]:
        return [dim for dim in self.dimensions if dim.group == "basic"]

    @property
    def development_dimensions(self) -> list[Dimension]:
        return [dim for dim in self.dimensions if dim.group == "development"]

    def dimension(self, key: str) -> Dimension:
        """Return the dimension called ``key``; raise KeyError naming the known keys."""
        for dim in self.dimensions:
            if dim.key == key:
                return dim
        raise KeyError(
            f"rubric {self.ref} has no dimension {key!r}; known: {', '.join(d.key for d in self.dimensions)}"
        )

    def band_for(self, dimension_key: str, score: int) -> Band:
        """Return the band of ``dimension_key`` that ``score`` falls in."""
        return self.dimension(dimension_key).band_for(score)

    def tolerance_for(self, dimension_key: str | None = None) -> int:
        """双评 tolerance in points: for the total, or a dimension's proportional share of it (rounded half up;
        60 → 6 makes 2 for a 20-point dimension). The share is for measuring agreement, not an exam rule."""
        tolerance = self.double_marking.tolerance
        if tolerance is None:
            tolerance = default_tolerance(self.total)
        if dimension_key is None:
            return tolerance
        return _round_half_up(Fraction(tolerance * self.dimension(dimension_key).max, self.total))

    def basic_rank(self, scores: dict[str, int]) -> int:
        """Band rank (0 = top) reached by the basic dimensions together.

        The basic total must reach the sum of the band's minimum over the basic dimensions; for the
        national rubric that makes 一等 32–40, 二等 22–31, 三等 12–21, 四等 0–11 of the 40 basic points.
        """
        basic = self.basic_dimensions
        reached = sum(scores[dim.key] for dim in basic)
        for rank in range(len(basic[0].bands)):
            if reached >= sum(dim.bands[rank].min for dim in basic):
                return rank
        return len(basic[0].bands) - 1


def _round_half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


def _rounded_mean(scores: Sequence[int], rounding: str) -> int:
    mean = Fraction(sum(scores), len(scores))
    if rounding == "floor":
        return math.floor(mean)
    if rounding == "ceil":
        return math.ceil(mean)
    return _round_half_up(mean)


FinalRule = Literal["mean", "mean_of_closest_two", "third_stands", "arbitration"]


@dataclass(frozen=True)
class FinalScore:
    """The outcome of ``final_score``: a score and the rule that formed it, or the reading still needed."""

    score: int | None
    rule: FinalRule | None
    needs: Literal["second_reading", "third_reading", "arbitration"] | None = None


def within_tolerance(a: int, b: int, rubric: Rubric, dimension_key: str | None = None) -> bool:
    """Two readings agree in the sense of 双评: they differ by at most the rubric's tolerance."""
    return abs(a - b) <= rubric.tolerance_for(dimension_key)


def final_score(readings: Sequence[int], rubric: Rubric) -> FinalScore:
    """The final total from the readings so far (一评, 二评, then 三评 and 终评 when the rule asks for them).

    Returns the score and the rule that decided it, or ``score=None`` with the reading still needed.
    Raises ValueError for no readings, a reading outside 0..total, or more readings than the rule uses.
    """
    if not readings:
        raise ValueError("final_score needs at least one reading")
    for reading in readings:
        if isinstance(reading, bool) or not isinstance(reading, int) or not 0 <= reading <= rubric.total:
            raise ValueError(f"reading {reading!r} is not a whole score in 0..{rubric.total} of rubric {rubric.ref}")
    rule, tolerance = rubric.double_marking, rubric.tolerance_for()

    def decided(used: int, score: int, how: FinalRule) -> FinalScore:
        if len(readings) > used:
            raise ValueError(f"{len(readings)} readings given, but the first {used} already decide the score")
        return FinalScore(score=score, rule=how)

    if len(readings) == 1:
        return FinalScore(score=None, rule=None, needs="second_reading")
    first, second = readings[0], readings[1]
    if abs(first - second) <= tolerance:
        return decided(2, _rounded_mean((first, second), rule.rounding), "mean")
    if rule.beyond == "arbitration":
        if len(readings) == 2:
            return FinalScore(score=None, rule=None, needs="arbitration")
        return decided(3, readings[2], "arbitration")
    if len(readings) == 2:
        return FinalScore(score=None, rule=None, needs="third_reading")
    third = readings[2]
    if rule.third_reading == "third_stands":
        return decided(3, third, "third_stands")
    to_first, to_second = abs(third - first), abs(third - second)
    if rule.arbitrate_if_third_beyond and min(to_first, to_second) > tolerance:
        if len(readings) == 3:
            return FinalScore(score=None, rule=None, needs="arbitration")
        return decided(4, readings[3], "arbitration")
    if to_first == to_second:
        closest: tuple[int, ...] = (first, second, third)
    else:
        closest = (third, first if to_first < to_second else second)
    return decided(3, _rounded_mean(closest, rule.rounding), "mean_of_closest_two")


@dataclass(frozen=True)
class RubricInfo:
    """What a rubric picker needs: id, version, name and where the file is."""

    id: str
    version: str
    name: str
    path: Path


# pydantic's error types, in Chinese (its own messages are English); {…} are filled from the error's context.
_ERROR_MESSAGES = {
    "missing": "缺少这一项（必填）",
    "extra_forbidden": "不认识的字段（拼写错误？评分标准不接受多余的字段）",
    "int_type": "应为整数", "int_parsing": "应为整数", "int_from_float": "应为整数，不能有小数",
    "float_type": "应为数字", "float_parsing": "应为数字",
    "bool_type": "应为 true 或 false", "bool_parsing": "应为 true 或 false",
    "string_type": "应为文字", "string_too_short": "不能为空", "string_too_long": "太长（最多 {max_length} 个字符）",
    "string_pattern_mismatch": "格式不对（应符合 {pattern}）",
    "list_type": "应为列表（每行以 - 开头）", "dict_type": "应为键值映射", "model_type": "应为键值映射",
    "model_attributes_type": "应为键值映射",
    "too_short": "至少需要 {min_length} 项", "too_long": "最多 {max_length} 项",
    "greater_than": "必须大于 {gt}", "greater_than_equal": "不能小于 {ge}",
    "less_than": "必须小于 {lt}", "less_than_equal": "不能大于 {le}",
    "literal_error": "只能是 {expected}", "enum": "只能是 {expected}",
}


def _location(parts: Sequence[Any]) -> str:
    """``dimensions[2].bands[1].max`` with positions counted from 1, as a person counts the entries in the file."""
    text = ""
    for part in parts:
        text += f"[{part + 1}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _chinese_message(item: Mapping[str, Any]) -> str:
    if item["type"] == "value_error":  # our own validators already speak Chinese
        return str(item["msg"]).removeprefix("Value error, ")
    template = _ERROR_MESSAGES.get(item["type"])
    if template is None:
        return f"取值无效（{item['msg']}）"
    context = {key: str(value).replace(" or ", " 或 ") for key, value in (item.get("ctx") or {}).items()}
    try:
        return template.format(**context)
    except KeyError:
        return template.split("（")[0]


def _format_validation_error(error: ValidationError) -> str:
    """Every problem as ``位置：说明`` in Chinese, e.g. ``dimensions[2].max：缺少这一项（必填）``."""
    problems = []
    for item in error.errors():
        location = _location(item["loc"])
        message = _chinese_message(item)
        problems.append(f"{location}：{message}" if location else message)
    return "；".join(problems)


def parse_rubric(data: Any, source: str) -> Rubric:
    """Validate already-parsed rubric data; errors name ``source``."""
    if not isinstance(data, dict):
        raise RubricError(f"评分标准文件 {source} 无效：顶层必须是键值映射，实际为 {type(data).__name__}")
    try:
        return Rubric.model_validate(data)
    except ValidationError as exc:
        raise RubricError(f"评分标准文件 {source} 无效：{_format_validation_error(exc)}") from exc


def load_rubric_file(path: str | Path) -> Rubric:
    """Load and validate a rubric YAML file from anywhere on disk (a school's own rubric)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RubricError(f"评分标准文件 {path} 无法读取：{exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise RubricError(f"评分标准文件 {path} 不是 UTF-8 文本") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RubricError(f"评分标准文件 {path} 不是合法的 YAML：{exc}") from exc
    rubric = parse_rubric(data, str(path))
    logger.debug("loaded rubric %s from %s", rubric.ref, path)
    return rubric


def _shipped_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.yaml"))


def list_rubrics(directory: Path | None = None) -> list[RubricInfo]:
    """List the shipped rubrics (every version), sorted by id then version."""
    infos = []
    for path in _shipped_files(directory or RUBRIC_DIR):
        rubric = load_rubric_file(path)
        infos.append(RubricInfo(id=rubric.id, version=rubric.version, name=rubric.name, path=path))
    return sorted(infos, key=lambda info: (info.id, info.version))


def load_rubric(rubric_id: str, version: str | None = None, *, directory: Path | None = None) -> Rubric:
    """Load a shipped rubric by id, optionally pinned to a version.

    ``<id>.yaml`` is the current version; a pinned older version is ``<id>@<version>.yaml``.
    """
    directory = directory or RUBRIC_DIR
    available = sorted({path.stem.split("@", 1)[0] for path in _shipped_files(directory)})
    if rubric_id not in available:
        raise RubricError(f"未知的评分标准 {rubric_id!r}；可用：{', '.join(available) or '（无）'}")
    current = load_rubric_file(directory / f"{rubric_id}.yaml")
    if current.id != rubric_id:
        raise RubricError(
            f"评分标准文件 {directory / f'{rubric_id}.yaml'} 无效：id {current.id!r} 与文件名不符"
        )
    if version is None or current.version == version:
        return current
    pinned_path = directory / f"{rubric_id}@{version}.yaml"
    if not pinned_path.is_file():
        versions = [info.version for info in list_rubrics(directory) if info.id == rubric_id]
        raise RubricError(f"评分标准 {rubric_id} 没有版本 {version!r}；可用版本：{', '.join(versions)}")
    pinned = load_rubric_file(pinned_path)
    if pinned.id != rubric_id or pinned.version != version:
        raise RubricError(f"评分标准文件 {pinned_path} 无效：内容为 {pinned.ref}，与文件名不符")
    return pinned


def is_rubric_path(rubric_id: str) -> bool:
    """An assignment's rubric reference names a school's rubric file (rather than a shipped rubric id)."""
    return rubric_id.endswith((".yaml", ".yml")) or Path(rubric_id).is_file()


def resolve_rubric(rubric_id: str, version: str | None = None) -> Rubric:
    """The rubric an assignment refers to: a school's rubric file by path, or a shipped rubric by id (and version).
    The one rule, for the web, the grading pipeline and the reports."""
    if is_rubric_path(rubric_id):
        return load_rubric_file(rubric_id)
    return load_rubric(rubric_id, version)
