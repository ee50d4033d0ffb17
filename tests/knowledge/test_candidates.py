"""Tests for the candidate stage of search: the BM25 snapshot, dirty articles and visibility."""

from __future__ import annotations

import logging
import platform
import random

import bm25s
import numpy as np
import pytest
from whoosh import query as wq

from config import settings_for_tests
from knowledge.candidates import _malloc_trim, build_snapshot, release_free_heap
from knowledge.documents import ArticleDoc
from knowledge.index import KnowledgeIndex
from knowledge.ranking import WeightedTerm
from knowledge.visibility import AgentAccess, build_filter

# Long enough that no background rebuild runs during a test.
NO_REBUILD = 3600.0


def article(sys_id: str, title: str, body: str, **values) -> ArticleDoc:
    return ArticleDoc.from_html(sys_id=sys_id, title=title, html=f"<p>{body}</p>", **values)


def printer_articles(count: int, prefix: str, repeats: int, **values) -> list[ArticleDoc]:
    """Return articles about printers; more ``repeats`` of the query words rank an article higher."""
    body = " ".join(["printer toner"] * repeats) + " and other office equipment notes"
    return [article(f"{prefix}{number:02d}", f"Printer note {number}", body, **values) for number in range(count)]


def access(readable_bases=("kb-it",), granted=(), denied=(), deny_all_restricted=False) -> AgentAccess:
    return AgentAccess(readable_bases=frozenset(readable_bases), granted=frozenset(granted),
                       denied=frozenset(denied), expires_at=0.0, deny_all_restricted=deny_all_restricted)


@pytest.fixture
def make_index(tmp_path):
    opened = []

    def make(candidates: int, docs: list[ArticleDoc]) -> KnowledgeIndex:
        settings = settings_for_tests(ranking={"candidates": candidates},
                                      index={"candidate_rebuild_delay": NO_REBUILD})
        knowledge_index = KnowledgeIndex(tmp_path / f"index-{len(opened)}", settings=settings)
        opened.append(knowledge_index)
        knowledge_index.rebuild(docs)
        return knowledge_index

    yield make
    for knowledge_index in opened:
        knowledge_index.close()


def test_empty_rebuild_logged_at_debug(tmp_path, caplog):
    settings = settings_for_tests(index={"candidate_rebuild_delay": NO_REBUILD})

    with caplog.at_level(logging.DEBUG, logger="knowledge.candidates"):
        knowledge_index = KnowledgeIndex(tmp_path / "index", settings=settings)
        try:
            knowledge_index.ids()
            assert knowledge_index.wait_for_candidates(10)
            knowledge_index.rebuild([article("kb1", "Printer jam", "Open the tray.")])
        finally:
            knowledge_index.close()
    rebuilds = [record for record in caplog.records if record.getMessage().startswith("Rebuilt the candidate")]

    empty_levels = [record.levelno for record in rebuilds if "with 0 articles" in record.getMessage()]
    assert empty_levels
    assert set(empty_levels) == {logging.DEBUG}
    assert [record.levelno for record in rebuilds if "with 1 articles" in record.getMessage()] == [logging.INFO]


def hit_ids(knowledge_index: KnowledgeIndex, text: str, **options) -> list[str]:
    return [hit.sys_id for hit in knowledge_index.search(text, **options)]


def test_candidate_stage_limits_reranked_articles(make_index):
    knowledge_index = make_index(3, printer_articles(10, "p", repeats=2))

    assert len(hit_ids(knowledge_index, "printer toner", limit=2)) == 2
    assert len(hit_ids(knowledge_index, "printer toner", limit=3)) == 3
    # limit raises the candidate count, so a larger page is still full.
    assert len(hit_ids(knowledge_index, "printer toner", limit=8)) == 8


def test_upserted_article_found_before_snapshot_rebuild(make_index):
    knowledge_index = make_index(2, printer_articles(10, "p", repeats=3))

    knowledge_index.upsert([article("new", "Stapler", "The stapler jams on thick paper.")])

    assert not knowledge_index.wait_for_candidates(timeout=0)
    assert hit_ids(knowledge_index, "stapler jams", limit=2) == ["new"]


