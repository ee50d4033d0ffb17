"""Measure case suggestions on the labelled demo cases against two baselines in the same run.

Queries: the demo customer cases (inward/demo/data/cases.yaml) that carry
``relevant_articles`` labels. Each query is built as the suggestions
endpoint builds it: ``build_case_query`` on the case record with its newest
``comments`` journal entry as the latest comment, searched with limit 10.
There is no visibility filter, so every indexed article can be found.

Index: the live demo articles (published, active, ``valid_to`` not passed),
turned into documents by ``ArticleDoc.from_article`` as the sync does, but
without the helpful-vote and attach-count priors. The attach counts come
from the same demo cases, so they would leak the labels into the ranking.

Systems, all searched with limit 10:

- Inward: ``KnowledgeIndex`` with the default settings (or ``--set``
  overrides) and the weighted case query;
- short description only: the same index, the short description as plain
  query text with no boosts;
- ``bm25s`` over title + body text, k1=1.2, b=0.75 (Lucene variant),
  tokenized by ``bm25s.tokenize`` with English stop words, queried with the
  whole case text: short description, description and every ``comments``
  journal entry.

``--grid`` also runs the case-query weight grid, one setting changed at a
time from the defaults, on the same index.

Run: ``.venv/bin/python benchmarks/case_suggestions.py`` from the project root.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import format_table, machine_table, quiet_bm25s  # noqa: E402

from config import ConfigError, load_settings  # noqa: E402
from integration.normalize import normalize_record  # noqa: E402
from integration.schemas import Article, Case  # noqa: E402
from integration.tables import strip_marker  # noqa: E402
from inward.demo.dataset import DemoData, load_demo_data, load_relevant_articles  # noqa: E402
from knowledge.case_query import build_case_query  # noqa: E402
from knowledge.datasets import LabelledQuery  # noqa: E402
from knowledge.documents import ArticleDoc  # noqa: E402
from knowledge.eval_cli import parse_overrides  # noqa: E402
from knowledge.evaluation import RESULT_DEPTH, run_queries, summarize  # noqa: E402
from knowledge.index import KnowledgeIndex  # noqa: E402
from knowledge.sync import is_live  # noqa: E402

logger = logging.getLogger(__name__)

CASE_TABLE = "sn_customerservice_case"
METRICS = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")
BM25_K1 = 1.2
BM25_B = 0.75
# One setting changed at a time from the defaults.
GRID = {
    "description_weight": (0.0, 0.25, 0.5, 1.0),
    "comment_weight": (0.0, 0.25, 0.5, 1.0),
    "category_weight": (0.0, 0.3, 0.6),
    "product_weight": (0.0, 0.3, 0.6),
}


@dataclass
class DemoCase:
    """A labelled demo case: the record as the endpoint reads it, its comments and its relevant articles."""

    case: Case
    comments: list[str]
    relevant: tuple[str, ...]


def load_articles(data: DemoData, today: date) -> list[ArticleDoc]:
    """Return the documents the sync would index for the live demo articles, without priors."""
    titles = {base.sys_id: base.values["title"] for base in data.table("kb_knowledge_base")}
    docs = []
    for record in data.table("kb_knowledge"):
        article = Article.from_record(normalize_record("kb_knowledge", record.values))
        if is_live(article, today):
            docs.append(ArticleDoc.from_article(article, kb_title=titles.get(article.kb_knowledge_base, "")))
    return docs


def load_cases(data: DemoData) -> list[DemoCase]:
    """Return the labelled demo cases, each with its comments oldest first and its newest one as latest_comment."""
    labels = load_relevant_articles()
    article_ids = {record.key: record.sys_id for record in data.table("kb_knowledge")}
    comments: dict[str, list[tuple[str, str]]] = {}
    for entry in data.table("sys_journal_field"):
        if entry.values["element"] == "comments":
            comments.setdefault(entry.values["element_id"], []).append(
                (entry.values["sys_created_on"], strip_marker(entry.values["value"])))
    cases = []
    for record in data.table(CASE_TABLE):
        if record.key not in labels:
            continue
        entries = [text for _, text in sorted(comments.get(record.sys_id, []))]
        # Like integration.tables.latest_comment, take the newest comments entry, from the customer or an agent.
        latest = entries[-1] if entries else ""
        case = Case.from_record(CASE_TABLE, normalize_record(CASE_TABLE, record.values), latest_comment=latest)
        relevant = tuple(article_ids[number] for number in labels[record.key])
        cases.append(DemoCase(case=case, comments=entries, relevant=relevant))
    return cases


def evaluate(cases: list[DemoCase], search: Callable[[DemoCase], list[str]]) -> tuple[dict, list[float]]:
    """Return the averaged metrics and each case's reciprocal rank for one system."""
    by_number = {case.case.number: case for case in cases}
    queries = [LabelledQuery(query=case.case.number, relevant=case.relevant) for case in cases]
    outcomes = run_queries(lambda number: search(by_number[number]), queries)
    ranks = []
    for outcome in outcomes:
        relevant = set(outcome.query.relevant)
        first = next((rank for rank, sys_id in enumerate(outcome.ranked, start=1) if sys_id in relevant), None)
        ranks.append(1.0 / first if first else 0.0)
    return summarize(outcomes), ranks


def case_query_search(index: KnowledgeIndex, ranking) -> Callable[[DemoCase], list[str]]:
    """Search as the suggestions endpoint does, with ``ranking`` for the case-query weights."""
    def search(demo: DemoCase) -> list[str]:
        query = build_case_query(demo.case, ranking)
        if query.is_empty():
            return []
        return [hit.sys_id for hit in index.search(**query.search_kwargs(), limit=RESULT_DEPTH)]

    return search


