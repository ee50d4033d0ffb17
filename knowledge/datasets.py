"""Labelled retrieval sets: reading and checking them, and converting public data sets.

The labelled format is two JSONL files:

- articles: ``{"id": str, "title": str, "html": str}`` or ``"text"`` in place
  of ``"html"``, with an optional ``"knowledge_base": str``;
- queries: ``{"query": str, "relevant": [article id, ...]}``.

Every line is checked, and an invalid one raises ``DatasetError`` with the
file, the line number and what was expected.

Adapters convert two public sets to that format: the WorkArena knowledge
base (``articles.jsonl`` and ``pairs.jsonl``) and the MTRAG IBM Cloud
corpus (``mtragun_human/passages_ibmcloud.jsonl``, the last user turn of
each answerable task in ``reference_ibmcloud.jsonl``, gold passages from
``qrels_cloud.tsv``).
"""

from __future__ import annotations

import csv
import json
import logging
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from knowledge.errors import DatasetError

logger = logging.getLogger(__name__)

ARTICLE_SHAPE = 'an object {"id": str, "title": str, "html" or "text": str, "knowledge_base"?: str}'
QUERY_SHAPE = 'an object {"query": str, "relevant": [article id, ...]}'
# MTRAG answerability labels whose tasks have gold passages.
ANSWERABLE_LABELS = frozenset({"ANSWERABLE", "PARTIAL"})


@dataclass(frozen=True)
class LabelledArticle:
    """An article of a labelled set; exactly one of ``html`` and ``text`` is set."""

    id: str
    title: str
    html: str | None = None
    text: str | None = None
    knowledge_base: str = ""


@dataclass(frozen=True)
class LabelledQuery:
    """A query of a labelled set with the ids of its relevant articles."""

    query: str
    relevant: tuple[str, ...]
    line: int = 0


