"""The second search stage: score candidate articles from their stored terms.

Whoosh scores a query by walking posting-list matchers in Python. Even
restricted to 50 candidates, its term and phrase matchers cost 52 to 70 ms
per query at p95 with 10,000 articles in ``benchmarks/search_speed.py``,
mostly in decoding posting blocks. Each article stores the analyzed terms of its title, meta, headings and body
(space-separated, in index order), so this module computes the same score
from those terms directly:

- for each weighted field and scored term, ``field weight * term weight *
  bm25(idf, tf, field length, average field length)``, with Whoosh's own
  ``bm25`` function, idf and average field length, and the field length
  Whoosh stores for the document;
- for each proximity pair and proximity field where the second term
  follows the first within ``slop`` positions, ``pair boost * (bm25 of the
  first + bm25 of the second)``, which is how Whoosh scores an ordered
  ``SpanNear2`` match.

A test compares these scores with Whoosh's for the same plan.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

from whoosh.scoring import bm25

from knowledge.ranking import QueryPlan


@dataclass
class TextScore:
    """The text score of one article and its parts."""

    total: float
    per_field: dict[str, float]
    proximity: float
    # "field:term" for every query term the article contains in a scored field.
    matched: list[str] = field(default_factory=list)


class TextScorer:
    """Score stored articles for one query plan against one searcher's statistics."""

    def __init__(self, searcher: Any, plan: QueryPlan, *, b: float, k1: float) -> None:
        self.searcher = searcher
        self.plan = plan
        self.b = b
        self.k1 = k1
        self.term_weights = {term.text: term.weight for term in plan.terms}
        pair_terms = {text for pair in plan.pairs for text in (pair.first, pair.second)}
        self.needed_terms = set(self.term_weights) | pair_terms
        self.fields = sorted(set(plan.weights) | set(plan.proximity_fields if plan.pairs else ()))
        self._average_length = {
            name: searcher.avg_field_length(name) or 1 for name in self.fields
        }

    def score(self, searcher: Any, docnum: int, stored: dict[str, Any]) -> TextScore:
        """Return the text score of document ``docnum`` of ``searcher`` (this one or a segment's).

        ``stored`` is that document's stored fields.
        """
        plan = self.plan
        positions = {name: self._positions(stored.get(name) or "") for name in self.fields}
        # The length Whoosh stores for the field, as its BM25 scorer reads it.
        lengths = {name: searcher.doc_field_length(docnum, name, 1) for name in self.fields}
        per_field: dict[str, float] = {}
        matched = []
        for name, weight in plan.weights.items():
            found = positions[name]
            subtotal = 0.0
            for text, term_weight in self.term_weights.items():
                places = found.get(text)
                if places:
                    subtotal += weight * term_weight * self._bm25(name, text, len(places), lengths[name])
                    matched.append(f"{name}:{text}")
            per_field[name] = subtotal
        proximity = 0.0
        for pair in plan.pairs:
            for name in plan.proximity_fields:
                found = positions[name]
                first, second = found.get(pair.first), found.get(pair.second)
                if first and second and _near(first, second, plan.slop):
                    proximity += pair.boost * (self._bm25(name, pair.first, len(first), lengths[name])
                                               + self._bm25(name, pair.second, len(second), lengths[name]))
        return TextScore(sum(per_field.values()) + proximity, per_field, proximity, sorted(matched))

    def _bm25(self, field_name: str, text: str, frequency: int, length: float) -> float:
        # Searcher.idf caches each term's value for the life of the searcher.
        return bm25(self.searcher.idf(field_name, text), frequency, length, self._average_length[field_name],
                    self.b, self.k1)

    def _positions(self, terms: str) -> dict[str, list[int]]:
        """Return the positions of the query and pair terms in a stored, space-separated term string."""
        needed = self.needed_terms
        found: dict[str, list[int]] = {}
        for position, text in enumerate(terms.split()):
            if text in needed:
                found.setdefault(text, []).append(position)
        return found


def _near(first: list[int], second: list[int], slop: int) -> bool:
    """Return whether some position in ``second`` is 1 to ``slop`` after one in ``first``."""
    for position in first:
        index = bisect_left(second, position + 1)
        if index < len(second) and second[index] - position <= slop:
            return True
    return False
