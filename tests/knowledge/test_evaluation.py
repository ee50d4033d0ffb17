"""Tests for retrieval metrics, the evaluation run and the `inward eval retrieval` command."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from config import settings_for_tests
from inward.cli import cli
from knowledge.datasets import LabelledArticle, LabelledQuery
from knowledge.evaluation import (
    METRIC_KEYS,
    QueryOutcome,
    evaluate_index,
    ndcg_at,
    percentile,
    recall_at,
    reciprocal_rank,
    summarize,
)


def test_metrics_on_hand_checked_example():
    # Query 1: one relevant article "a", found at rank 2.
    # Query 2: relevant "a" and "c"; "a" at rank 1, "c" at rank 11 (outside the top 10).
    first = QueryOutcome(LabelledQuery("q1", ("a",)), ["b", "a", "c"], 10.0)
    second = QueryOutcome(LabelledQuery("q2", ("a", "c")), ["a", "b", "d", "e", "f", "g", "h", "i", "j", "k", "c"], 30.0)

    metrics = summarize([first, second])

    # recall@1: q1 0, q2 1/2 -> 0.25; recall@5 and @10: q1 1, q2 1/2 -> 0.75
    assert metrics["recall@1"] == pytest.approx(0.25)
    assert metrics["recall@5"] == pytest.approx(0.75)
    assert metrics["recall@10"] == pytest.approx(0.75)
    # MRR@10: q1 1/2, q2 1 -> 0.75
    assert metrics["mrr@10"] == pytest.approx(0.75)
    # nDCG@10: q1 (1/log2 3) / 1 = 0.63093; q2 1 / (1 + 1/log2 3) = 0.61315
    assert metrics["ndcg@10"] == pytest.approx((0.630930 + 0.613147) / 2, abs=1e-5)
    # Latency percentiles over [10, 30] ms: p50 20, p95 29.
    assert metrics["p50_ms"] == pytest.approx(20.0)
    assert metrics["p95_ms"] == pytest.approx(29.0)
    assert metrics["queries"] == 2


@pytest.mark.parametrize(
    ("ranked", "relevant", "k", "expected"),
    [
        ([], {"a"}, 10, 0.0),
        (["a"], set(), 10, 0.0),
        (["x", "y", "a"], {"a"}, 2, 0.0),
        (["x", "y", "a"], {"a"}, 3, 1.0),
    ],
)
def test_recall_at_edges(ranked, relevant, k, expected):
    assert recall_at(ranked, relevant, k) == expected


def test_reciprocal_rank_outside_cutoff_is_zero():
    assert reciprocal_rank(["x"] * 10 + ["a"], {"a"}) == 0.0
    assert reciprocal_rank(["x", "x", "x", "a"], {"a"}) == 0.25


def test_ndcg_perfect_ranking_is_one():
    assert ndcg_at(["a", "b", "x"], {"a", "b"}) == pytest.approx(1.0)
    assert ndcg_at(["x", "a"], {"a"}) == pytest.approx(1 / math.log2(3))


def test_percentile_interpolates():
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == pytest.approx(2.5)
    assert math.isnan(percentile([], 0.5))


ARTICLES = [
    LabelledArticle("vpn", "VPN password", html="<p>Reset the VPN password in the portal.</p>"),
    LabelledArticle("printer", "Printer jam", html="<p>Open tray two and remove the paper.</p>"),
    LabelledArticle("payroll", "Payroll dates", text="Salaries are paid on the 25th.\nBonuses in March."),
]


def test_evaluate_index_on_real_index(tmp_path):
    queries = [
        LabelledQuery("How do I reset my VPN password?", ("vpn",)),
        LabelledQuery("When are salaries paid?", ("payroll",)),
        LabelledQuery("paper stuck in tray", ("printer",)),
    ]
    metrics = evaluate_index(ARTICLES, queries, settings_for_tests(), directory=str(tmp_path))
    assert metrics["recall@1"] == 1.0
    assert metrics["mrr@10"] == 1.0
    assert metrics["articles"] == 3
    assert metrics["queries"] == 3
    assert list(tmp_path.iterdir()) == []


def write_lines(path, rows):
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


@pytest.fixture
def labelled_files(tmp_path):
    articles = write_lines(tmp_path / "articles.jsonl", [
        {"id": "vpn", "title": "VPN password", "html": "<p>Reset the VPN password.</p>"},
        {"id": "printer", "title": "Printer jam", "text": "Open tray two.", "knowledge_base": "it"},
    ])
    queries = write_lines(tmp_path / "queries.jsonl", [
        {"query": "reset vpn password", "relevant": ["vpn"]},
        {"query": "printer tray", "relevant": ["printer"]},
    ])
    return articles, queries


def run_cli(*arguments):
    return CliRunner().invoke(cli, ["eval", "retrieval", *arguments], obj={})


def test_eval_retrieval_json_keys(labelled_files):
    articles, queries = labelled_files
    result = run_cli("--articles", str(articles), "--queries", str(queries), "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    assert set(METRIC_KEYS) <= set(metrics)
    assert set(metrics) - set(METRIC_KEYS) == {"queries", "articles"}
    assert metrics["recall@1"] == 1.0


def test_eval_retrieval_table_and_limit(labelled_files):
    articles, queries = labelled_files
    result = run_cli("--articles", str(articles), "--queries", str(queries), "--limit", "1")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["metric", "value"]
    assert any(line.split() == ["queries", "1"] for line in lines)
    assert any(line.startswith("mrr@10") for line in lines)


def test_eval_retrieval_set_override(labelled_files):
    articles, queries = labelled_files
    result = run_cli("--articles", str(articles), "--queries", str(queries), "--json",
                     "--set", "ranking.body_weight=0", "--set", "ranking.title_weight=0",
                     "--set", "ranking.headings_weight=0", "--set", "ranking.meta_weight=0",
                     "--set", "ranking.proximity_weight=0")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["recall@10"] == 0.0


def test_eval_retrieval_rejects_bad_override(labelled_files):
    articles, queries = labelled_files
    result = run_cli("--articles", str(articles), "--queries", str(queries), "--set", "ranking.title_weight=-1")
    assert result.exit_code != 0
    assert "ranking.title_weight" in result.output


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("{not json", "invalid JSON"),
        # A line cut short: the column is at its end, not on the next line.
        ('{"query": "x", "relevant": [', "invalid JSON (Expecting value at column 29; the line ends at column 29"),
        ('{"query": "x", "relev', "invalid JSON (Unterminated string starting at column 16; the line ends at column 22"),
        (json.dumps({"relevant": ["vpn"]}), "field 'query' is missing"),
        (json.dumps({"query": "x", "relevant": "vpn"}), "field 'relevant' is the string 'vpn'"),
        (json.dumps({"query": "x", "relevant": ["ghost"]}), "unknown relevant id 'ghost'"),
        (json.dumps(["query"]), "a JSON list, not an object"),
    ],
)
def test_eval_retrieval_reports_bad_query_line(labelled_files, bad_line, message):
    articles, queries = labelled_files
    write_lines(queries, [{"query": "ok", "relevant": ["vpn"]}, "", bad_line])
    result = run_cli("--articles", str(articles), "--queries", str(queries))
    assert result.exit_code == 2
    assert f"{queries}:3: {message}" in result.output
    assert "; expected " in result.output


def test_eval_retrieval_reports_bad_article_line(labelled_files):
    articles, queries = labelled_files
    write_lines(articles, [{"id": "vpn", "title": "T", "html": "<p>x</p>"}, {"id": "b", "title": "T", "html": 5}])
    result = run_cli("--articles", str(articles), "--queries", str(queries))
    assert result.exit_code == 2
    assert f"{articles}:2: field 'html' is the number 5; expected a string" in result.output


def test_eval_retrieval_rejects_empty_queries(labelled_files):
    articles, queries = labelled_files
    queries.write_text("\n")
    result = run_cli("--articles", str(articles), "--queries", str(queries), "--json")
    assert result.exit_code == 2
    assert f"{queries} contains no lines to evaluate" in result.output
