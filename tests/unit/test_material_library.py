"""The 素材 library: every entry complete and unique, bad files refused with the file and entry named, and the
jieba + BM25 retrieval ranking by the query's words within a theme."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from shared.chat.retrieval import bm25_scores
from shared.material_search import search, tokens
from shared.prompts.material_library import THEMES, LibraryError, Material, check_duplicates, load_library

GOOD = """\
theme: 人与自然
entries:
  - id: {id}
    kind: {kind}
    title: {title}
    text: "{text}"
    themes: [{themes}]
    summary: 一段简介。
    origin: 某书
    source: {source}
"""


def _write(directory: Path, name: str, **fields: str) -> None:
    values = {"id": "an-entry", "kind": "case", "title": "标题", "text": "", "themes": "人与自然", "source": "某出版社"}
    values.update(fields)
    (directory / name).write_text(GOOD.format(**values), encoding="utf-8")


def test_every_entry_has_a_theme_a_summary_and_a_source_and_none_repeats() -> None:
    library = load_library()
    assert len(library.entries) >= 150
    for entry in library.entries:
        assert entry.themes and set(entry.themes) <= set(THEMES), entry.id
        assert entry.summary.strip() and entry.source.strip() and entry.origin.strip(), entry.id
        assert entry.kind == "case" or entry.text.strip(), entry.id
    for field in ("id", "title"):
        counts = Counter(getattr(entry, field) for entry in library.entries)
        assert [value for value, n in counts.items() if n > 1] == [], field
    texts = Counter(entry.text for entry in library.entries if entry.text)
    assert [text for text, n in texts.items() if n > 1] == []
    assert check_duplicates((entry.id, entry) for entry in library.entries) == []
    per_theme = Counter(theme for entry in library.entries for theme in entry.themes)
    assert all(per_theme[theme] >= 15 for theme in THEMES), per_theme
    assert {entry.kind for entry in library.entries} == {"case", "quotation", "poem"}


def test_a_repeated_title_is_refused_naming_both_places(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", id="first")
    _write(tmp_path, "b.yaml", id="second", title="标 题。")  # the same title, punctuation and spaces aside
    with pytest.raises(LibraryError) as caught:
        load_library(tmp_path)
    assert "b.yaml 第 1 条" in str(caught.value) and "a.yaml 第 1 条" in str(caught.value)
    assert "标题" in str(caught.value)


@pytest.mark.parametrize(("fields", "problem"), [
    ({"source": "''"}, "source"),
    ({"themes": "环保"}, "unknown theme 环保"),
    ({"kind": "quotation"}, "needs its text"),
    ({"id": "Bad_Id"}, "lowercase"),
])
def test_an_incomplete_entry_is_refused_naming_the_file_and_entry(tmp_path: Path, fields: dict[str, str],
                                                                  problem: str) -> None:
    _write(tmp_path, "one.yaml", **fields)
    with pytest.raises(LibraryError) as caught:
        load_library(tmp_path)
    assert "one.yaml 第 1 条" in str(caught.value) and problem in str(caught.value)


def test_bm25_matches_a_hand_computed_score() -> None:
    documents = [["科技", "创新"], ["自然", "生态", "自然"], ["读书"]]
    scores = bm25_scores(["自然"], documents)
    average = 6 / 3
    idf = math.log((3 - 1 + 0.5) / (1 + 0.5) + 1)
    expected = idf * 2 * 2.5 / (2 + 1.5 * (1 - 0.75 + 0.75 * 3 / average))
    assert scores[0] == 0 and scores[2] == 0
    assert scores[1] == pytest.approx(expected)


def test_search_ranks_by_the_query_words_within_the_theme() -> None:
    entries = load_library().entries
    hits = search(entries, "人工智能 算法", themes=["科技与人文"], limit=3)
    assert hits[0].entry.id == "chatgpt-release" and hits[0].score > hits[1].score > 0
    assert all("科技与人文" in hit.entry.themes for hit in hits)
    animals = search(entries, "保护 野生 动物", themes=["人与自然"], limit=5)
    assert {"giant-panda-status", "crested-ibis"} <= {hit.entry.id for hit in animals}
    poems = search(entries, "", themes=["人与自然"], kinds=["poem"], limit=100)
    assert poems and all(hit.entry.kind == "poem" and hit.score == 0 for hit in poems)


def test_the_prompts_boilerplate_does_not_steer_retrieval() -> None:
    assert tokens("阅读下面的材料，根据要求写一篇不少于800字的文章。") == []


def test_a_school_entry_joins_the_search() -> None:
    own = Material(id="school-7", kind="case", title="校友回乡种树", themes=("人与自然",),
                   summary="校友退休后回乡植树造林。", origin="校史", source="校史馆")
    hits = search(load_library().with_school([own]), "校友 植树", themes=["人与自然"], limit=3)
    assert hits[0].entry.id == "school-7"


def test_training_plan_exercises_name_library_entries_with_their_sources(tmp_path: Path) -> None:
    from services.worker.plans.catalog import CATALOG_PATH, CatalogError, load_catalog

    catalog = load_catalog()
    named = [e for exercises in catalog.dimensions.values() for e in exercises if e.materials]
    assert [e.title for e in named] == ["素材积累与化用"]
    stored = named[0].filled("发展等级", "").as_json()
    library = load_library()
    assert [m["id"] for m in stored["materials"]] == list(named[0].materials)
    for material in stored["materials"]:
        entry = library.get(material["id"])
        assert material == {"id": entry.id, "title": entry.title, "origin": entry.origin, "source": entry.source}
    assert "materials" not in catalog.error_types["错别字"][0].as_json()
    broken = tmp_path / "exercises.yaml"
    broken.write_text(CATALOG_PATH.read_text(encoding="utf-8").replace("saihanba", "no-such-entry"), encoding="utf-8")
    with pytest.raises(CatalogError, match="素材积累与化用：no-such-entry"):
        load_catalog(broken)
