"""Measure knowledge-suggestion quality against a plain BM25 baseline on the same pool.

Queries: the 1000 WorkArena knowledge-base questions, each with one gold
article. Pool: the 100 WorkArena articles, mixed with the 248 MTRAG IBM
Cloud passages and the demo articles in inward/demo/data/articles/ as
distractors. Both systems index the same pool in the same run:

- Inward: ``KnowledgeIndex`` with the default settings (or ``--set`` overrides),
  so its bm25s candidate stage passes ``ranking.candidates`` articles to
  the full ranking, as in the service;
- baseline: ``bm25s`` over title + body text, k1=1.2, b=0.75 (Lucene
  variant), tokenized by ``bm25s.tokenize``: lower-cased words of two or
  more word characters, English stop words removed, no stemming.

It also reports how often ``KnowledgeIndex.search_passages`` returns a
passage that contains the question's expected answer.

Run: ``.venv/bin/python benchmarks/retrieval_quality.py`` from the project root.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import PROJECT_ROOT, SHARED_DATA, format_table, machine_table, quiet_bm25s  # noqa: E402

from config import load_settings  # noqa: E402
from knowledge.datasets import (  # noqa: E402
    LabelledArticle,
    LabelledQuery,
    mtrag_articles,
    read_jsonl,
    workarena_articles,
    workarena_queries,
)
from knowledge.eval_cli import parse_overrides  # noqa: E402
from knowledge.evaluation import METRIC_KEYS, article_doc, evaluate_index, run_queries, summarize  # noqa: E402

logger = logging.getLogger(__name__)

WORKARENA = SHARED_DATA / "workarena_kb"
MTRAG = SHARED_DATA / "mtrag_ibmcloud"
DEMO_ARTICLES = PROJECT_ROOT / "inward" / "demo" / "data" / "articles"
PASSAGE_KEYS = ("answer_in_passage@1", "answer_in_passage@3")
BM25_K1 = 1.2
BM25_B = 0.75


def labelled(rows: list[dict]) -> list[LabelledArticle]:
    """Turn adapter rows into labelled articles."""
    return [LabelledArticle(id=row["id"], title=row["title"], html=row.get("html"), text=row.get("text"),
                            knowledge_base=row.get("knowledge_base", "")) for row in rows]


def demo_articles() -> list[LabelledArticle]:
    """Read the demo articles (YAML lists of number, title, text), or none if the folder is absent."""
    articles = []
    for path in sorted(DEMO_ARTICLES.glob("*.yaml")):
        for item in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            articles.append(LabelledArticle(id=f"demo:{item['number']}", title=item.get("title", ""),
                                            html=item.get("text", ""), knowledge_base=f"demo:{path.stem}"))
    return articles


def load_pool() -> tuple[dict[str, list[LabelledArticle]], list[LabelledQuery], list[str]]:
    """Load the article pool by source, the WorkArena queries and notes about missing parts."""
    if not WORKARENA.is_dir():
        raise SystemExit(f"WorkArena data not found at {WORKARENA}; the benchmark needs it.")
    notes = []
    pool = {"workarena": labelled(workarena_articles(WORKARENA))}
    if MTRAG.is_dir():
        pool["mtrag"] = labelled(mtrag_articles(MTRAG))
    else:
        notes.append(f"MTRAG distractors skipped: {MTRAG} not found.")
    demo = demo_articles()
    if demo:
        pool["demo"] = demo
    else:
        notes.append(f"Demo distractors skipped: no articles in {DEMO_ARTICLES}.")
    queries = [LabelledQuery(query=row["query"], relevant=tuple(row["relevant"]))
               for row in workarena_queries(WORKARENA)]
    return pool, queries, notes


def passage_answer_rates(index, pairs: list[dict]) -> dict[str, float]:
    """Return how often the expected answer is in the top 1 and top 3 passages from ``search_passages``."""
    top1 = top3 = 0
    for pair in pairs:
        answer = pair["expected_answer"].lower()
        found = [answer in f"{hit.heading}\n{hit.text}".lower()
                 for hit in index.search_passages(pair["query"], limit=3)]
        top1 += bool(found and found[0])
        top3 += any(found)
    return {"answer_in_passage@1": top1 / len(pairs), "answer_in_passage@3": top3 / len(pairs)}


def evaluate_baseline(articles: list[LabelledArticle], queries: list[LabelledQuery]) -> dict[str, float]:
    """Index title + body text with bm25s and return the same metrics as the Inward evaluation."""
    import bm25s

    docs = [article_doc(article) for article in articles]
    ids = [doc.sys_id for doc in docs]
    corpus = [f"{doc.title}\n{doc.body}" for doc in docs]
    retriever = bm25s.BM25(k1=BM25_K1, b=BM25_B, method="lucene")
    retriever.index(bm25s.tokenize(corpus, stopwords="en", show_progress=False), show_progress=False)

    def search(text: str) -> list[str]:
        tokens = bm25s.tokenize([text], stopwords="en", show_progress=False)
        if not tokens.vocab:
            return []
        results, _ = retriever.retrieve(tokens, k=min(10, len(ids)), show_progress=False)
        return [ids[int(position)] for position in results[0]]

    metrics = summarize(run_queries(search, queries))
    metrics["articles"] = len(articles)
    return metrics


def report(pool: dict[str, list[LabelledArticle]], queries: list[LabelledQuery], inward: dict[str, float],
           baseline: dict[str, float] | None, overrides: dict, notes: list[str], seconds: float) -> str:
    """Format the data set, machine and metrics tables as Markdown."""
    sizes = ", ".join(f"{name} {len(articles)}" for name, articles in pool.items())
    lines = [
        "## Retrieval quality: WorkArena questions against a mixed pool", "",
        f"- queries: {len(queries)} WorkArena questions, one gold article each",
        f"- pool: {sum(len(a) for a in pool.values())} articles ({sizes})",
        f"- Inward settings overrides: {overrides or 'none (defaults)'}",
        f"- wall time: {seconds:.0f} s",
    ]
    lines += [f"- note: {note}" for note in notes]
    lines += ["", machine_table(), ""]
    rows = []
    for key in METRIC_KEYS:
        row = [key, f"{inward[key]:.4f}"]
        if baseline is not None:
            ratio = inward[key] / baseline[key] if baseline[key] else float("nan")
            row += [f"{baseline[key]:.4f}", f"{ratio:.3f}"]
        rows.append(row)
    headers = ["metric", "Inward"] + (["BM25 baseline (bm25s)", "Inward / baseline"] if baseline else [])
    lines.append(format_table(headers, rows))
    lines += ["", "Passages (Inward `search_passages`, expected WorkArena answer found in the passage text):", "",
              format_table(["metric", "Inward"], [[key, f"{inward[key]:.4f}"] for key in PASSAGE_KEYS])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="Override a ranking or index setting for the Inward run. Repeatable.")
    parser.add_argument("--no-baseline", action="store_true", help="Skip the bm25s baseline.")
    arguments = parser.parse_args(argv)
    quiet_bm25s()

    started = time.perf_counter()
    pool, queries, notes = load_pool()
    articles = [article for group in pool.values() for article in group]
    overrides = parse_overrides(tuple(arguments.assignments))
    settings = load_settings(None, environ={}, overrides=overrides)
    pairs = [pair for _, pair in read_jsonl(WORKARENA / "pairs.jsonl", "a WorkArena question pair")]
    inward = evaluate_index(articles, queries, settings, extra=lambda index: passage_answer_rates(index, pairs))
    baseline = None if arguments.no_baseline else evaluate_baseline(articles, queries)
    print(report(pool, queries, inward, baseline, overrides, notes, time.perf_counter() - started))


if __name__ == "__main__":
    main()
