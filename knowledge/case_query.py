"""Build a knowledge search query from a case or incident.

The short description is the query text (weight 1.0). Words of the
description and the latest customer comment are added at lower weights,
and the category and product as small boosts. Each weight is a
``ranking.*`` setting. Boilerplate is removed first: email quoting and
forwarded headers, signatures and closings, greetings, thanks, ticket
numbers, URLs and email addresses.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from knowledge.text import ENGLISH_STOP_WORDS

logger = logging.getLogger(__name__)

# Long descriptions are cut to their first distinct words, because every
# extra term adds four clauses (one per field) to the search.
MAX_SECONDARY_TERMS = 20

SYS_ID = re.compile(r"^[0-9a-f]{32}$")
# A line from which the rest of the text is quoted or signed: stop reading there.
_CUT_LINE = re.compile(
    r"^\s*(?:--\s*$|-{2,}\s*original message\s*-{2,}|on .{3,80} wrote:\s*$|from:\s|sent from my\b|"
    r"(?:thanks|thank you|many thanks|regards|best regards|kind regards|best|cheers|sincerely)[\s,.!]*$)",
    re.IGNORECASE,
)
_QUOTED_LINE = re.compile(r"^\s*>")
_GREETING = re.compile(
    r"^\s*(?:hi|hello|hey|dear|good (?:morning|afternoon|evening)|greetings)\b[^,.!\n]{0,40}[,.!:]?\s*",
    re.IGNORECASE,
)
_POLITE_PHRASES = re.compile(
    r"\b(?:thanks(?: a lot| in advance)?|thank you(?: (?:very much|in advance|for your help))?|"
    r"please (?:help|advise|assist)|asap|urgent(?:ly)?|kindly|appreciate(?:d)? (?:it|your help))\b[!.,]*",
    re.IGNORECASE,
)
_TICKET_NOISE = re.compile(
    r"\[(?:external|ext|secure)\]|\b(?:re|fw|fwd):|\b(?:INC|CS|RITM|REQ|CHG|PRB|TASK|KB)\d{5,}\b|"
    r"ref:_\S+:ref|https?://\S+|\b[\w.+-]+@[\w-]+\.[\w.-]+\b|\b(?:case|ticket|incident)\s*#\s*\d+",
    re.IGNORECASE,
)
_WORD = re.compile(r"\w+(?:\.\w+)*")


@dataclass
class CaseQuery:
    """A weighted search query built from a case: text plus word weights for ``KnowledgeIndex.search``."""

    text: str
    boosts: dict[str, float] = field(default_factory=dict)

    def search_kwargs(self) -> dict[str, Any]:
        """Return the ``query_text`` and ``boosts`` arguments for ``KnowledgeIndex.search``."""
        return {"query_text": self.text, "boosts": dict(self.boosts)}

    def is_empty(self) -> bool:
        """Return True when the case had no searchable words at all."""
        return not self.text.strip() and not self.boosts


def strip_boilerplate(text: str | None) -> str:
    """Remove email quoting, signatures, greetings, thanks and ticket noise from case text."""
    kept = []
    for line in (text or "").splitlines():
        if _CUT_LINE.match(line):
            break
        if _QUOTED_LINE.match(line):
            continue
        line = _GREETING.sub("", line) if not kept else line
        line = _POLITE_PHRASES.sub(" ", _TICKET_NOISE.sub(" ", line))
        if line.strip():
            kept.append(" ".join(line.split()))
    return "\n".join(kept)


def content_words(text: str) -> list[str]:
    """Return the distinct lower-cased words of ``text`` that are not stop words, in order."""
    words = [word.lower() for word in _WORD.findall(text)]
    return list(dict.fromkeys(word for word in words if word not in ENGLISH_STOP_WORDS))


# Words that customers use in descriptions and comments to tell the story,
# not to name the problem; dropped from those two sources only.
FILLER_WORDS = frozenset("""
also even though although still just really barely actually already anything something everything
nothing anyone someone everyone yet ever maybe perhaps quite rather pretty almost sometimes lately
""".split())


def _is_filler(word: str) -> bool:
    """Return whether a description or comment word is filler: a word above or a bare number."""
    return word in FILLER_WORDS or word.isdigit()


def build_case_query(case: Any, ranking: Any = None) -> CaseQuery:
    """Build the weighted query for a case (an ``integration.schemas.Case`` or alike).

    ``ranking`` is the ``ranking`` settings section; None uses the defaults.
    """
    if ranking is None:
        from config import settings_for_tests

        ranking = settings_for_tests().ranking
    text = strip_boilerplate(getattr(case, "short_description", ""))
    primary = set(content_words(text))
    boosts: dict[str, float] = {}
    secondary = [
        (getattr(case, "description", ""), ranking.description_weight),
        (getattr(case, "latest_comment", ""), ranking.comment_weight),
    ]
    for source, weight in secondary:
        words = [word for word in content_words(strip_boilerplate(source))
                 if word not in primary and not _is_filler(word)]
        words = words[:MAX_SECONDARY_TERMS]
        # Each source's words together weigh at most `weight` times the short
        # description's words, so a long description cannot outvote the title.
        share = weight * min(1.0, max(1, len(primary)) / max(1, len(words)))
        for word in words:
            boosts[word] = max(boosts.get(word, 0.0), share)
    for attribute, weight in (("category", ranking.category_weight), ("subcategory", ranking.category_weight),
                              ("product", ranking.product_weight)):
        for word in _label_words(getattr(case, attribute, "")):
            if word not in primary:
                boosts[word] = max(boosts.get(word, 0.0), weight)
    return CaseQuery(text=text, boosts={word: weight for word, weight in boosts.items() if weight > 0})


def _label_words(value: Any) -> list[str]:
    """Return the words of a category or product label; a bare sys_id carries none."""
    if not isinstance(value, str) or SYS_ID.match(value.strip()):
        return []
    return content_words(value.replace("_", " "))