def test_changed_article_found_by_new_words(make_index):
    knowledge_index = make_index(2, printer_articles(10, "p", repeats=3))

    knowledge_index.upsert([article("p05", "Scanner driver", "Install the scanner driver from the portal.")])

    assert hit_ids(knowledge_index, "scanner driver", limit=2) == ["p05"]


def test_deleted_article_never_returned(make_index):
    knowledge_index = make_index(3, printer_articles(5, "p", repeats=2))

    knowledge_index.delete(["p00", "p01", "p02"])

    assert not knowledge_index.wait_for_candidates(timeout=0)
    found = hit_ids(knowledge_index, "printer toner", limit=5)
    assert found == ["p03", "p04"] or found == ["p04", "p03"]


def test_snapshot_rebuild_clears_dirty_articles(make_index):
    knowledge_index = make_index(2, printer_articles(4, "p", repeats=2))
    knowledge_index.upsert([article("new", "Stapler", "The stapler jams on thick paper.")])

    knowledge_index._candidates.rebuild_now()

    assert knowledge_index.wait_for_candidates(timeout=1)
    assert hit_ids(knowledge_index, "stapler", limit=2) == ["new"]


def test_restricted_agent_gets_full_page(make_index):
    hidden = printer_articles(20, "h", repeats=6, kb_sys_id="kb-hr", can_read=["uc-hr"])
    visible = printer_articles(8, "v", repeats=1, kb_sys_id="kb-it")
    knowledge_index = make_index(5, hidden + visible)
    agent_filter = build_filter(access(readable_bases=("kb-it", "kb-hr")))

    found = hit_ids(knowledge_index, "printer toner", filter=agent_filter, limit=5)

    assert len(found) == 5
    assert all(sys_id.startswith("v") for sys_id in found)


def test_hidden_articles_never_returned(make_index):
    hidden = printer_articles(6, "h", repeats=6, kb_sys_id="kb-it", cannot_read=["uc-contractors"])
    visible = printer_articles(3, "v", repeats=1, kb_sys_id="kb-it")
    knowledge_index = make_index(4, hidden + visible)
    agent_filter = build_filter(access(denied=("uc-contractors",)))

    found = hit_ids(knowledge_index, "printer toner", filter=agent_filter, limit=10)
    passages = knowledge_index.search_passages("printer toner", filter=agent_filter, limit=10)

    assert sorted(found) == ["v00", "v01", "v02"]
    assert {passage.sys_id for passage in passages} <= {"v00", "v01", "v02"}


def test_hidden_dirty_article_never_returned(make_index):
    knowledge_index = make_index(2, printer_articles(3, "v", repeats=1, kb_sys_id="kb-it"))
    knowledge_index.upsert([article("secret", "Stapler", "Stapler notes.", kb_sys_id="kb-hr")])
    agent_filter = build_filter(access())

    assert hit_ids(knowledge_index, "stapler", filter=agent_filter) == []
    assert hit_ids(knowledge_index, "stapler") == ["secret"]


ACCESS_CASES = [
    access(),
    access(readable_bases=("kb-it", "kb-hr")),
    access(readable_bases=("kb-it", "kb-hr"), granted=("uc-hr",)),
    access(readable_bases=("kb-it", "kb-hr"), denied=("uc-contractors",)),
    access(readable_bases=("kb-it", "kb-hr"), deny_all_restricted=True),
]


@pytest.mark.parametrize("agent_access", ACCESS_CASES)
def test_snapshot_mask_matches_whoosh_filter(make_index, agent_access):
    docs = [
        article("open-it", "Printer", "printer", kb_sys_id="kb-it"),
        article("open-hr", "Printer", "printer", kb_sys_id="kb-hr"),
        article("hr-only", "Printer", "printer", kb_sys_id="kb-hr", can_read=["uc-hr"]),
        article("no-contractors", "Printer", "printer", kb_sys_id="kb-it", cannot_read=["uc-contractors"]),
        article("no-interns", "Printer", "printer", kb_sys_id="kb-hr", cannot_read=["uc-interns"]),
    ]
    knowledge_index = make_index(10, docs)
    agent_filter = build_filter(agent_access)
    stored = [knowledge_index.get(doc.sys_id) | {"sys_id": doc.sys_id} for doc in docs]
    snapshot = build_snapshot([_as_stored(fields) for fields in stored], str.split)

    mask = snapshot.visibility_mask(agent_filter)
    allowed_by_mask = {sys_id for sys_id, weight in zip(snapshot.sys_ids, mask) if weight}
    allowed_by_whoosh = set(hit_ids(knowledge_index, "printer", limit=10, filter=agent_filter))

    assert allowed_by_mask == allowed_by_whoosh


