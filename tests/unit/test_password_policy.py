"""The password policy and username rules shared by the web and the CLI."""

from __future__ import annotations

import pytest

from shared.accounts import (
    COMMON_PASSWORDS_FILE,
    MIN_PASSWORD_LENGTH,
    AccountError,
    check_password,
    clean_username,
    common_passwords,
    password_problems,
)
from shared.models import User
from shared.models.org import username_key


@pytest.mark.parametrize("password", ["12345678", "password", "Password123", "1qaz2wsx3edc", "WOAINI1314",
                                      "qwertyuiop", " iloveyou1 "])
def test_common_passwords_are_refused_whatever_their_case(password: str) -> None:
    assert "这个密码太常见，很容易被猜到，请换一个。" in password_problems(password, "wang")


def test_short_repeated_and_username_passwords_are_refused_with_the_rule_named() -> None:
    assert password_problems("Ab3$efg", "wang") == [f"密码至少 {MIN_PASSWORD_LENGTH} 个字符。"]
    assert password_problems("zzzzzzzzzzzz", "wang") == ["密码不能只由一两个字符重复组成。"]
    assert password_problems("Teacher-Li-2026!", "teacher-li") == ["密码不能与用户名相同，也不能包含用户名。"]
    assert password_problems("ＷＡＮＧＷＥＩ-1987-秋", "wangwei") == ["密码不能与用户名相同，也不能包含用户名。"]
    with pytest.raises(AccountError, match="至少 10 个字符.*常见"):
        check_password("password", "li")


def test_an_ordinary_long_password_is_accepted_and_hashed() -> None:
    assert password_problems("correct-horse-battery", "wang") == []
    assert check_password("秋天的落叶-2026-xyz", "wang").startswith("$argon2")


def test_the_common_list_is_data_with_at_least_a_hundred_entries() -> None:
    words = common_passwords()
    assert len(words) >= 100 and "12345678" in words and "password" in words
    assert all(not w.startswith("#") for w in words) and COMMON_PASSWORDS_FILE.suffix == ".txt"


def test_usernames_are_trimmed_and_compared_case_insensitively() -> None:
    assert clean_username("  Wang.Li  ") == "Wang.Li"
    assert username_key("Wang.Li ") == username_key("wang.li") == username_key("ＷＡＮＧ.ＬＩ") == "wang.li"
    user = User(username=" Zhang ", display_name="张", role="teacher", password_hash="x")
    assert (user.username, user.username_key) == ("Zhang", "zhang")
    for bad, rule in [("", "请填写"), ("wang li", "不能有空格"), ("wang\nli", "不能有空格"), ("-wang", "开头"),
                      ("x" * 81, "80")]:
        with pytest.raises(AccountError, match=rule):
            clean_username(bad)
