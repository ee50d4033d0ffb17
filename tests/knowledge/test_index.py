"""Tests for the Whoosh knowledge index on disk."""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timezone

import pytest
from whoosh import index as whoosh_index
from whoosh import query as wq

from config import settings_for_tests
from knowledge.documents import ArticleDoc
from knowledge.errors import IndexBusy
from knowledge.index import POINTER_FILE, KnowledgeIndex


def article(sys_id: str, title: str, html: str, **values) -> ArticleDoc:
    return ArticleDoc.from_html(sys_id=sys_id, title=title, html=html, **values)


VPN = article("a1", "Reset a VPN password", "<h2>Steps</h2><p>Open the portal and reset the VPN password.</p>",
              number="KB0000001", kb_sys_id="kb-it", kb_title="IT")
PRINTER = article("a2", "Printer paper jam", "<p>Open the tray and remove the jammed paper.</p>",
                  number="KB0000002", kb_sys_id="kb-it", kb_title="IT")
PAYROLL = article("a3", "Payroll calendar", "<p>Salaries are paid on the last business day.</p>",
                  number="KB0000003", kb_sys_id="kb-hr", kb_title="HR", can_read=["uc-hr"])


@pytest.fixture
def settings():
    return settings_for_tests(index={"lock_timeout": 0.3})


@pytest.fixture
def index(tmp_path, settings):
    knowledge_index = KnowledgeIndex(tmp_path / "index", settings=settings)
    knowledge_index.upsert([VPN, PRINTER, PAYROLL])
    yield knowledge_index
    knowledge_index.close()


def generation_dir(knowledge_index: KnowledgeIndex):
    return knowledge_index.root / knowledge_index.generation


def test_upsert_then_ids_count_get(index):
    assert index.ids() == {"a1", "a2", "a3"}
    assert index.count() == 3
    stored = index.get("a3")
    assert stored["title"] == "Payroll calendar"
    assert stored["kb"] == "kb-hr"
    assert stored["can_read"] == ["uc-hr"]
    assert stored["cannot_read"] == []
    assert stored["updated_on"].tzinfo is timezone.utc


def test_get_missing_returns_none(index):
    assert index.get("nope") is None
    assert index.passages("nope") == []


def test_upsert_replaces_by_sys_id(index):
    index.upsert([article("a2", "Printer toner", "<p>Replace the toner cartridge.</p>")])
    assert index.count() == 3
    assert index.get("a2")["title"] == "Printer toner"
    assert [hit.sys_id for hit in index.search("paper jam")] == []


def test_delete_removes_from_search_and_count(index):
    assert index.delete(["a1", "missing"]) == 1
    assert index.ids() == {"a2", "a3"}
    assert [hit.sys_id for hit in index.search("vpn password")] == []


def test_search_ranks_title_match_first(index):
    hits = index.search("How do I reset my VPN password?")
    assert hits[0].sys_id == "a1"
    assert hits[0].number == "KB0000001"
    assert hits[0].kb_title == "IT"


def test_search_without_terms_returns_nothing(index):
    assert index.search("what is the") == []


def test_passages_stored_with_headings(index):
    passages = index.passages("a1")
    assert [(passage.heading, passage.text) for passage in passages] == [
        ("Steps", "Open the portal and reset the VPN password.")
    ]


def test_can_read_anyone_marker_for_visibility(index):
    anyone = wq.Term("can_read", "__anyone__")
    assert index.count(anyone) == 2
    assert index.count(wq.Term("can_read", "uc-hr")) == 1


def test_filter_excludes_hidden_from_results_count_and_snippets(tmp_path, settings):
    knowledge_index = KnowledgeIndex(tmp_path / "index", settings=settings)
    visible = article("v", "Laptop battery", "<p>The laptop battery drains fast.</p>", kb_sys_id="kb-open")
    hidden = article("h", "Laptop battery recall", "<p>Confidential zebra recall of the laptop battery.</p>",
                     kb_sys_id="kb-secret")
    knowledge_index.upsert([visible, hidden])
    only_open = wq.Term("kb", "kb-open")

    hits = knowledge_index.search("laptop battery zebra recall", filter=only_open, explain=True)

    assert [hit.sys_id for hit in hits] == ["v"]
    assert knowledge_index.count(only_open) == 1
    assert "zebra" not in hits[0].snippet_html.lower()
    assert "recall" not in hits[0].snippet_html.lower()
    assert all("zebra" not in term for term in hits[0].explain["matched_terms"])
    knowledge_index.close()