def _as_stored(fields: dict) -> dict:
    """Turn ``KnowledgeIndex.get`` output back into stored field values."""
    return {
        "sys_id": fields["sys_id"],
        "title": fields["title"],
        "body": fields["body"],
        "kb": fields["kb"],
        "can_read": ",".join(fields["can_read"]),
        "cannot_read": ",".join(fields["cannot_read"]),
    }


def test_agent_without_bases_finds_nothing(make_index):
    knowledge_index = make_index(2, printer_articles(3, "v", repeats=1, kb_sys_id="kb-it"))

    assert hit_ids(knowledge_index, "printer", filter=build_filter(access(readable_bases=()))) == []


def test_snapshot_without_visibility_filter_uses_no_mask():
    snapshot = build_snapshot([{"sys_id": "a", "body": "printer"}], str.split)

    assert snapshot.visibility_mask(wq.Term("kb", "kb-it")) is None
    assert snapshot.top([], 5, None) == []


# -- the score matrix against bm25s ----------------------------------------------

WORDS = ("printer toner driver scanner portal vpn password reset account laptop dock monitor "
         "cable network wifi badge door email outlook calendar invoice expense travel policy "
         "ticket incident change request approval license server backup restore").split()


def varied_documents(count: int, seed: int) -> list[dict]:
    """Return stored documents with analyzed terms of very different lengths, repeats and visibility."""
    rng = random.Random(seed)
    documents = []
    for number in range(count):
        vocabulary = WORDS[:rng.randint(3, len(WORDS))]
        documents.append({
            "sys_id": f"d{number:02d}",
            "title": " ".join(rng.choices(vocabulary, k=rng.randint(0, 6))),
            "meta": " ".join(rng.choices(vocabulary, k=rng.randint(0, 3))),
            "body": " ".join(rng.choices(vocabulary, k=rng.choice([0, 2, 15, 60, 200]))),
            "kb": rng.choice(["kb-it", "kb-it", "kb-hr"]),
            "can_read": rng.choice(["", "", "uc-hr"]),
            "cannot_read": rng.choice(["", "", "", "uc-contractors"]),
        })
    # A document without terms, and two with the same terms, so equal scores occur.
    documents.append({"sys_id": "empty", "title": "", "body": "", "kb": "kb-it"})
    documents.append({"sys_id": "twin-a", "title": "printer", "body": "printer toner toner", "kb": "kb-it"})
    documents.append({"sys_id": "twin-b", "title": "printer", "body": "printer toner toner", "kb": "kb-it"})
    return documents


def bm25s_model(documents: list[dict]) -> bm25s.BM25:
    corpus = ["\n".join(stored.get(name) or "" for name in ("title", "meta", "body")).split()
              for stored in documents]
    model = bm25s.BM25()
    model.index(corpus, show_progress=False)
    return model


def bm25s_scores(model: bm25s.BM25, terms: list[WeightedTerm], mask, count: int) -> np.ndarray:
    """Return the weighted row scores the candidate stage computed with a bm25s model."""
    scores = np.zeros(count, dtype=np.float32)
    for term in terms:
        if term.text in model.vocab_dict:
            scores += term.weight * model.get_scores([term.text], weight_mask=mask)
    return scores


def ranked_rows(scores: np.ndarray, count: int) -> list[int]:
    """Return the ``count`` best rows as the bm25s-based ``Snapshot.top`` picked them."""
    matching = np.flatnonzero(scores > 0)
    if len(matching) > count:
        best = np.argpartition(-scores[matching], count - 1)[:count]
        matching = matching[best]
    return matching[np.argsort(-scores[matching], kind="stable")].tolist()


