"""Tests for search snippets on the demo articles: marks on query words, whole words, no repeats."""

from __future__ import annotations

import html
import re

import pytest

from config import settings_for_tests
from knowledge.index import KnowledgeIndex
from knowledge.ranking import analyze
from tests.fixtures.demo_knowledge import demo_articles, demo_queries

MARK = re.compile(r"<mark>(.*?)</mark>")
QUERIES = [*demo_queries(), "battery health", "reset password"]


@pytest.fixture(scope="module")
def demo_index(tmp_path_factory):
    knowledge_index = KnowledgeIndex(tmp_path_factory.mktemp("snippets") / "index", settings=settings_for_tests())
    knowledge_index.upsert(demo_articles())
    yield knowledge_index
    knowledge_index.close()


@pytest.fixture(scope="module")
def bodies():
    return {article.sys_id: article.body for article in demo_articles()}


def plain(fragment: str) -> str:
    return html.unescape(MARK.sub(r"\1", fragment)).removeprefix("… ").removesuffix(" …").removesuffix("…")


def fragments(snippet: str) -> list[str]:
    return snippet.removeprefix("… ").removesuffix(" …").split(" … ")


@pytest.mark.parametrize("query", QUERIES)
def test_marks_only_query_words(demo_index, query):
    query_terms = set(analyze(demo_index.analyzer, query))
    hits = demo_index.search(query, limit=5)

    assert hits
    for hit in hits:
        for marked in MARK.findall(hit.snippet_html):
            assert set(analyze(demo_index.analyzer, html.unescape(marked))) <= query_terms, (hit.number, marked)


@pytest.mark.parametrize("query", QUERIES)
def test_fragments_are_whole_words_without_repeats(demo_index, bodies, query):
    for hit in demo_index.search(query, limit=5):
        body = bodies[hit.sys_id]
        positions = []
        for fragment in fragments(hit.snippet_html):
            start = body.find(plain(fragment))
            assert start >= 0, (hit.number, fragment)
            assert start == 0 or not body[start - 1].isalnum(), (hit.number, fragment)
            positions.append((start, start + len(plain(fragment))))
        first_start, last_end = positions[0][0], positions[-1][1]
        # An ellipsis shows where the snippet starts or ends inside a line.
        cut_at_start = first_start > 0 and body[first_start - 1] != "\n"
        cut_at_end = last_end < len(body) and body[last_end] != "\n"
        assert hit.snippet_html.startswith("… ") == cut_at_start, hit.snippet_html
        assert hit.snippet_html.endswith("…") == cut_at_end, hit.snippet_html
        for (_, first_end), (second_start, _) in zip(positions, positions[1:]):
            assert second_start >= first_end, (hit.number, hit.snippet_html)