def test_snippet_escapes_article_text(tmp_path, settings):
    knowledge_index = KnowledgeIndex(tmp_path / "index", settings=settings)
    html = "<p>Never paste &lt;script&gt;alert(1)&lt;/script&gt; into the printer form &amp; page.</p>"
    knowledge_index.upsert([article("x", "Printer form", html)])

    snippet = knowledge_index.search("printer form")[0].snippet_html

    assert "&lt;script&gt;" in snippet
    assert "<script>" not in snippet
    assert set(re.findall(r"<[^>]*>", snippet)) == {"<mark>", "</mark>"}
    assert "<mark>printer</mark>" in snippet
    knowledge_index.close()


def test_snippet_falls_back_to_body_start(tmp_path, settings):
    knowledge_index = KnowledgeIndex(tmp_path / "index", settings=settings)
    knowledge_index.upsert([article("x", "Keyboard", "<p>A &lt;b&gt; tag in text.</p>")])
    assert knowledge_index.search("keyboard")[0].snippet_html == "A &lt;b&gt; tag in text."
    knowledge_index.close()


def test_commit_visible_to_second_instance(tmp_path, settings):
    first = KnowledgeIndex(tmp_path / "index", settings=settings)
    second = KnowledgeIndex(tmp_path / "index", settings=settings)
    assert second.ids() == set()
    first.upsert([VPN])
    assert second.ids() == {"a1"}
    first.close()
    second.close()


def test_rebuild_switches_to_new_generation(index, tmp_path, settings):
    old_generation = index.generation
    index.rebuild([PRINTER])
    assert index.ids() == {"a2"}
    assert index.generation != old_generation
    assert not (index.root / old_generation).exists()
    reopened = KnowledgeIndex(tmp_path / "index", settings=settings)
    assert reopened.ids() == {"a2"}
    assert reopened.reset_reason is None
    reopened.close()


def test_rebuild_failure_keeps_old_index_serving(index):
    old_generation = index.generation

    def failing_docs():
        yield PRINTER
        raise RuntimeError("platform went away")

    with pytest.raises(RuntimeError):
        index.rebuild(failing_docs())

    assert index.generation == old_generation
    assert index.ids() == {"a1", "a2", "a3"}
    assert index.search("vpn password")[0].sys_id == "a1"
    generations = sorted(child.name for child in index.root.iterdir() if child.name.startswith("gen-"))
    assert generations == [old_generation]
    pointer = json.loads((index.root / POINTER_FILE).read_text())
    assert pointer["generation"] == old_generation


def test_rebuild_seen_by_other_instance(index, tmp_path, settings):
    other = KnowledgeIndex(tmp_path / "index", settings=settings)
    index.rebuild([PAYROLL])
    assert other.ids() == {"a3"}
    other.close()


def test_corrupt_toc_rebuilt_empty_with_warning(index, tmp_path, settings, caplog):
    directory = generation_dir(index)
    index.close()
    for toc in directory.glob("*.toc"):
        toc.write_bytes(b"garbage, not a table of contents")

    with caplog.at_level(logging.WARNING, logger="knowledge.index"):
        reopened = KnowledgeIndex(tmp_path / "index", settings=settings)

    assert reopened.ids() == set()
    assert "cannot be read" in reopened.reset_reason
    assert any("full sync is needed" in record.getMessage() for record in caplog.records)
    reopened.upsert([VPN])
    assert reopened.ids() == {"a1"}
    reopened.close()


def test_corrupt_segment_rebuilt_empty(index, tmp_path, settings):
    directory = generation_dir(index)
    index.close()
    segments = list(directory.glob("*.seg"))
    assert segments
    for segment in segments:
        segment.write_bytes(b"\x00garbage" * 64)

    reopened = KnowledgeIndex(tmp_path / "index", settings=settings)

    assert reopened.ids() == set()
    assert reopened.reset_reason is not None
    reopened.close()


def test_schema_version_mismatch_rebuilt_empty(index, tmp_path, caplog):
    index.close()
    with caplog.at_level(logging.WARNING, logger="knowledge.index"):
        reopened = KnowledgeIndex(tmp_path / "index", settings=settings_for_tests(index={"analyzer": "standard"}))
    assert reopened.ids() == set()
    assert "schema version" in reopened.reset_reason
    assert any("schema version" in record.getMessage() for record in caplog.records)
    reopened.close()


