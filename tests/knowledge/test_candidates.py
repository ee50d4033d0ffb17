"""Tests for the candidate stage of search: the bm25s snapshot, dirty articles and visibility."""

from __future__ import annotations

import pytest
from whoosh import query as wq

from config import settings_for_tests
from knowledge.candidates import build_snapshot
from knowledge.documents import ArticleDoc
from knowledge.index import KnowledgeIndex
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
