"""Tests for reading labelled sets and converting the public data sets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from inward.cli import cli
from knowledge.datasets import convert, read_articles, read_queries
from knowledge.errors import DatasetError

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def write_lines(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


def test_read_articles_html_and_text(tmp_path):
    path = write_lines(tmp_path / "a.jsonl", [
        {"id": "1", "title": "T1", "html": "<p>x</p>"},
        {"id": "2", "title": "", "text": "plain", "knowledge_base": "kb"},
    ])
    first, second = read_articles(path)
    assert (first.html, first.text, first.knowledge_base) == ("<p>x</p>", None, "")
    assert (second.html, second.text, second.knowledge_base) == (None, "plain", "kb")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"title": "T", "html": "x"}, "field 'id' is missing"),
        ({"id": "", "title": "T", "html": "x"}, "field 'id' is an empty string"),
        ({"id": "1", "html": "x"}, "field 'title' is missing"),
        ({"id": "1", "title": "T"}, "field 'html' or 'text' is missing"),
        ({"id": "1", "title": "T", "text": ["x"]}, "field 'text' is a list with non-string items"),
        ({"id": "1", "title": "T", "html": "x", "knowledge_base": 3}, "field 'knowledge_base' is the number 3"),
    ],
)
def test_read_articles_rejects_bad_line(tmp_path, row, message):
    path = write_lines(tmp_path / "a.jsonl", [{"id": "0", "title": "ok", "html": "x"}, row])
    with pytest.raises(DatasetError) as caught:
        read_articles(path)
    assert str(caught.value).startswith(f"{path}:2: {message}; expected ")
    assert caught.value.line == 2


def test_read_articles_rejects_duplicate_id(tmp_path):
    path = write_lines(tmp_path / "a.jsonl", [{"id": "1", "title": "T", "html": "x"}] * 2)
    with pytest.raises(DatasetError, match=r":2: duplicate id '1' \(first on line 1\)"):
        read_articles(path)


def test_read_missing_file_names_it(tmp_path):
    with pytest.raises(DatasetError, match="missing.jsonl:0: cannot open the file"):
        read_articles(tmp_path / "missing.jsonl")


def test_read_queries_deduplicates_relevant(tmp_path):
    path = write_lines(tmp_path / "q.jsonl", [{"query": "q", "relevant": ["a", "a", "b"]}])
    (query,) = read_queries(path, {"a", "b"})
    assert query.relevant == ("a", "b")
    assert query.line == 1


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"query": "q", "relevant": []}, "field 'relevant' is an empty list"),
        ({"query": "q", "relevant": [1]}, "field 'relevant' is a list with non-string items"),
        ({"query": 5, "relevant": ["a"]}, "field 'query' is the number 5"),
        ({"query": "q", "relevant": ["a", "zz"]}, "unknown relevant id 'zz'"),
    ],
)
def test_read_queries_rejects_bad_line(tmp_path, row, message):
    path = write_lines(tmp_path / "q.jsonl", [row])
    with pytest.raises(DatasetError) as caught:
        read_queries(path, {"a"})
    assert str(caught.value).startswith(f"{path}:1: {message}; expected ")


def make_mtrag(root: Path) -> Path:
    base = root / "mtragun_human"
    write_lines(base / "passages_ibmcloud.jsonl", [
        {"_id": "p1", "text": "\n\n  Time series library \n\nA time series is a sequence."},
        {"_id": "p2", "text": "Bot management\nBots are programs."},
    ])
    user = lambda text: {"speaker": "user", "text": text}  # noqa: E731
    agent = {"speaker": "agent", "text": "An answer."}
    write_lines(base / "reference_ibmcloud.jsonl", [
        {"task_id": "t1<::>3", "answerability": ["ANSWERABLE"], "input": [user("first"), agent, user("last turn")]},
        {"task_id": "t2<::>1", "answerability": ["UNANSWERABLE"], "input": [user("no gold")]},
        {"task_id": "t3<::>2", "answerability": ["PARTIAL"], "input": [user("partial one")]},
        {"task_id": "t4<::>1", "answerability": ["ANSWERABLE"], "input": [user("no qrels")]},
    ])
    (base / "qrels_cloud.tsv").write_text(
        "query-id\tcorpus-id\tscore\nt1<::>3\tp1\t1\nt1<::>3\tp2\t1\nt2<::>1\tp2\t1\nt3<::>2\tp2\t1\nt3<::>2\tp1\t0\n"
    )
    return root


def test_convert_mtrag_last_user_turn_of_answerable_tasks(tmp_path):
    source = make_mtrag(tmp_path / "mtrag")
    articles_path, queries_path, articles, queries = convert("mtrag", source, tmp_path / "out")
    rows = [json.loads(line) for line in queries_path.read_text().splitlines()]
    assert rows == [
        {"query": "last turn", "relevant": ["p1", "p2"]},
        {"query": "partial one", "relevant": ["p2"]},
    ]
    titles = [article.title for article in read_articles(articles_path)]
    assert titles == ["Time series library", "Bot management"]
    assert (articles, queries) == (2, 2)


def test_convert_workarena(tmp_path):
    source = tmp_path / "workarena"
    write_lines(source / "articles.jsonl", [
        {"article_id": "Article 1", "short_description": "Article 1", "item": "x", "text_html": "<p>75 staff</p>"},
    ])
    write_lines(source / "pairs.jsonl", [{"query": "How many staff?", "article_id": "Article 1"}])
    articles_path, queries_path, _, _ = convert("workarena", source, tmp_path / "out")
    articles = read_articles(articles_path)
    queries = read_queries(queries_path, {article.id for article in articles})
    assert articles[0].html == "<p>75 staff</p>"
    assert queries[0].relevant == ("Article 1",)


def test_convert_command_writes_files(tmp_path):
    source = make_mtrag(tmp_path / "mtrag")
    result = CliRunner().invoke(cli, ["eval", "convert", "mtrag", "--source", str(source),
                                      "--out", str(tmp_path / "out")], obj={})
    assert result.exit_code == 0, result.output
    assert "Wrote 2 articles" in result.output
    assert (tmp_path / "out" / "queries.jsonl").exists()


def test_convert_command_missing_source(tmp_path):
    result = CliRunner().invoke(cli, ["eval", "convert", "workarena", "--source", str(tmp_path / "nope"),
                                      "--out", str(tmp_path / "out")], obj={})
    assert result.exit_code != 0
    assert "not found; pass --source DIR" in result.output


@pytest.mark.parametrize(("name", "folder", "articles", "queries"), [
    ("workarena", "workarena_kb", 100, 1000),
    ("mtrag", "mtrag_ibmcloud", 248, 86),
])
def test_convert_shared_data_sets(tmp_path, name, folder, articles, queries):
    source = SHARED_DATA / folder
    if not source.is_dir():
        pytest.skip(f"data set not found at {source}")
    articles_path, queries_path, article_count, query_count = convert(name, source, tmp_path)
    assert (article_count, query_count) == (articles, queries)
    ids = {article.id for article in read_articles(articles_path)}
    assert len(read_queries(queries_path, ids)) == queries
