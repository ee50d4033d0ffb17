"""Tests for the second search stage: scores from stored terms equal Whoosh's scores."""

from __future__ import annotations

import pytest

from config import settings_for_tests
from knowledge.index import KnowledgeIndex
from knowledge.ranking import plan_query, query_terms
from knowledge.rescoring import TextScorer, _near
from tests.fixtures.demo_knowledge import demo_articles, demo_queries

# Proximity in two fields and a term cap, so every part of the score is exercised.
RANKING = {"proximity_fields": ["title", "body"], "max_query_terms": 6, "proximity_max_pairs": 4,
           "meta_weight": 0.4, "headings_weight": 0.2}


@pytest.fixture(scope="module")
def demo_index(tmp_path_factory):
    settings = settings_for_tests(ranking=RANKING)
    knowledge_index = KnowledgeIndex(tmp_path_factory.mktemp("rescoring") / "index", settings=settings)
    articles = demo_articles()
    # Two commits, so the searcher spans two segments.
    knowledge_index.upsert(articles[:30])
    knowledge_index.upsert(articles[30:])
    yield knowledge_index
    knowledge_index.close()


def test_demo_index_has_several_segments(demo_index):
    searcher = demo_index._searcher()
    assert len(searcher.leaf_searchers()) >= 2


@pytest.mark.parametrize("query", demo_queries())
def test_scores_from_stored_terms_equal_whoosh_scores(demo_index, query):
    ranking = demo_index.settings.ranking
    terms = query_terms(query, demo_index.analyzer)
    searcher = demo_index._searcher()
    plan = plan_query(terms, ranking, idf={term.text: searcher.idf("body", term.text) for term in terms})
    scorer = TextScorer(searcher, plan, b=ranking.bm25_b, k1=ranking.bm25_k1)

    whoosh_scores = {hit.docnum: hit.score for hit in searcher.search(plan.combined(), limit=None)}
    ours = {}
    for leaf, offset in searcher.leaf_searchers():
        for docnum in range(leaf.doc_count_all()):
            score = scorer.score(leaf, docnum, leaf.stored_fields(docnum)).total
            if score > 0:
                ours[offset + docnum] = score

    assert whoosh_scores, f"no demo article matches {query!r}"
    assert set(ours) == set(whoosh_scores)
    for docnum, score in whoosh_scores.items():
        assert ours[docnum] == pytest.approx(score, rel=1e-9)


def test_proximity_needs_near_ordered_pair(demo_index):
    searcher = demo_index._searcher()
    ranking = demo_index.settings.ranking
    terms = query_terms("paper jam", demo_index.analyzer)
    plan = plan_query(terms, ranking)
    scorer = TextScorer(searcher, plan, b=ranking.bm25_b, k1=ranking.bm25_k1)

    near = scorer.score(searcher, 0, {"body": "paper jam tray"})
    within_slop = scorer.score(searcher, 0, {"body": "paper tray jam"})
    reversed_order = scorer.score(searcher, 0, {"body": "jam tray paper"})
    too_far = scorer.score(searcher, 0, {"body": "paper tray roller jam"})

    assert near.proximity > 0
    assert within_slop.proximity > 0
    assert reversed_order.proximity == 0
    assert too_far.proximity == 0
    assert reversed_order.total > 0


@pytest.mark.parametrize(("first", "second", "slop", "expected"), [
    ([3], [4], 1, True),
    ([3], [3], 2, False),
    ([3], [6], 2, False),
    ([1, 9], [11], 2, True),
    ([5], [1, 2], 2, False),
])
def test_near(first, second, slop, expected):
    assert _near(first, second, slop) is expected
