"""Error detection for `yuejuan eval --task spelling|sentences`: sentences packed into short essays, findings given
back to their sentence by location (through normalisation), the SIGHAN/FCGEC readers and the figures."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from services.worker.engine import Generation
from services.worker.evaluation.detection import (
    NO_CORRECTION,
    PACK_TITLE,
    PackedEssay,
    SentenceFinding,
    attribute_findings,
    detection_rows,
    grade_sentences,
    pack_sentences,
    read_fcgec,
    read_sighan,
    sentence_flagged,
    spelling_edits,
)
from services.worker.evaluation.detection_report import summarize_detection
from services.worker.evaluation.sets import EvalSetError
from services.worker.jobs import EssayOutcome, LocatedError
from shared.prompts.rubric import load_rubric
from shared.textnorm import clean_essay_text

SENTENCES = [
    "今天天气很好。",
    "我们去公园散步。",
    "　　我有２个好朋唷，他们都很高兴。",  # indented, a full-width digit: normalisation shortens and changes it
    "他\u200b以经走了。",  # a zero-width space the pipeline removes
    "最后一句话。",
]


def _outcome(essay: PackedEssay, *quotes: tuple[str, str, str]) -> EssayOutcome:
    """A graded outcome of ``essay`` whose findings are placed by hand: (quote in the normalised text, type,
    suggestion), each at its first occurrence after the title line."""
    text = clean_essay_text(essay.text)
    errors = []
    for quote, kind, suggestion in quotes:
        start = text.index(quote, 0 if quote == PACK_TITLE else len(PACK_TITLE))
        errors.append(LocatedError(kind, start, start + len(quote), quote, suggestion, "", "model"))
    return EssayOutcome(essay_id=0, text=text, prompt_version="test", errors=errors)


def test_sentences_are_packed_evenly_in_order_one_a_line_under_a_title() -> None:
    essays = pack_sentences([f"第{i}句。" for i in range(22)], per_essay=10)
    assert [(e.first, len(e.lines)) for e in essays] == [(0, 8), (8, 7), (15, 7)]
    assert essays[1].text.split("\n") == [PACK_TITLE, *(f"第{i}句。" for i in range(8, 15))]
    (one,) = pack_sentences(["上半句\n下半句。"], per_essay=10)
    assert one.lines == ("上半句 下半句。",), "a line break inside a sentence keeps the sentence on one line"
    assert pack_sentences([], per_essay=10) == []


def test_an_error_in_sentence_3_goes_to_sentence_3_at_its_position_in_the_sentence_as_given() -> None:
    (essay,) = pack_sentences(SENTENCES)
    outcome = _outcome(essay, ("朋唷", "错别字", "朋友"))
    assert outcome.text.split("\n")[3] == "我有2个好朋唷，他们都很高兴。", "normalised: no indent, half-width 2"
    per_sentence = attribute_findings(essay, outcome)
    assert [len(f) for f in per_sentence] == [0, 0, 1, 0, 0]
    (finding,) = per_sentence[2]
    assert SENTENCES[2][finding.start:finding.end] == "朋唷" and finding.positions == (7, 8)
    assert spelling_edits(per_sentence[2]) == {8: "友"}
    assert SENTENCES[2][8] == "唷"


def test_positions_survive_removed_invisible_characters_and_changed_digits() -> None:
    (essay,) = pack_sentences(SENTENCES)
    outcome = _outcome(essay, ("以经", "错别字", "已经"), ("2个", "错别字", "两个"))
    per_sentence = attribute_findings(essay, outcome)
    assert spelling_edits(per_sentence[3]) == {2: "已"} and SENTENCES[3][2] == "以"
    assert spelling_edits(per_sentence[2]) == {4: "两"} and SENTENCES[2][4] == "２"


def test_findings_in_the_title_are_left_out_and_a_finding_is_cut_at_its_sentences_end() -> None:
    (essay,) = pack_sentences(SENTENCES)
    outcome = _outcome(essay, (PACK_TITLE, "病句", "句子"), ("走了。\n最后", "病句", "走了"))
    per_sentence = attribute_findings(essay, outcome)
    assert [len(f) for f in per_sentence] == [0, 0, 0, 1, 0]
    (cut,) = per_sentence[3]
    assert cut.original == "走了。" and SENTENCES[3][cut.start:cut.end] == "走了。"


def test_a_second_essay_maps_from_its_own_first_sentence() -> None:
    essays = pack_sentences(SENTENCES, per_essay=3)
    assert [e.first for e in essays] == [0, 3]
    rows = detection_rows(
        "spelling", _labelled(), essays,
        [_outcome(essays[0]), _outcome(essays[1], ("以经", "错别字", "已经"))],
    )
    assert [row.key for row in rows] == [f"s:{i}" for i in range(1, 6)]
    assert [row.essay for row in rows] == [0, 0, 0, 1, 1]
    assert [row.predicted["edits"] for row in rows] == [[], [], [], [[2, "已"]], []]


@pytest.mark.parametrize(("original", "suggestion", "expected"), [
    ("以经", "已经", {10: "已"}),  # equal length: the differing character
    ("朋唷们", "朋友门", {11: "友", 12: "门"}),
    ("再", "再", {10: NO_CORRECTION}),  # a suggestion that repeats the quote: flagged, no correction
    ("的的确", "的确", {11: NO_CORRECTION}),  # a deletion: the deleted character, never corrected
    ("朋友", "好朋友", {}),  # a pure insertion flags nothing
    ("那里", "哪儿里", {10: NO_CORRECTION}),
])
def test_spelling_edits_from_a_quote_and_its_suggestion(original: str, suggestion: str,
                                                       expected: dict[int, str]) -> None:
    positions = tuple(range(10, 10 + len(original)))
    finding = SentenceFinding("错别字", 10, 10 + len(original), original, positions, suggestion, "model")
    assert spelling_edits([finding]) == expected


def test_only_spelling_findings_are_edits_and_the_first_finding_at_a_position_stands() -> None:
    first = SentenceFinding("错别字", 2, 3, "在", (2,), "再", "model")
    second = SentenceFinding("错别字", 2, 4, "在是", (2, 3), "正是", "model")
    other = SentenceFinding("用词不当", 5, 6, "做", (5,), "作", "model")
    assert spelling_edits([second, other, first]) == {2: "再"}


def test_grammatical_findings_flag_a_sentence_typos_and_punctuation_do_not() -> None:
    def finding(kind: str) -> SentenceFinding:
        return SentenceFinding(kind, 0, 1, "我", (0,), "", "model")

    for kind in ("病句", "用词不当", "关联词"):
        assert sentence_flagged([finding(kind)])
    assert not sentence_flagged([finding("错别字"), finding("标点")])
    assert not sentence_flagged([finding("用词不当")], types=("病句",))


def test_a_failed_essay_predicts_nothing_for_its_sentences() -> None:
    essays = pack_sentences(SENTENCES, per_essay=3)
    failed = EssayOutcome(essay_id=0, error="模型输出无效: x")
    rows = detection_rows("sentences", _labelled(), essays, [failed, _outcome(essays[1], ("以经", "病句", ""))])
    assert [row.failure for row in rows] == ["模型输出无效: x"] * 3 + [None, None]
    assert [row.predicted for row in rows][2:] == [
        {"error": False, "types": []}, {"error": True, "types": ["病句"]}, {"error": False, "types": []}]
    unread = detection_rows("sentences", _labelled()[:3], essays[:1], [EssayOutcome(essay_id=0, text="x")])
    assert unread[0].failure.startswith("未送模型"), "scored by the rubric alone: nothing was looked for"


def _labelled() -> list[Any]:
    from services.worker.evaluation.detection import LabelledSentence

    return [LabelledSentence(key=f"s:{i}", text=text) for i, text in enumerate(SENTENCES, 1)]


# --- the sets -------------------------------------------------------------------------------------


def test_sighan_reads_line_aligned_pairs_into_edits(tmp_path: Path) -> None:
    (tmp_path / "test15_error.txt").write_text("我跟我朋唷去。\n你好。\n以经在再见\n", "utf-8")
    (tmp_path / "test15_correct.txt").write_text("我跟我朋友去。\n你好。\n已经再再见\n", "utf-8")
    sentences = read_sighan(tmp_path)
    assert [(s.key, s.edits, s.error) for s in sentences] == [
        ("test15_error:1", {4: "友"}, True), ("test15_error:2", {}, False),
        ("test15_error:3", {0: "已", 2: "再"}, True),
    ]
    assert read_sighan(tmp_path / "test15_error.txt") == sentences


def test_sighan_names_the_line_that_does_not_align(tmp_path: Path) -> None:
    (tmp_path / "test15_error.txt").write_text("你好。\n我跟我朋唷去。\n", "utf-8")
    (tmp_path / "test15_correct.txt").write_text("你好。\n我跟朋友去了。。\n", "utf-8")
    with pytest.raises(EvalSetError, match="test15_error.txt 第 2 行"):
        read_sighan(tmp_path)
    (tmp_path / "test15_correct.txt").write_text("你好。\n", "utf-8")
    with pytest.raises(EvalSetError, match="逐行对应"):
        read_sighan(tmp_path)


def test_fcgec_reads_flags_and_types_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "FCGEC_valid.json"
    path.write_text(json.dumps({
        "b": {"sentence": "通过这次活动，使我们受到了教育。", "error_flag": 1, "error_type": "CM", "operation": "[]"},
        "a": {"sentence": "他的成绩很好。", "error_flag": 0, "error_type": "*", "operation": "[]"},
        "c": {"sentence": "大约十个左右的人。", "error_flag": 1, "error_type": "CR;CR", "operation": "[]"},
        "d": {"sentence": "我们要改进学习方法和态度。", "error_flag": 1, "error_type": "IWC;CM", "operation": "[]"},
    }, ensure_ascii=False), "utf-8")
    sentences = read_fcgec(tmp_path)
    assert [(s.key, s.error, s.types) for s in sentences] == [
        ("b", True, ("CM",)), ("a", False, ()), ("c", True, ("CR",)), ("d", True, ("CM", "IWC"))]
    path.write_text(json.dumps({"x": {"sentence": "", "error_flag": 1}}), "utf-8")
    with pytest.raises(EvalSetError, match="记录 x"):
        read_fcgec(path)


# --- the figures ----------------------------------------------------------------------------------


def _row(key: str, essay: int, gold: dict[str, Any], predicted: dict[str, Any],
         failure: str | None = None) -> dict[str, Any]:
    return {"key": key, "essay": essay, "sentence": "", "gold": gold, "predicted": predicted, "findings": [],
            "failure": failure}


def test_spelling_figures_from_rows_by_hand() -> None:
    rows = [
        _row("1", 0, {"edits": [[1, "友"]]}, {"edits": [[1, "友"]]}),  # detected and corrected
        _row("2", 0, {"edits": [[0, "已"], [3, "再"]]}, {"edits": [[0, "以"]]}),  # one of two positions
        _row("3", 0, {"edits": []}, {"edits": [[2, "的"]]}),  # a false alarm
        _row("4", 1, {"edits": [[5, "在"]]}, {"edits": [[5, ""]]}, failure=None),  # found, no correction
        _row("5", 1, {"edits": []}, {"edits": []}),
        _row("6", 2, {"edits": [[0, "他"]]}, {"edits": []}, failure="生成失败: x"),
    ]
    summary = summarize_detection("spelling", rows)
    detection, correction = summary.figures["sentence_detection"], summary.figures["sentence_correction"]
    assert (detection["tp"], detection["fp"], detection["fn"], detection["tn"]) == (2, 1, 2, 1)
    assert (correction["tp"], correction["fp"], correction["fn"], correction["tn"]) == (1, 1, 3, 1)
    assert detection["precision"] == pytest.approx(2 / 3) and detection["recall"] == pytest.approx(2 / 4)
    chars, fixed = summary.figures["char_detection"], summary.figures["char_correction"]
    assert (chars["hits"], chars["flagged"], chars["gold"]) == (3, 4, 5)
    assert (fixed["hits"], fixed["flagged"], fixed["gold"]) == (1, 4, 5)
    assert chars["f1"] == pytest.approx(2 * 3 / (4 + 5))
    assert (summary.sentences, summary.essays, summary.failed_sentences) == (6, 3, 1)
    assert summary.failures == [{"essay": 2, "reason": "生成失败: x", "keys": ["6"]}]
    line = summary.headline()
    assert line["task"] == "spelling" and line["sentence_correction_f1"] == pytest.approx(2 * 1 / (2 + 1 + 3))


def test_sentence_figures_from_rows_by_hand() -> None:
    rows = [
        _row("1", 0, {"error": True, "types": ["CM"]}, {"error": True, "types": ["病句"]}),
        _row("2", 0, {"error": True, "types": ["CM", "IWC"]}, {"error": True, "types": ["用词不当"]}),
        _row("3", 0, {"error": True, "types": ["IWO"]}, {"error": False, "types": []}),
        _row("4", 0, {"error": False, "types": []}, {"error": True, "types": ["关联词"]}),
        _row("5", 0, {"error": False, "types": []}, {"error": False, "types": []}),
    ]
    summary = summarize_detection("sentences", rows)
    main, strict = summary.figures["sentence_detection"], summary.figures["sentence_detection_bingju_only"]
    assert (main["tp"], main["fp"], main["fn"], main["tn"]) == (2, 1, 1, 1)
    assert (strict["tp"], strict["fp"], strict["fn"], strict["tn"]) == (1, 0, 2, 2)
    assert summary.recall_by_type == {
        "CM": {"name": "成分残缺", "detected": 2, "total": 2, "recall": 1.0},
        "IWC": {"name": "搭配不当", "detected": 1, "total": 1, "recall": 1.0},
        "IWO": {"name": "语序不当", "detected": 0, "total": 1, "recall": 0.0},
    }
    assert summary.headline()["sentence_detection_f1"] == pytest.approx(4 / 6)


# --- through the real pipeline with a scripted model ----------------------------------------------


class ScriptedEngine:
    """Answers every essay with the same errors (quotes of the essay text), valid under the rubric's schema."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors
        self.batches: list[int] = []

    def generate_json(self, conversations: Sequence[Any], schema: dict[str, Any]) -> list[Generation]:
        rubric = load_rubric("gaokao-national")
        answer: dict[str, Any] = {d.key: {"score": 0, "band": d.band_for(0).name, "evidence": []}
                                  for d in rubric.dimensions}
        answer |= {"errors": self.errors, "comment": "句子练习。"}
        self.batches.append(len(conversations))
        text = json.dumps(answer, ensure_ascii=False)
        return [Generation(text=text, prompt_tokens=1, new_tokens=1, latency_s=0.0, finished=True)
                for _ in conversations]

    def describe(self) -> dict[str, Any]:
        return {"model": "scripted", "engine": "scripted"}


def test_the_pipeline_locates_quotes_that_map_back_to_their_sentence() -> None:
    engine = ScriptedEngine([
        {"type": "错别字", "original": "朋唷", "suggestion": "朋友", "explanation": ""},
        {"type": "错别字", "original": "以经", "suggestion": "已经", "explanation": ""},
    ])
    sentences = [*_labelled(), *_labelled()]
    rubric = load_rubric("gaokao-national")
    rows = grade_sentences(engine, "spelling", sentences, rubric_id="gaokao-national", rubric_version=rubric.version,
                           required_length=800, token_budget=100_000, per_essay=5)
    assert engine.batches == [2], "both essays in one production batch"
    assert [row.failure for row in rows] == [None] * 10
    assert [row.predicted["edits"] for row in rows[:5]] == [[], [], [[8, "友"]], [[2, "已"]], []]
    assert [row.predicted["edits"] for row in rows[5:]] == [row.predicted["edits"] for row in rows[:5]]
