"""The article document that the knowledge index stores."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from knowledge.text import Passage, html_blocks, passages_from_blocks

logger = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass
class ArticleDoc:
    """One knowledge article as indexed: plain text, passages, visibility and ranking priors.

    ``can_read`` and ``cannot_read`` hold the article's own user criteria
    sys_ids; the knowledge base's criteria are applied by the visibility
    filter through ``kb_sys_id``. ``helpful_ratio`` is the share of helpful
    votes in ``kb_feedback`` (None when the article has no votes) and ``attach_count`` the
    number of ``m2m_kb_task`` links.
    """

    sys_id: str
    number: str = ""
    title: str = ""
    body: str = ""
    meta: str = ""
    kb_sys_id: str = ""
    kb_title: str = ""
    category: str = ""
    updated_on: datetime = EPOCH
    can_read: list[str] = field(default_factory=list)
    cannot_read: list[str] = field(default_factory=list)
    helpful_ratio: float | None = None
    attach_count: int = 0
    passages: list[Passage] = field(default_factory=list)
    # The article's section headings, one per line; indexed as their own field
    # because a heading names the topic of the text below it.
    headings: str = ""

    @classmethod
    def from_html(cls, *, sys_id: str, title: str, html: str, **values: Any) -> "ArticleDoc":
        """Build a document from article HTML, deriving the body text and the passages."""
        blocks = html_blocks(html)
        return cls(
            sys_id=sys_id,
            title=title,
            body="\n".join(block.text for block in blocks),
            headings="\n".join(block.text for block in blocks if block.kind == "heading"),
            passages=passages_from_blocks(title, blocks),
            **values,
        )

    @classmethod
    def from_article(
        cls,
        article: Any,
        *,
        kb_title: str = "",
        helpful_ratio: float | None = None,
        attach_count: int = 0,
    ) -> "ArticleDoc":
        """Build a document from an ``integration.schemas.Article``.

        Wiki articles (``article_type`` "wiki") keep their body in ``wiki``;
        it is read as text, because Inward has no wiki-markup renderer.
        """
        html = article.wiki if getattr(article, "article_type", "text") == "wiki" else article.text
        return cls.from_html(
            sys_id=article.sys_id,
            title=article.short_description or "",
            html=html or "",
            number=article.number or "",
            meta=article.meta or "",
            kb_sys_id=article.kb_knowledge_base or "",
            kb_title=kb_title,
            category=article.kb_category or "",
            updated_on=article.sys_updated_on or EPOCH,
            can_read=list(article.can_read_user_criteria or []),
            cannot_read=list(article.cannot_read_user_criteria or []),
            helpful_ratio=helpful_ratio,
            attach_count=attach_count,
        )