def test_snapshot_term_scores_equal_bm25s():
    documents = varied_documents(40, seed=5)
    snapshot = build_snapshot(documents, str.split)
    model = bm25s_model(documents)

    for term in WORDS:
        expected = model.get_scores([term])
        found = snapshot.scores([WeightedTerm(term)], None)
        np.testing.assert_array_equal(found, expected, err_msg=f"scores of {term!r}")


@pytest.mark.parametrize("agent_access", [None, access(), access(readable_bases=("kb-it", "kb-hr"),
                                                                 denied=("uc-contractors",))])
def test_snapshot_top_matches_bm25s(agent_access):
    documents = varied_documents(40, seed=11)
    snapshot = build_snapshot(documents, str.split)
    model = bm25s_model(documents)
    mask = None if agent_access is None else snapshot.visibility_mask(build_filter(agent_access))
    terms = [WeightedTerm("printer"), WeightedTerm("toner", 0.5), WeightedTerm("vpn", 2.0),
             WeightedTerm("restore", 0.25, in_text=False), WeightedTerm("not-indexed", 3.0)]

    found = snapshot.scores(terms, mask)
    expected = bm25s_scores(model, terms, mask, len(documents))

    np.testing.assert_allclose(found, expected, rtol=0, atol=1e-6)
    for count in (1, 5, 12, len(documents)):
        expected_ids = [documents[row]["sys_id"] for row in ranked_rows(expected, count)]
        assert snapshot.top(terms, count, mask) == expected_ids, f"top {count}"


def test_snapshot_top_keeps_row_order_on_ties():
    documents = varied_documents(40, seed=11)
    snapshot = build_snapshot(documents, str.split)

    found = snapshot.top([WeightedTerm("printer"), WeightedTerm("toner")], len(documents), None)

    assert found.index("twin-a") + 1 == found.index("twin-b")


def test_snapshot_hides_masked_rows():
    documents = varied_documents(40, seed=11)
    snapshot = build_snapshot(documents, str.split)
    mask = snapshot.visibility_mask(build_filter(access()))
    hidden = {stored["sys_id"] for stored in documents if stored["kb"] != "kb-it" or stored.get("can_read")}

    found = snapshot.top([WeightedTerm(word) for word in WORDS], len(documents), mask)

    assert hidden
    assert found
    assert not hidden & set(found)


def test_empty_snapshot_finds_nothing():
    snapshot = build_snapshot([], str.split)

    assert snapshot.top([WeightedTerm("printer")], 5, None) == []
    assert len(snapshot.scores([WeightedTerm("printer")], None)) == 0
    assert len(snapshot.visibility_mask(build_filter(access()))) == 0


def test_snapshot_of_documents_without_terms():
    snapshot = build_snapshot([{"sys_id": "a", "body": ""}, {"sys_id": "b", "title": " "}], str.split)

    assert snapshot.top([WeightedTerm("printer")], 5, None) == []
    assert snapshot.matrix.vocab == {}


def test_term_missing_from_vocabulary_adds_nothing():
    documents = varied_documents(40, seed=5)
    snapshot = build_snapshot(documents, str.split)
    known = [WeightedTerm("printer"), WeightedTerm("vpn", 0.5)]

    assert snapshot.top([WeightedTerm("not-indexed")], 10, None) == []
    assert snapshot.top([WeightedTerm("")], 10, None) == []
    assert snapshot.top(known + [WeightedTerm("not-indexed", 4.0)], 10, None) == snapshot.top(known, 10, None)


def test_snapshot_tokenizes_with_given_function():
    documents = [{"sys_id": "a", "title": "Printer", "body": "TONER low"}, {"sys_id": "b", "body": "toner"}]

    snapshot = build_snapshot(documents, lambda text: text.lower().split())

    assert snapshot.top([WeightedTerm("printer")], 5, None) == ["a"]
    assert sorted(snapshot.top([WeightedTerm("toner")], 5, None)) == ["a", "b"]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim exists only in glibc")
def test_release_free_heap_finds_malloc_trim():
    assert _malloc_trim() is not None
    release_free_heap()
