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


# A small hand-made set: passages of a 讲义 and questions a student would ask, each with the passage that answers it.
HANDOUT = [
    "审题立意：材料作文先找出材料的核心概念和关系，立意要紧扣材料，不能脱离材料另起炉灶。",
    "开头的写法：开门见山直接亮出中心论点；也可以引用名言、设问或描写场景引出论点，但不宜铺垫过长。",
    "分论点要并列或层进，每段开头用一句话概括分论点，段内再用事例和道理论证。",
    "论据的选择：事例要真实典型，最好新颖，避免人人都用的司马迁、爱迪生；道理论据引用要准确。",
    "结尾要呼应开头，总结全文并升华主题，可以联系现实、发出号召，切忌草草收尾或另起新意。",
    "标点符号：中文用全角标点，引号用“”，省略号用六个点……，书名用书名号《》。",
    "常见错别字：“再接再励”应为“再接再厉”，“迫不及待”不写作“迫不急待”，“眼睛”不写作“眼晴”。",
    "语言表达：多用短句，恰当运用比喻、排比、对偶等修辞，避免口语化和空洞的套话。",
]
QUESTIONS = [
    ("材料作文怎么立意才不跑题？", 0), ("作文开头可以怎么写？", 1), ("分论点怎么安排？", 2),
    ("论据选什么事例好？", 3), ("结尾怎么写才能升华主题？", 4), ("引号和省略号怎么用？", 5),
    ("我老把眼睛写成眼晴，还有哪些常见错别字？", 6), ("怎样让语言表达更有文采，用哪些修辞？", 7),
]


def test_bm25_over_jieba_finds_the_answering_passage_of_the_hand_made_set() -> None:
    passages = [tokenize(text) for text in HANDOUT]
    top1 = [top_matches(tokenize(question), passages, 1) for question, _ in QUESTIONS]
    assert top1 == [[expected] for _, expected in QUESTIONS]