def test_fresh_index_has_no_reset_warning(tmp_path, settings, caplog):
    with caplog.at_level(logging.WARNING, logger="knowledge.index"):
        knowledge_index = KnowledgeIndex(tmp_path / "index", settings=settings)
    assert caplog.records == []
    assert knowledge_index.count() == 0
    knowledge_index.close()


def test_writer_lock_timeout_raises_index_busy(index):
    holder = whoosh_index.open_dir(str(generation_dir(index))).writer()
    try:
        with pytest.raises(IndexBusy) as caught:
            index.upsert([PRINTER])
        assert "locked by another writer" in str(caught.value)
        assert "index.lock_timeout" in str(caught.value)
        with pytest.raises(IndexBusy):
            index.delete(["a1"])
    finally:
        holder.cancel()
    assert index.delete(["a1"]) == 1


def test_updated_on_round_trips_as_utc(tmp_path, settings):
    knowledge_index = KnowledgeIndex(tmp_path / "index", settings=settings)
    updated = datetime(2026, 3, 1, 12, 30, tzinfo=timezone.utc)
    knowledge_index.upsert([article("d", "Dated", "<p>dated text</p>", updated_on=updated)])
    assert knowledge_index.get("d")["updated_on"] == updated
    assert knowledge_index.search("dated")[0].updated_on == updated
    knowledge_index.close()


def test_field_terms_lists_criteria(index):
    assert index.field_terms("can_read") == ["__anyone__", "uc-hr"]
    assert index.field_terms("kb") == ["kb-hr", "kb-it"]


def test_concurrent_searches_and_writes(index):
    import threading

    errors = []

    def search_many():
        try:
            for _ in range(20):
                assert index.search("vpn password")[0].sys_id == "a1"
                assert index.count() >= 3
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=search_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for number in range(5):
        index.upsert([article(f"extra{number}", "Monitor flicker", "<p>Check the monitor cable.</p>")])
    for thread in threads:
        thread.join()
    assert errors == []
    assert index.count() == 8


LONG_ARTICLE = article(
    "guide", "Office guide",
    "<h2>Parking</h2><p>" + "Visitors park in the north lot near the gate. " * 8 + "</p>"
    "<h2>Wi-Fi</h2><p>" + "The guest Wi-Fi password is printed at reception. " * 8 + "</p>",
    kb_sys_id="kb-open",
)


def test_search_passages_ranks_matching_section_first(tmp_path, settings):
    knowledge_index = KnowledgeIndex(tmp_path / "index", settings=settings)
    knowledge_index.upsert([LONG_ARTICLE])

    hits = knowledge_index.search_passages("What is the guest Wi-Fi password?", limit=2)

    assert [(hit.sys_id, hit.heading) for hit in hits] == [("guide", "Wi-Fi"), ("guide", "Parking")]
    assert "password" in hits[0].text
    assert hits[0].score > hits[1].score
    assert hits[1].score == 0.0
    knowledge_index.close()


def test_search_passages_respects_filter(tmp_path, settings):
    knowledge_index = KnowledgeIndex(tmp_path / "index", settings=settings)
    secret = article("secret", "Secret Wi-Fi", "<p>The staff Wi-Fi password is zebra.</p>", kb_sys_id="kb-secret")
    knowledge_index.upsert([LONG_ARTICLE, secret])

    hits = knowledge_index.search_passages("Wi-Fi password", filter=wq.Term("kb", "kb-open"))

    assert {hit.sys_id for hit in hits} == {"guide"}
    assert all("zebra" not in hit.text for hit in hits)
    knowledge_index.close()


def test_search_passages_without_terms(index):
    assert index.search_passages("what is the") == []


def test_upsert_follows_rebuild_by_other_instance(index, tmp_path, settings):
    other = KnowledgeIndex(tmp_path / "index", settings=settings)
    other.rebuild([PAYROLL])
    index.upsert([PRINTER])
    assert index.generation == other.generation
    assert other.ids() == {"a2", "a3"}
    other.close()


def test_garbage_pointer_file_rebuilt_empty(index, tmp_path, settings):
    index.close()
    (tmp_path / "index" / POINTER_FILE).write_bytes(b"\xff\x00 not json")
    reopened = KnowledgeIndex(tmp_path / "index", settings=settings)
    assert reopened.ids() == set()
    assert "unreadable pointer file" in reopened.reset_reason
    reopened.close()
