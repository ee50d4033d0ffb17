"""The ``inward eval`` commands: measure retrieval on a labelled set, convert public sets."""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path

import click
import yaml

from config import ConfigError, load_settings
from knowledge.datasets import ADAPTERS, convert, read_articles, read_queries
from knowledge.errors import DatasetError
from knowledge.evaluation import METRIC_KEYS, evaluate_index

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCES = {
    "workarena": PROJECT_ROOT.parent / "shared" / "data" / "workarena_kb",
    "mtrag": PROJECT_ROOT.parent / "shared" / "data" / "mtrag_ibmcloud",
}


@click.group("eval")
def eval_group() -> None:
    """Measure retrieval quality on labelled data sets."""


@eval_group.command("retrieval")
@click.option("--articles", "articles_path", required=True, type=click.Path(dir_okay=False),
              help='JSONL file, one article per line: {"id", "title", "html" or "text", "knowledge_base"?}.')
@click.option("--queries", "queries_path", required=True, type=click.Path(dir_okay=False),
              help='JSONL file, one query per line: {"query", "relevant": [article ids]}.')
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Evaluate only the first N queries (default: all).")
@click.option("--set", "assignments", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override a ranking or index setting for this run, e.g. ranking.title_weight=2. Repeatable.")
@click.pass_context
def retrieval(ctx: click.Context, articles_path: str, queries_path: str, as_json: bool,
              limit: int | None, assignments: tuple[str, ...]) -> None:
    """Index the articles in a temporary index, run the queries and print recall, MRR, nDCG and latency."""
    try:
        articles = read_articles(articles_path)
        queries = read_queries(queries_path, {article.id for article in articles})
    except DatasetError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(2)
    if limit is not None:
        queries = queries[:limit]
    if not articles or not queries:
        empty = articles_path if not articles else queries_path
        click.echo(f"Error: {empty} contains no lines to evaluate; add at least one.", err=True)
        sys.exit(2)
    settings = load_eval_settings(ctx, assignments)
    metrics = evaluate_index(articles, queries, settings)
    if as_json:
        click.echo(json.dumps(metrics))
    else:
        click.echo(format_metrics(metrics))


@eval_group.command("convert")
@click.argument("dataset", type=click.Choice(sorted(ADAPTERS)))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory to write articles.jsonl and queries.jsonl into (created if missing).")
@click.option("--source", "source_dir", type=click.Path(file_okay=False), default=None,
              help="Directory of the public data set (default: ../shared/data/<set> beside the project).")
def convert_command(dataset: str, out_dir: str, source_dir: str | None) -> None:
    """Convert a public data set (workarena or mtrag) to the labelled JSONL format."""
    source = Path(source_dir) if source_dir else DEFAULT_SOURCES[dataset]
    if not source.is_dir():
        raise click.ClickException(f"Data set directory {source} not found; pass --source DIR.")
    try:
        articles_path, queries_path, articles, queries = convert(dataset, source, out_dir)
    except (DatasetError, KeyError, OSError) as error:
        raise click.ClickException(f"Converting {dataset} from {source} failed: {error!r}") from None
    click.echo(f"Wrote {articles} articles to {articles_path} and {queries} queries to {queries_path}.")


def format_metrics(metrics: dict[str, float]) -> str:
    """Format the metrics as a two-column table, the standard keys first."""
    rows = [(key, metrics[key]) for key in METRIC_KEYS]
    rows += [(key, value) for key, value in metrics.items() if key not in METRIC_KEYS]
    width = max(len(key) for key, _ in rows)
    lines = [f"{'metric'.ljust(width)}  value", f"{'-' * width}  -------"]
    for key, value in rows:
        shown = f"{value:.3f}" if isinstance(value, float) and not math.isnan(value) else str(value)
        lines.append(f"{key.ljust(width)}  {shown}")
    return "\n".join(lines)


def parse_overrides(assignments: tuple[str, ...]) -> dict[str, dict[str, object]]:
    """Turn ``section.key=value`` strings into nested settings overrides (values read as YAML)."""
    overrides: dict[str, dict[str, object]] = {}
    for assignment in assignments:
        key, separator, raw = assignment.partition("=")
        section, dot, name = key.partition(".")
        if not separator or not dot or section not in ("ranking", "index") or not name:
            raise click.BadParameter(f"{assignment!r}: write ranking.KEY=VALUE or index.KEY=VALUE.",
                                     param_hint="--set")
        overrides.setdefault(section, {})[name] = yaml.safe_load(raw)
    return overrides


def load_eval_settings(ctx: click.Context, assignments: tuple[str, ...]):
    """Load the active settings with the ``--set`` overrides applied and validated."""
    try:
        return load_settings(ctx.obj.get("config_path"), overrides=parse_overrides(assignments))
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
