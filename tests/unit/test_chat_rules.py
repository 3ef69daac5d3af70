"""The chat's pure parts: the sensitive-word filter, off-topic and topic rules, passages and BM25, the queues a
grading worker consumes, and the chat task's route."""

from __future__ import annotations

import pytest

from services.worker.process import consumed_queues
from shared.celery_app import make_celery
from shared.chat.policy import builtin_blocked_words, chat_policy
from shared.chat.retrieval import bm25_scores, chunk_text, tokenize, top_matches
from shared.chat.wordfilter import WordFilter
from shared.settings import Settings
from shared.tasks import CHAT_QUEUE, CHAT_TASK


@pytest.mark.parametrize(("text", "start"), [
    ("作文里能写赌博吗", 5), ("能写赌 博吗", 2), ("能写赌，博吗", 2), ("ＡＢ测试词", 2), ("ab测 试词", 2),
    ("读书的意义", None), ("赌", None),
])
def test_the_filter_sees_through_spacing_punctuation_and_width(text: str, start: int | None) -> None:
    hit = WordFilter(["赌博", "测试词"]).first_hit(text)
    assert (hit.start if hit else None) == start


def test_the_earliest_of_several_words_is_reported() -> None:
    hit = WordFilter(["毒品", "赌博"]).first_hit("先说赌博再说毒品")
    assert (hit.word, hit.start) == ("赌博", 2)


def test_the_builtin_list_is_read_without_comments() -> None:
    words = builtin_blocked_words()
    assert "赌博" in words and not any(w.startswith("#") for w in words) and len(words) == len(set(words))


@pytest.mark.parametrize(("question", "off_topic"), [
    ("王者荣耀怎么上分", True), ("帮我写一篇800字作文", False), ("帮我写一篇检讨", True), ("推荐几只股票", True),
    ("作文里能写游戏经历吗", False), ("我的作文开头怎么改", False), ("今天天气怎么样", False),
])
def test_off_topic_needs_an_off_topic_pattern_and_no_study_word(question: str, off_topic: bool) -> None:
    assert chat_policy().is_off_topic(question) is off_topic


@pytest.mark.parametrize(("question", "topic"), [
    ("我的作文开头和结尾怎么改", "结构布局"), ("论据怎么选", "论证素材"), ("我为什么扣分", "分数评语"),
    ("你好", "其他"), ("审题立意有什么方法", "审题立意"),
])
def test_a_question_gets_the_topic_whose_words_it_uses_most(question: str, topic: str) -> None:
    assert chat_policy().topic_of(question) == topic


def test_passages_join_short_paragraphs_and_cut_long_ones_at_sentence_ends() -> None:
    long = "这是一句话。" * 80  # 480 characters
    chunks = chunk_text(f"第一段。\n\n第二段。\n{long}", size=300)
    assert chunks[0] == "第一段。\n第二段。"
    assert [len(c) for c in chunks[1:]] == [300, 180] and "".join(chunks[1:]) == long
    assert chunk_text("字" * 650, size=300) == ["字" * 300, "字" * 300, "字" * 50]


def test_bm25_ranks_the_passage_that_shares_the_rarer_words() -> None:
    docs = [tokenize(t) for t in ("议论文的开头要开门见山，提出论点。", "记叙文要写清楚时间、地点、人物。",
                                  "标点符号要用全角。", "议论文的论据要典型。")]
    assert top_matches(tokenize("议论文开头怎么开门见山"), docs, 2) == [0, 3]
    assert top_matches(tokenize("足球比赛"), docs, 2) == []
    scores = bm25_scores(["议论文"], docs)
    assert scores[3] > scores[0] > 0 == scores[1] == scores[2]  # the same term counts more in a shorter passage


def test_tokens_drop_punctuation_and_function_words() -> None:
    assert tokenize("我的作文，怎么写？") == ["作文", "写"]


def test_a_grading_worker_takes_chat_first() -> None:
    assert consumed_queues(["gpu"]) == [CHAT_QUEUE, "gpu"]
    assert consumed_queues(["gpu", "chat", "reports"]) == [CHAT_QUEUE, "gpu", "reports"]
    assert consumed_queues(["reports"]) == ["reports"]
    assert consumed_queues(["chat"]) == [CHAT_QUEUE]


def test_the_chat_task_routes_to_the_chat_queue() -> None:
    app = make_celery(Settings(broker_url="memory://"))
    assert app.amqp.router.route({}, CHAT_TASK)["queue"].name == CHAT_QUEUE