def short_description_search(index: KnowledgeIndex) -> Callable[[DemoCase], list[str]]:
    """Search the index with the short description as plain text, without boosts."""
    def search(demo: DemoCase) -> list[str]:
        return [hit.sys_id for hit in index.search(demo.case.short_description, limit=RESULT_DEPTH)]

    return search


def bm25s_search(docs: list[ArticleDoc]) -> Callable[[DemoCase], list[str]]:
    """Index title + body text with bm25s and search with the whole case text."""
    import bm25s

    ids = [doc.sys_id for doc in docs]
    retriever = bm25s.BM25(k1=BM25_K1, b=BM25_B, method="lucene")
    corpus = [f"{doc.title}\n{doc.body}" for doc in docs]
    retriever.index(bm25s.tokenize(corpus, stopwords="en", show_progress=False), show_progress=False)

    def search(demo: DemoCase) -> list[str]:
        text = "\n".join([demo.case.short_description, demo.case.description, *demo.comments])
        tokens = bm25s.tokenize([text], stopwords="en", show_progress=False)
        if not tokens.vocab:
            return []
        results, _ = retriever.retrieve(tokens, k=min(RESULT_DEPTH, len(ids)), show_progress=False)
        return [ids[int(position)] for position in results[0]]

    return search


def grid_variants(base_ranking) -> list[tuple[str, dict[str, float]]]:
    """Return (label, ranking overrides) for each grid value that differs from the active setting."""
    variants = []
    for key, values in GRID.items():
        for value in values:
            if value != getattr(base_ranking, key):
                variants.append((f"{key} {value:g}", {key: value}))
    return variants


def compare(ranks: list[float], baseline: list[float]) -> str:
    """Count the cases whose reciprocal rank rose and fell against ``baseline``."""
    better = sum(rank > base for rank, base in zip(ranks, baseline))
    worse = sum(rank < base for rank, base in zip(ranks, baseline))
    return f"+{better} / -{worse}"


def metric_row(name: str, metrics: dict, *extra: object) -> list[object]:
    return [name, *(f"{metrics[key]:.3f}" for key in METRICS), *extra]


def report(sizes: dict[str, int], overrides: dict, rows: list[list[object]], grid: list[list[object]] | None,
           seconds: float) -> str:
    """Format the data set, machine and metric tables as Markdown."""
    lines = [
        "## Case suggestions on the labelled demo cases", "",
        f"- cases: {sizes['cases']} demo customer cases, {sizes['labelled']} with relevant_articles "
        f"({sizes['labels']} labels, {sizes['labels'] / sizes['labelled']:.2f} per labelled case)",
        f"- articles indexed: {sizes['indexed']} live demo articles of {sizes['articles']}, no priors",
        f"- Inward settings overrides: {overrides or 'none (defaults)'}",
        f"- wall time: {seconds:.1f} s",
        "", machine_table(), "",
        format_table(["system", *METRICS, "cases vs. Inward (MRR)"], rows),
    ]
    if grid is not None:
        lines += ["", "Case-query weights, one changed at a time from the settings above:", "",
                  format_table(["variant", *METRICS, "cases vs. Inward (MRR)"], grid)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="Override a ranking or index setting for the Inward run. Repeatable.")
    parser.add_argument("--grid", action="store_true",
                        help="Also run the case-query weight grid, one setting changed at a time.")
    arguments = parser.parse_args(argv)
    quiet_bm25s()

    started = time.perf_counter()
    data = load_demo_data()
    docs = load_articles(data, date.today())
    cases = load_cases(data)
    try:
        overrides = parse_overrides(tuple(arguments.assignments))
        settings = load_settings(None, environ={}, overrides=overrides)
    except (click.BadParameter, ConfigError) as error:
        parser.error(error.format_message() if isinstance(error, click.BadParameter) else str(error))
    sizes = {
        "cases": len(data.table(CASE_TABLE)), "labelled": len(cases),
        "labels": sum(len(case.relevant) for case in cases),
        "articles": len(data.table("kb_knowledge")), "indexed": len(docs),
    }

    with tempfile.TemporaryDirectory(prefix="inward-case-bench-") as workdir:
        index = KnowledgeIndex(workdir, settings=settings)
        try:
            index.rebuild(docs)
            inward, inward_ranks = evaluate(cases, case_query_search(index, settings.ranking))
            short, short_ranks = evaluate(cases, short_description_search(index))
            grid = None
            if arguments.grid:
                grid = []
                for label, change in grid_variants(settings.ranking):
                    variant = load_settings(None, environ={}, overrides={
                        **overrides, "ranking": {**overrides.get("ranking", {}), **change}})
                    metrics, ranks = evaluate(cases, case_query_search(index, variant.ranking))
                    grid.append(metric_row(label, metrics, compare(ranks, inward_ranks)))
        finally:
            index.close()
    bm25, bm25_ranks = evaluate(cases, bm25s_search(docs))

    rows = [
        metric_row("Inward case query", inward, "-"),
        metric_row("short description only (Inward index)", short, compare(short_ranks, inward_ranks)),
        metric_row("bm25s, whole case text", bm25, compare(bm25_ranks, inward_ranks)),
    ]
    print(report(sizes, overrides, rows, grid, time.perf_counter() - started))


if __name__ == "__main__":
    main()
