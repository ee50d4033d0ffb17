"""Tests for building index documents from platform articles."""

from __future__ import annotations

from datetime import datetime, timezone

from integration.schemas import Article
from knowledge.documents import EPOCH, ArticleDoc


def make_article(**values) -> Article:
    defaults = dict(
        sys_id="a1", number="KB0010001", short_description="Reset a VPN password",
        text="<h2>Steps</h2><p>Open the portal &amp; reset.</p><script>x()</script>",
        meta="vpn, password", kb_knowledge_base="kb1", kb_category="cat1", workflow_state="published",
        active=True, valid_to=None, sys_updated_on=datetime(2026, 5, 1, tzinfo=timezone.utc),
        can_read_user_criteria=["uc1"], cannot_read_user_criteria=["uc2"],
    )
    defaults.update(values)
    return Article(**defaults)


def test_from_article_maps_fields():
    doc = ArticleDoc.from_article(make_article(), kb_title="IT", helpful_ratio=0.75, attach_count=3)
    assert (doc.sys_id, doc.number, doc.title) == ("a1", "KB0010001", "Reset a VPN password")
    assert doc.body == "Steps\nOpen the portal & reset."
    assert doc.headings == "Steps"
    assert (doc.kb_sys_id, doc.kb_title, doc.category, doc.meta) == ("kb1", "IT", "cat1", "vpn, password")
    assert (doc.can_read, doc.cannot_read) == (["uc1"], ["uc2"])
    assert (doc.helpful_ratio, doc.attach_count) == (0.75, 3)
    assert [(passage.heading, passage.text) for passage in doc.passages] == [("Steps", "Open the portal & reset.")]


def test_from_article_reads_wiki_body():
    doc = ArticleDoc.from_article(make_article(article_type="wiki", text="", wiki="Wiki body text"))
    assert doc.body == "Wiki body text"


def test_from_article_without_update_time():
    assert ArticleDoc.from_article(make_article(sys_updated_on=None)).updated_on == EPOCH
