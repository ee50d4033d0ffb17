"""Build the search query from text and score hits: per-field BM25, proximity, priors.

The text score of an article is the sum over query terms and fields of
``field weight * term weight * BM25(term, field)``, plus a proximity bonus
for pairs of adjacent query terms found close together. Priors (helpful
votes, attach count, recency) then multiply that score by a bounded factor,
at most ``ranking.prior_cap``, so they reorder close results without lifting
an article that matches the query poorly. Every weight is a
``ranking.*`` setting.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from whoosh import query as wq

logger = logging.getLogger(__name__)

TEXT_FIELDS = ("title", "meta", "headings", "body")

# Words that shape a question but never name its subject. Removed from query
# text before analysis, on top of the analyzer's stop list.
QUESTION_WORDS = frozenset("""
what whats which who whom whose how many much when where why can could would should shall may
might must does do did is are was were be tell me please kindly know
""".split())

# Words that only describe the form of an answer, removed from instruction sentences.
ANSWER_FORMAT_WORDS = frozenset("""
answer answers answering respond response reply provide specify state indicate record express write
return enter format use include give giving number numeral numeric numerical value figure digit digits
exact exactly precise precisely only alone just single whole complete full word words phrase term
form followed by your using as in
""".split())

# A sentence after the question that only states how to phrase the answer
# ("Answer with a number.", "Your answer should be the full name.").
_ANSWER_INSTRUCTION = re.compile(
    r"^(?:please\s+)?(?:answer|respond|reply|provide|give|specify|state|indicate|record|express|"
    r"write|return|enter|format|use|include)\b|^(?:your|the|my)\s+(?:answer|response|reply)\b",
    re.IGNORECASE,
)
_SENTENCE_BREAK = re.compile(r"(?<=[.?!])\s+")
_WORD = re.compile(r"\w+(?:['’.]\w+)*")


@dataclass(frozen=True)
class WeightedTerm:
    """An analyzed query term, its weight (1.0 for plain query text) and whether the text contains it."""

    text: str
    weight: float = 1.0
    # False for a term that only a boost added; such terms get no proximity pairs.
    in_text: bool = True


def split_answer_instructions(text: str) -> tuple[str, str]:
    """Split off the sentences after the first that state how to format the answer.

    Returns (question, instructions). Instructions still name the thing asked
    for ("Answer with the full name of the manager"), so callers keep their
    words at a lower weight rather than dropping them.
    """
    sentences = _SENTENCE_BREAK.split(text.strip())
    question = sentences[:1]
    instructions = []
    for sentence in sentences[1:]:
        (instructions if _ANSWER_INSTRUCTION.match(sentence.strip()) else question).append(sentence)
    return " ".join(question), " ".join(instructions)


def remove_answer_format_words(text: str) -> str:
    """Remove the words of an answer-format instruction ("respond", "numeral", "only")."""
    return " ".join(word for word in _WORD.findall(text) if word.lower() not in ANSWER_FORMAT_WORDS)


def remove_question_words(text: str) -> str:
    """Remove question words ("what's", "how many") and keep the other words in order."""
    words = []
    for word in _WORD.findall(text):
        folded = word.lower().replace("’", "'").replace("'", "")
        if folded not in QUESTION_WORDS:
            words.append(word)
    return " ".join(words)


def analyze(analyzer: Any, text: str) -> list[str]:
    """Return the analyzed tokens of ``text`` in order, as the index stores them."""
    return [token.text for token in analyzer(text, mode="query")]


def query_terms(
    text: str,
    analyzer: Any,
    boosts: Mapping[str, float] | None = None,
    *,
    instruction_weight: float = 1.0,
) -> list[WeightedTerm]:
    """Turn query text into unique weighted terms, in order of first appearance.

    Question words are dropped. Answer-format sentences after the question
    lose their format words and weigh ``instruction_weight``. ``boosts`` maps
    words to weights: a word found in the text takes that weight and a word
    not in the text is added with it (a case's category or product). Words
    are analyzed like the text, so "Printers" boosts "printer".
    """
    question, instructions = split_answer_instructions(text)
    weights: dict[str, float] = {}
    for term in analyze(analyzer, remove_question_words(question)):
        weights.setdefault(term, 1.0)
    for term in analyze(analyzer, remove_answer_format_words(remove_question_words(instructions))):
        weights.setdefault(term, instruction_weight)
    in_text = set(weights)
    for word, weight in (boosts or {}).items():
        for term in analyze(analyzer, remove_question_words(word)):
            weights[term] = float(weight) if term not in weights else max(weights[term], float(weight))
    return [WeightedTerm(term, weight, term in in_text) for term, weight in weights.items() if weight > 0]


def field_weights(ranking: Any) -> dict[str, float]:
    """Return the BM25 weight of each text field from the ranking settings."""
    return {
        "title": ranking.title_weight,
        "meta": ranking.meta_weight,
        "headings": ranking.headings_weight,
        "body": ranking.body_weight,
    }


def build_field_query(field: str, terms: list[WeightedTerm], weight: float) -> wq.Query:
    """Build the disjunction of the query terms in one field, boosted by the field weight."""
    return wq.Or([wq.Term(field, term.text, boost=weight * term.weight) for term in terms])


def term_priority(term: WeightedTerm, idf: Mapping[str, float] | None) -> float:
    """Return ``weight * idf`` of a term, or its weight alone without ``idf``."""
    return term.weight * (idf.get(term.text, 0.0) if idf is not None else 1.0)


def select_scored_terms(terms: list[WeightedTerm], ranking: Any,
                        idf: Mapping[str, float] | None = None) -> list[WeightedTerm]:
    """Keep the ``ranking.max_query_terms`` terms of highest ``weight * idf``, in query order.

    A cap of 0 keeps every term. Ties keep the earlier term.
    """
    cap = ranking.max_query_terms
    if cap <= 0 or len(terms) <= cap:
        return terms
    order = sorted(range(len(terms)), key=lambda i: -term_priority(terms[i], idf))
    kept = set(order[:cap])
    return [term for i, term in enumerate(terms) if i in kept]


@dataclass(frozen=True)
class ProximityPair:
    """Two adjacent query-text terms and the bonus weight when they occur close together."""

    first: str
    second: str
    boost: float


def select_proximity_pairs(terms: list[WeightedTerm], ranking: Any,
                           idf: Mapping[str, float] | None = None) -> list[ProximityPair]:
    """Return the pairs of adjacent query-text terms that get a proximity bonus.

    With ``ranking.proximity_max_pairs`` above 0, only that many pairs are
    kept: those whose lower ``weight * idf`` is highest, earlier pairs first on ties.
    """
    text_terms = [term for term in terms if term.in_text]
    if ranking.proximity_weight <= 0 or len(text_terms) < 2 or not ranking.proximity_fields:
        return []
    pairs = list(zip(text_terms, text_terms[1:]))
    cap = ranking.proximity_max_pairs
    if 0 < cap < len(pairs):
        pairs = sorted(pairs, key=lambda pair: -min(term_priority(pair[0], idf), term_priority(pair[1], idf)))[:cap]
    return [ProximityPair(first.text, second.text, ranking.proximity_weight * min(first.weight, second.weight))
            for first, second in pairs]


def build_proximity_query(terms: list[WeightedTerm], ranking: Any,
                          idf: Mapping[str, float] | None = None) -> wq.Query | None:
    """Build the optional bonus clause: one phrase per selected pair and ``ranking.proximity_fields`` field."""
    pairs = select_proximity_pairs(terms, ranking, idf)
    if not pairs:
        return None
    return wq.Or([
        wq.Phrase(field, [pair.first, pair.second], slop=ranking.proximity_slop, boost=pair.boost)
        for pair in pairs
        for field in ranking.proximity_fields
    ])


@dataclass(frozen=True)
class QueryPlan:
    """One search's scoring plan, and the same plan as Whoosh queries.

    ``weights`` (field weights), ``pairs``, ``proximity_fields`` and ``slop``
    drive ``knowledge.rescoring``; ``fields`` and ``proximity`` are the
    equivalent Whoosh queries, used when no candidate snapshot exists.
    """

    terms: list[WeightedTerm]
    fields: dict[str, wq.Query]
    proximity: wq.Query | None
    weights: dict[str, float]
    pairs: list[ProximityPair]
    proximity_fields: tuple[str, ...]
    slop: int

    def combined(self) -> wq.Query:
        """Return the query that scores text: every field clause plus the proximity clause."""
        clauses = list(self.fields.values())
        if self.proximity is not None:
            clauses.append(self.proximity)
        return wq.Or(clauses)


def plan_query(terms: list[WeightedTerm], ranking: Any, *,
               idf: Mapping[str, float] | None = None) -> QueryPlan:
    """Build the query plan for weighted terms with the configured field weights.

    ``idf`` maps term text to its inverse document frequency. It ranks
    terms and pairs for the ``max_query_terms`` and ``proximity_max_pairs``
    caps, and without it terms rank by weight alone. Proximity pairs come
    from all terms, so a pair is always adjacent in the query text even
    when the term cap drops one of its terms.
    """
    scored = select_scored_terms(terms, ranking, idf)
    weights = {field: weight for field, weight in field_weights(ranking).items() if weight > 0}
    fields = {field: build_field_query(field, scored, weight) for field, weight in weights.items()}
    pairs = select_proximity_pairs(terms, ranking, idf)
    proximity = build_proximity_query(terms, ranking, idf=idf)
    return QueryPlan(terms=scored, fields=fields, proximity=proximity, weights=weights, pairs=pairs,
                     proximity_fields=tuple(ranking.proximity_fields), slop=ranking.proximity_slop)


def prior_factors(stored: Mapping[str, Any], ranking: Any, now: datetime | None = None) -> dict[str, float]:
    """Return each prior's multiplier, 1 + weight * prior with the prior in [0, 1]."""
    now = now or datetime.now(timezone.utc)
    helpful = stored.get("helpful_ratio")
    helpful_prior = min(1.0, max(0.0, float(helpful))) if helpful is not None else 0.0
    attach = max(0, int(stored.get("attach_count") or 0))
    attach_prior = attach / (attach + ranking.attach_half)
    return {
        "helpful": 1.0 + ranking.helpful_weight * helpful_prior,
        "attach": 1.0 + ranking.attach_weight * attach_prior,
        "recency": 1.0 + ranking.recency_weight * _recency_prior(stored.get("updated_on"), ranking, now),
    }


def _recency_prior(updated_on: Any, ranking: Any, now: datetime) -> float:
    """Return 1.0 for an article updated now, halving every ``recency_half_life_days``."""
    if not isinstance(updated_on, datetime):
        return 0.0
    if updated_on.tzinfo is None:
        updated_on = updated_on.replace(tzinfo=timezone.utc)
    age_days = max(0.0, (now - updated_on).total_seconds() / 86400.0)
    return math.pow(0.5, age_days / ranking.recency_half_life_days)


def combined_prior(factors: Mapping[str, float], ranking: Any) -> float:
    """Multiply the prior factors and cap the product at ``ranking.prior_cap``."""
    product = 1.0
    for factor in factors.values():
        product *= factor
    return min(product, ranking.prior_cap)


def explain_hit(per_field: Mapping[str, float], proximity: float, factors: Mapping[str, float],
                prior: float, matched: list[str], score: float) -> dict[str, Any]:
    """Return the score components of one hit: BM25 per field, proximity, priors."""
    return {
        "matched_terms": matched,
        "bm25": dict(per_field),
        "proximity": proximity,
        "text_score": sum(per_field.values()) + proximity,
        "priors": dict(factors),
        "prior_factor": prior,
        "score": score,
    }


def score_passage(tokens: list[str], terms: list[WeightedTerm], idf: Mapping[str, float],
                  average_length: float, ranking: Any) -> float:
    """Return the BM25 score of one passage's analyzed tokens for the weighted query terms."""
    if not tokens:
        return 0.0
    counts: dict[str, int] = {}
    for token in tokens:
        counts[token] = counts.get(token, 0) + 1
    k1, b = ranking.bm25_k1, ranking.bm25_b
    norm = k1 * (1 - b + b * len(tokens) / max(average_length, 1.0))
    score = 0.0
    for term in terms:
        frequency = counts.get(term.text, 0)
        if frequency:
            score += term.weight * idf.get(term.text, 0.0) * frequency * (k1 + 1) / (frequency + norm)
    return score
