"""Masking personal data: nothing personal may remain, and unmask restores the text exactly."""

from __future__ import annotations

import re

import pytest

from shared.deidentify import Deidentifier, given_name, school_short_forms, unmask

ROSTER = ["王小明", "李雷", "欧阳娜娜", "张 伟"]
SCHOOLS = ["北京市第四中学", "清华大学附属中学"]
PERSONAL = [
    "王小明",
    "小明",
    "李雷",
    "欧阳娜娜",
    "娜娜",
    "张伟",
    "北京市第四中学",
    "北京四中",
    "清华附中",
    "13812345678",
    "139 8765 4321",
    "+86 137-0000-1111",
    "010-62345678",
    "(0571)87654321",
    "11010519491231002X",
    "44030119900101123x",
    "wang.xm@example.com",
    "li_lei+essay@school.edu.cn",
]
ESSAY = (
    "我叫王小明，同学们都叫我小明。李雷是我的同桌，欧阳娜娜和娜娜是同一个人，张伟坐在后面。\n"
    "我们都在北京市第四中学读书，大家习惯叫它北京四中，隔壁是清华附中。\n"
    "有事请打13812345678或139 8765 4321，也可以打+86 137-0000-1111，家里座机010-62345678，"
    "外婆家(0571)87654321。\n"
    "身份证号11010519491231002X，妈妈的是44030119900101123x。"
    "邮箱wang.xm@example.com，李雷的是li_lei+essay@school.edu.cn。王小明写完了。"
)


def _masker() -> Deidentifier:
    return Deidentifier(ROSTER, SCHOOLS)


def test_nothing_personal_remains_and_unmask_restores_exactly() -> None:
    masked = _masker().mask(ESSAY)
    for value in PERSONAL:
        assert value not in masked.text, value
    assert not re.search(r"\d{7,}", masked.text)
    assert "@" not in masked.text
    assert unmask(masked.text, masked.mapping) == ESSAY
    assert set(masked.mapping.values()) == set(PERSONAL)


def test_placeholders_by_kind_and_same_value_same_placeholder() -> None:
    masked = _masker().mask(ESSAY)
    by_value = {value: placeholder for placeholder, value in masked.mapping.items()}
    assert by_value["王小明"] == "【姓名1】"
    assert masked.text.count("【姓名1】") == 2  # 王小明 at the start and at the end
    assert by_value["北京市第四中学"].startswith("【学校")
    assert by_value["13812345678"].startswith("【电话")
    assert by_value["010-62345678"].startswith("【电话")
    assert by_value["11010519491231002X"] == "【身份证1】"
    assert by_value["wang.xm@example.com"] == "【邮箱1】"
    assert all(re.fullmatch(r"【(姓名|学校|电话|身份证|邮箱)\d+】", p) for p in masked.mapping)


def test_only_full_names_and_given_names_of_two_or_more_characters() -> None:
    masker = Deidentifier(["李明", "王小明"], [])
    masked = masker.mask("明天李明和小明去明湖。")
    # 李明's given name 明 is a single character: 明天 and 明湖 stay untouched
    assert masked.text == "明天【姓名1】和【姓名2】去明湖。"
    assert given_name("李明") is None
    assert given_name("王小明") == "小明"
    assert given_name("欧阳娜娜") == "娜娜"
    assert given_name("司马光") is None


def test_longest_name_wins() -> None:
    masked = Deidentifier(["王小", "王小明"], []).mask("王小明和王小")
    assert masked.mapping == {"【姓名1】": "王小明", "【姓名2】": "王小"}


def test_school_short_forms() -> None:
    assert {"北京四中", "第四中学", "北京第四中学"} <= school_short_forms("北京市第四中学")
    assert {"杭州二中", "杭州第二中学"} <= school_short_forms("浙江省杭州市第二中学")
    assert {"清华附中", "清华大学附中"} <= school_short_forms("清华大学附属中学")
    assert "高级中学" not in school_short_forms("深圳市高级中学")  # too generic to mask on its own


@pytest.mark.parametrize(
    "text",
    [
        "圆周率是3.1415926535，2024年高考。",
        "订单号123456789012345678901234。",  # longer than any ID/phone: not a phone inside it
        "我考了139分，第1380名。",
    ],
)
def test_numbers_that_are_not_personal_are_left_alone(text: str) -> None:
    masked = _masker().mask(text)
    assert masked.text == text
    assert masked.mapping == {}


def test_unmask_leaves_unknown_placeholders() -> None:
    assert unmask("【姓名1】和【姓名9】", {"【姓名1】": "李雷"}) == "李雷和【姓名9】"


def test_numbering_restarts_for_each_text() -> None:
    masker = _masker()
    assert masker.mask("李雷").mapping == {"【姓名1】": "李雷"}
    assert masker.mask("王小明").mapping == {"【姓名1】": "王小明"}
