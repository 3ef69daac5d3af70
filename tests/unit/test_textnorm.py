"""Normalisation, title detection, paragraphs, sentences and character counting."""

from __future__ import annotations

import pytest

from shared.textnorm import count_chars, normalize_text, paragraphs, sentences, split_title


def test_normalize_folds_fullwidth_letters_digits_and_space_but_not_punctuation() -> None:
    raw = "Ｑｗｅｎ２０２４年，Ｈｅｌｌｏ　ｗｏｒｌｄ！半角,照旧."
    assert normalize_text(raw) == "Qwen2024年，Hello world！半角,照旧."


def test_normalize_line_endings_indentation_trailing_spaces_and_blank_lines() -> None:
    raw = "\r\n　　题目\r\n\r\n\r\n\r\n　　第一段。  \r　　第二段。\u3000\n\n\n    第三段。\n\n"
    assert normalize_text(raw) == "题目\n\n第一段。\n第二段。\n\n第三段。"


def test_normalize_is_nfc_and_drops_control_characters() -> None:
    assert normalize_text("cafe\u0301\x07好") == "café好"


def test_split_title_short_first_line() -> None:
    text = "青春的模样\n\n青春是一首歌。它唱出了我们的梦想。"
    title, body = split_title(text)
    assert title == "青春的模样"
    assert body == "青春是一首歌。它唱出了我们的梦想。"
    assert text.endswith(body)


@pytest.mark.parametrize(
    ("first_line", "expected"),
    [
        ("题目：说“拼”", "说“拼”"),
        ("标题: 读书之乐", "读书之乐"),
        ("《我的青春我做主》", "我的青春我做主"),
        ("成功也有捷径？", "成功也有捷径？"),
        ("信任，从我开始……", "信任，从我开始……"),
    ],
)
def test_split_title_forms(first_line: str, expected: str) -> None:
    title, body = split_title(f"{first_line}\n正文第一句。正文第二句。")
    assert title == expected
    assert body == "正文第一句。正文第二句。"


@pytest.mark.parametrize(
    "text",
    [
        "我今天很开心。\n因为我读了一本书。",  # first line ends with 。
        "只有一句话，没有标题。",  # a lone sentence
        "这是一个非常非常长的开头段落没有任何标点但是超过了二十五个字的限制所以不是标题\n正文。",
        "春天来了，\n花开了。",  # ends like a clause
    ],
)
def test_split_title_rejects_body_lines(text: str) -> None:
    title, body = split_title(text)
    assert title is None
    assert body == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [("只有一行，没有正文", "只有一行，没有正文"), ("题目：我的青春", "我的青春"), ("《我的青春》\n\n", "我的青春")],
)
def test_a_lone_title_line_is_a_title_with_an_empty_body(text: str, expected: str) -> None:
    assert split_title(text) == (expected, "")


def test_paragraphs_are_non_blank_lines() -> None:
    assert paragraphs("第一段。\n\n第二段。\n第三段") == ["第一段。", "第二段。", "第三段"]


def test_sentences_include_closing_quotes_and_ellipsis() -> None:
    body = "他说：“我来了。”然后走了！真的吗？？是的……\n没有标点的段落"
    spans = sentences(body)
    assert [body[s:e] for s, e in spans] == [
        "他说：“我来了。”",
        "然后走了！",
        "真的吗？？",
        "是的……",
        "没有标点的段落",
    ]


def test_sentences_of_blank_text() -> None:
    assert sentences("") == []
    assert sentences("\n\n") == []


def test_count_chars_rules() -> None:
    body = "我爱China 2024！\n“好……”"
    # hanzi_alnum: 我 爱 (2) + China (5) + 2024 (4) + 好 (1) = 12; spaces/newline never count
    assert count_chars(body, "hanzi_alnum") == 12
    # + punctuation ！ “ … … ” = 5 -> 17 (…… occupies two grid boxes)
    assert count_chars(body, "hanzi_alnum_punct") == 17


def test_count_chars_unknown_rule() -> None:
    with pytest.raises(ValueError, match="unknown character-count rule"):
        count_chars("字", "words")  # type: ignore[arg-type]


def test_count_chars_counts_every_occurrence_of_characters_seen_before() -> None:
    # 𠀀 (CJK Extension B) is a letter beyond the BMP; ＋ and 😀 are symbols, never counted.
    body = "𠀀字＋😀，字字\t𠀀"
    for _ in range(2):  # the second pass classifies from the table the first pass filled
        assert count_chars(body, "hanzi_alnum") == 5
        assert count_chars(body, "hanzi_alnum_punct") == 6
