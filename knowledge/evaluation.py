"""Retrieval metrics and the evaluation of the knowledge index on a labelled set.

Relevance is binary: an article is relevant to a query when its id is in
the query's ``relevant`` list. The metrics, averaged over queries:

- recall@k: the share of a query's relevant articles found in the top k;
- MRR@10: 1 / rank of the first relevant article in the top 10, else 0;
- nDCG@10: DCG = sum of 1 / log2(rank + 1) over relevant articles in the
  top 10, divided by the DCG of the ideal ranking.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from knowledge.datasets import LabelledArticle, LabelledQuery
from knowledge.documents import ArticleDoc
from knowledge.index import KnowledgeIndex

logger = logging.getLogger(__name__)

METRIC_KEYS = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "p50_ms", "p95_ms")
RESULT_DEPTH = 10


def recall_at(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """Return the share of ``relevant`` ids found among the first ``k`` of ``ranked``."""
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def reciprocal_rank(ranked: Sequence[str], relevant: set[str], k: int = RESULT_DEPTH) -> float:
    """Return 1 / rank of the first relevant id within the first ``k``, or 0.0."""
    for rank, item in enumerate(ranked[:k], start=1):
        if item in relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at(ranked: Sequence[str], relevant: set[str], k: int = RESULT_DEPTH) -> float:
    """Return the normalized discounted cumulative gain of ``ranked`` at ``k`` (binary gains)."""
    if not relevant:
        return 0.0
    gain = sum(1.0 / math.log2(rank + 1) for rank, item in enumerate(ranked[:k], start=1) if item in relevant)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(relevant), k) + 1))
    return gain / ideal


def percentile(values: Sequence[float], share: float) -> float:
    """Return the ``share`` (0..1) percentile of ``values`` by linear interpolation."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * share
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


@dataclass
class QueryOutcome:
    """The ranked ids returned for one labelled query and the time the search took."""

    query: LabelledQuery
    ranked: list[str]
    milliseconds: float


def run_queries(search: Callable[[str], list[str]], queries: Sequence[LabelledQuery]) -> list[QueryOutcome]:
    """Run every query through ``search`` and time each call."""
    outcomes = []
    for labelled in queries:
        started = time.perf_counter()
        ranked = search(labelled.query)
        elapsed = (time.perf_counter() - started) * 1000.0
        outcomes.append(QueryOutcome(labelled, list(ranked), elapsed))
    return outcomes


def summarize(outcomes: Sequence[QueryOutcome]) -> dict[str, float]:
    """Average the metrics over the outcomes and add latency percentiles and counts."""
    count = len(outcomes)

    def mean(metric: Callable[[QueryOutcome], float]) -> float:
        return sum(metric(outcome) for outcome in outcomes) / count if count else 0.0

    return {
        "recall@1": mean(lambda o: recall_at(o.ranked, set(o.query.relevant), 1)),
        "recall@5": mean(lambda o: recall_at(o.ranked, set(o.query.relevant), 5)),
        "recall@10": mean(lambda o: recall_at(o.ranked, set(o.query.relevant), 10)),
        "mrr@10": mean(lambda o: reciprocal_rank(o.ranked, set(o.query.relevant))),
        "ndcg@10": mean(lambda o: ndcg_at(o.ranked, set(o.query.relevant))),
        "p50_ms": percentile([o.milliseconds for o in outcomes], 0.50),
        "p95_ms": percentile([o.milliseconds for o in outcomes], 0.95),
        "queries": count,
    }


def article_doc(article: LabelledArticle) -> ArticleDoc:
    """Build the index document for a labelled article (HTML or plain text)."""
    html = article.html
    if html is None:
        # Plain text: each line is a paragraph.
        html = "".join(f"<p>{_escape(line)}</p>" for line in (article.text or "").splitlines() if line.strip())
    return ArticleDoc.from_html(sys_id=article.id, title=article.title, html=html,
                                kb_sys_id=article.knowledge_base)


def evaluate_index(
    articles: Sequence[LabelledArticle],
    queries: Sequence[LabelledQuery],
    settings,
    *,
    directory: str | None = None,
    extra: Callable[[KnowledgeIndex], dict[str, float]] | None = None,
) -> dict[str, float]:
    """Index ``articles`` in a temporary Whoosh index, run ``queries`` and return the metrics.

    ``extra``, when given, is called with the index after the queries and
    its metrics are added to the result (the benchmark's passage metrics).
    """
    with tempfile.TemporaryDirectory(prefix="inward-eval-", dir=directory) as workdir:
        index = KnowledgeIndex(workdir, settings=settings)
        try:
            index.rebuild(article_doc(article) for article in articles)

            def search(text: str) -> list[str]:
                return [hit.sys_id for hit in index.search(text, limit=RESULT_DEPTH)]

            metrics = summarize(run_queries(search, queries))
            if extra is not None:
                metrics.update(extra(index))
        finally:
            index.close()
    metrics["articles"] = len(articles)
    return metrics


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