def read_jsonl(path: str | Path, shape: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line, rejecting invalid JSON or non-objects."""
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8")
    except OSError as error:
        raise DatasetError(str(path), 0, f"cannot open the file ({error.strerror})", "a readable JSONL file") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            text = line.rstrip("\r\n")
            try:
                value = json.loads(text)
            except json.JSONDecodeError as error:
                raise DatasetError(str(path), number, _json_problem(error, text), shape) from None
            if not isinstance(value, dict):
                raise DatasetError(str(path), number, f"a JSON {type(value).__name__}, not an object", shape)
            yield number, value


def _json_problem(error: json.JSONDecodeError, text: str) -> str:
    """Describe a JSON error on one line, saying so when the line ends before the value does."""
    # json's messages end in "at" before a position ("Unterminated string starting at").
    message = error.msg.removesuffix(" at")
    problem = f"invalid JSON ({message} at column {error.colno}"
    if error.pos >= len(text.rstrip()) or message.startswith("Unterminated string"):
        problem += f"; the line ends at column {len(text) + 1}, so it looks cut short"
    return problem + ")"


def read_articles(path: str | Path) -> list[LabelledArticle]:
    """Read and check a labelled articles file; ids must be unique."""
    articles: list[LabelledArticle] = []
    seen: dict[str, int] = {}
    for number, value in read_jsonl(path, ARTICLE_SHAPE):
        article = _parse_article(str(path), number, value)
        if article.id in seen:
            raise DatasetError(str(path), number, f"duplicate id {article.id!r} (first on line {seen[article.id]})",
                               "a unique id per article")
        seen[article.id] = number
        articles.append(article)
    return articles


def read_queries(path: str | Path, article_ids: set[str]) -> list[LabelledQuery]:
    """Read and check a labelled queries file against the ids of the articles file."""
    queries = []
    for number, value in read_jsonl(path, QUERY_SHAPE):
        query = _require_string(str(path), number, value, "query", QUERY_SHAPE)
        relevant = value.get("relevant")
        if not isinstance(relevant, list) or not relevant or not all(isinstance(item, str) for item in relevant):
            raise DatasetError(str(path), number, f"field 'relevant' is {_describe(relevant)}",
                               "a non-empty list of article id strings")
        unknown = [item for item in relevant if item not in article_ids]
        if unknown:
            raise DatasetError(str(path), number, f"unknown relevant id {unknown[0]!r}",
                               "ids that appear in the articles file")
        queries.append(LabelledQuery(query=query, relevant=tuple(dict.fromkeys(relevant)), line=number))
    return queries


def _parse_article(path: str, number: int, value: dict[str, Any]) -> LabelledArticle:
    article_id = _require_string(path, number, value, "id", ARTICLE_SHAPE)
    title = _require_string(path, number, value, "title", ARTICLE_SHAPE, allow_empty=True)
    html, text = value.get("html"), value.get("text")
    if html is None and text is None:
        raise DatasetError(path, number, "field 'html' or 'text' is missing", ARTICLE_SHAPE)
    for name, content in (("html", html), ("text", text)):
        if content is not None and not isinstance(content, str):
            raise DatasetError(path, number, f"field {name!r} is {_describe(content)}", "a string")
    knowledge_base = value.get("knowledge_base", "")
    if not isinstance(knowledge_base, str):
        raise DatasetError(path, number, f"field 'knowledge_base' is {_describe(knowledge_base)}", "a string")
    return LabelledArticle(id=article_id, title=title, html=html, text=None if html is not None else text,
                           knowledge_base=knowledge_base)


def _require_string(path: str, number: int, value: dict[str, Any], name: str, shape: str,
                    *, allow_empty: bool = False) -> str:
    if name not in value:
        raise DatasetError(path, number, f"field {name!r} is missing", shape)
    field_value = value[name]
    if not isinstance(field_value, str) or (not allow_empty and not field_value.strip()):
        raise DatasetError(path, number, f"field {name!r} is {_describe(field_value)}", "a non-empty string")
    return field_value


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return "an empty string" if not value.strip() else f"the string {value[:40]!r}"
    if value is None:
        return "null or missing"
    if isinstance(value, list):
        return "an empty list" if not value else "a list with non-string items"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


# -- adapters ---------------------------------------------------------------------


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write rows as JSONL, one object per line, UTF-8."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def workarena_articles(source: Path) -> list[dict[str, Any]]:
    """Convert WorkArena ``articles.jsonl`` to labelled articles; the titles are only "Article N"."""
    return [
        {"id": value["article_id"], "title": value.get("short_description", ""), "html": value["text_html"],
         "knowledge_base": "workarena"}
        for _, value in read_jsonl(source / "articles.jsonl", "a WorkArena article")
    ]


def workarena_queries(source: Path) -> list[dict[str, Any]]:
    """Convert WorkArena ``pairs.jsonl`` (one gold article per question) to labelled queries."""
    return [
        {"query": value["query"], "relevant": [value["article_id"]]}
        for _, value in read_jsonl(source / "pairs.jsonl", "a WorkArena question pair")
    ]


def mtrag_articles(source: Path) -> list[dict[str, Any]]:
    """Convert MTRAG IBM Cloud passages to labelled articles titled by their first line."""
    rows = []
    for _, value in read_jsonl(source / "mtragun_human" / "passages_ibmcloud.jsonl", "an MTRAG passage"):
        text = value["text"]
        first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
        rows.append({"id": value["_id"], "title": first_line, "text": text, "knowledge_base": "ibmcloud"})
    return rows


def mtrag_queries(source: Path) -> list[dict[str, Any]]:
    """Convert the last user turn of each answerable MTRAG task with its gold passages."""
    gold = _read_qrels(source / "mtragun_human" / "qrels_cloud.tsv")
    rows = []
    for _, task in read_jsonl(source / "mtragun_human" / "reference_ibmcloud.jsonl", "an MTRAG task"):
        labels = set(task.get("answerability") or [])
        relevant = gold.get(task["task_id"])
        if not relevant or not labels & ANSWERABLE_LABELS:
            continue
        user_turns = [turn["text"] for turn in task["input"] if turn.get("speaker") == "user"]
        if user_turns:
            rows.append({"query": user_turns[-1], "relevant": relevant})
    return rows


def _read_qrels(path: Path) -> dict[str, list[str]]:
    """Read BEIR qrels (query-id, corpus-id, score with a header line); keep positive scores."""
    gold: dict[str, list[str]] = defaultdict(list)
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        next(reader, None)
        for row in reader:
            if len(row) >= 3 and float(row[2]) > 0:
                gold[row[0]].append(row[1])
    return dict(gold)


ADAPTERS = {
    "workarena": (workarena_articles, workarena_queries),
    "mtrag": (mtrag_articles, mtrag_queries),
}


def convert(name: str, source: str | Path, out: str | Path) -> tuple[Path, Path, int, int]:
    """Convert data set ``name`` from ``source`` into ``out``/articles.jsonl and queries.jsonl."""
    to_articles, to_queries = ADAPTERS[name]
    source, out = Path(source), Path(out)
    articles, queries = to_articles(source), to_queries(source)
    articles_path, queries_path = out / "articles.jsonl", out / "queries.jsonl"
    write_jsonl(articles_path, articles)
    write_jsonl(queries_path, queries)
    logger.info("Converted %s: %d articles, %d queries into %s.", name, len(articles), len(queries), out)
    return articles_path, queries_path, len(articles), len(queries)
